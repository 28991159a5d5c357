// taskmill/protocol/duration.hpp -- durations as people write them in
// broker.ini and on the command line: "0", "500ms", "30s", "5m", "24h",
// "7d", or a sum of those ("1h30m"). One parser for the broker, the CLI and
// the HTTP API, so "24h" means the same everywhere.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <taskmill/protocol/result.hpp>

namespace taskmill::protocol {

// The longest duration accepted: 100 years, so that adding one to a unix
// time in ms cannot overflow.
inline constexpr int64_t max_duration_ms = 100ll * 366 * 86'400'000;

// Milliseconds in `text`: "0" (no unit), or one or more of a non-negative
// integer followed by ms, s, m, h or d. errc::invalid_argument naming the
// text and what is expected otherwise, or when it exceeds max_duration_ms.
result<int64_t> parse_duration_ms(std::string_view text);

// The shortest text parse_duration_ms() reads back as `ms` ("1d2h", "90s",
// "250ms", "0"). `ms` < 0 is shown as "0".
std::string format_duration_ms(int64_t ms);

}  // namespace taskmill::protocol
