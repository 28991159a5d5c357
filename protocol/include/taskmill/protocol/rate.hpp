// taskmill/protocol/rate.hpp -- rates as people write them in broker.ini,
// on the command line and in the HTTP API: "100/s", "6000/m", "10/h", or a
// bare number (per second). One parser, so "100/s" means the same
// everywhere.
#pragma once

#include <string_view>

#include <taskmill/protocol/result.hpp>

namespace taskmill::protocol {

// The highest rate accepted, in tasks per second.
inline constexpr double max_rate = 1e9;

// Tasks per second in `text` (> 0, at most max_rate); errc::invalid_argument
// naming the text and what is expected otherwise.
result<double> parse_rate(std::string_view text);

// As parse_rate, but "0" (or "0/s", ...) is 0: "no limit", where a limit
// is being changed (LIMIT from the CLI or the HTTP API).
result<double> parse_rate_or_zero(std::string_view text);

}  // namespace taskmill::protocol
