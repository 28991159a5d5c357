// Cron expressions (5 fields, Vixie-style) and `every` intervals, and the
// next fire time of either. Times are unix milliseconds; a cron expression
// is read in its time zone (IANA name, via cctz and the system tzdata).
//
// DST policy (documented in docs/WORKFLOWS.md): a matching local time that
// does not exist (spring forward) fires once, at the transition instant; a
// local time that happens twice (fall back) fires once, at its first
// occurrence.
#pragma once

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <cctz/time_zone.h>

#include <taskmill/protocol/result.hpp>

namespace taskmill::broker {

struct cron_expr {
    std::bitset<60> minutes;
    std::bitset<24> hours;
    std::bitset<32> days;     // 1..31
    std::bitset<13> months;   // 1..12
    std::bitset<7> weekdays;  // 0 = Sunday
    bool dom_star = false;    // day-of-month field began with '*'
    bool dow_star = false;    // day-of-week field began with '*'
    cctz::time_zone tz;
    std::string text;
    std::string tz_name;  // "UTC" when none was given
};

// Parses "m h dom mon dow" (or @hourly @daily @midnight @weekly @monthly
// @yearly @annually). `tz_name` empty = UTC. Errors are invalid_argument
// naming the field and the reason.
result<cron_expr> parse_cron(std::string_view text, std::string_view tz_name = {});

// The first fire time strictly after `after_ms`; nullopt if none within
// ten years (e.g. "0 0 30 2 *").
std::optional<int64_t> next_fire(const cron_expr& e, int64_t after_ms);

// "30s", "5m", "2h", "1d" (a positive integer and one unit) -> milliseconds.
result<int64_t> parse_every(std::string_view text);

}  // namespace taskmill::broker
