// taskmill/broker/queue_config.hpp -- retention and flow limits from the
// broker's config.
//
// Retention: how long a finished task is kept, per final state, before the
// broker deletes it (broker.ini `retention-succeeded = 24h` ...; 0 = keep it
// for ever). A queue may set its own in a `[queue.NAME]` section, and a task
// its own at submit (task_spec::keep_ms), which wins over both.
//
// A `[queue.NAME]` section:
//   retention-succeeded = 1h   retention-failed = 30d
//   retention-cancelled = 1d   retention-expired = 1d
//   rate = 100/s               (tasks started per second; also N/m, N/h)
//   burst = 20                 (starts allowed at once above the rate)
//   max-running = 8            (tasks of the queue running at once)
// A `[handler.NAME]` section (NAME = "ns.name") takes rate, burst and
// max-running. Limits set at run time (LIMIT) are stored and win over the
// file until changed again (docs/OPERATIONS.md, "Queues").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <taskmill/config/loader.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker {

inline constexpr int64_t day_ms = 86'400'000;

// Per final state, in ms; 0 = keep for ever.
struct retention_config {
    int64_t succeeded_ms = day_ms;
    int64_t failed_ms = 7 * day_ms;  // FAILED is also the dead-letter state
    int64_t cancelled_ms = 7 * day_ms;
    int64_t expired_ms = 7 * day_ms;
};

// The same, each unset = inherit the broker's.
struct retention_override {
    std::optional<int64_t> succeeded_ms;
    std::optional<int64_t> failed_ms;
    std::optional<int64_t> cancelled_ms;
    std::optional<int64_t> expired_ms;
};

// Flow limits as configured; unset = no limit (or, at run time, unchanged).
struct flow_config {
    std::optional<double> rate;  // tasks started per second, > 0
    std::optional<uint32_t> burst;
    std::optional<uint32_t> max_running;
};

struct queue_config {
    std::string name;
    retention_override retention;
    flow_config flow;
    std::string where;  // "file:line" of the section, for messages
};

struct handler_config {
    std::string name;  // "ns.name"
    flow_config flow;
    std::string where;
};

// Reads one section as the config loader gives it and checks every key.
// Throws config::error "FILE:LINE: reason".
queue_config read_queue_section(const config::section& s);
handler_config read_handler_section(const config::section& s);

// "100/s", "6000/m", "10/h", or a bare number (per second) -> tasks per
// second (> 0, at most 1e9). errc::invalid_argument otherwise.
result<double> parse_rate(std::string_view text);

}  // namespace taskmill::broker
