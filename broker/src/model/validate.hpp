// Checks of client input before anything is stored, and the handler-name
// grammar shared by validation and routing.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker {

// "ns.name", "ns.name@2", "ns.name@2.1" or "ns.name@2.1.0", split.
struct handler_ref {
    std::string name;     // "ns.name"
    std::string version;  // "" (any), "2" (any 2.*), "2.1" (any 2.1.*) or "2.1.0" (exact)
};
std::optional<handler_ref> parse_handler(std::string_view spec);

// Whether a worker's handler (name, semantic version) can run `want`.
bool handler_matches(const handler_ref& want, std::string_view name, std::string_view version);

bool valid_queue_name(std::string_view q);

// The longest duration a task field may name (timeout_ms, ttl_ms, delay_ms,
// backoff_*_ms, keep_ms, a workflow step's timeout, a schedule's `every`): 10 years
// of 365 days. Far beyond any real use, and far enough from INT64_MAX that
// now + any of them, summed, cannot overflow.
inline constexpr int64_t max_duration_ms = 10LL * 365 * 24 * 3600 * 1000;

struct limits {
    std::size_t max_payload = 16u << 20;
    std::size_t max_batch = 10000;
    std::size_t max_tags = 32;
    std::size_t max_tag = 128;
    std::size_t max_key = 256;
};

// Validates a whole SUBMIT batch; the error names the task index and field.
// `now_ms` bounds eta_ms (at most max_duration_ms ahead).
result<void> validate_batch(const std::vector<protocol::task_spec>& tasks, const limits& lim, int64_t now_ms);

}  // namespace taskmill::broker
