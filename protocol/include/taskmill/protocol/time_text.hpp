// taskmill/protocol/time_text.hpp -- points in time as people write them on
// the command line and in HTTP queries (`tasks --since 1h`, `?since=...`):
// an ISO 8601 UTC time, or a duration ago. One parser for the CLI and the
// HTTP API, so "1h" means the same everywhere.
#pragma once

#include <cstdint>
#include <string_view>

#include <taskmill/protocol/result.hpp>

namespace taskmill::protocol {

// Unix ms of `text`, which is one of:
//   - an ISO 8601 time in UTC: "2026-12-01T10:00:00Z", with optional
//     fraction ("...:00.250Z"); a "T" may be a space; or a date "2026-12-01"
//     (its midnight UTC);
//   - a duration ago, as parse_duration_ms reads it ("90s", "1h", "7d"):
//     now_ms minus it.
// errc::invalid_argument naming the text and both forms otherwise.
result<int64_t> parse_time_ms(std::string_view text, int64_t now_ms);
// The same, a duration counted back from the wall clock's now.
result<int64_t> parse_time_ms(std::string_view text);

}  // namespace taskmill::protocol
