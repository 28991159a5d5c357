// The states of a task. The enum is what the broker holds and compares; the
// names ("QUEUED", ...) appear only where a state leaves or enters the
// broker: the wire, JSON, events, logs, and the records of older stores.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace taskmill::broker {

// The numeric values are stored in task records: append, never renumber.
enum class task_state : uint8_t {
    pending,  // waiting for its eta
    queued,   // ready to run
    running,
    retrying,  // waiting for its backoff to pass
    succeeded,
    failed,
    cancelled,
    expired,  // its ttl passed before it started
};

inline constexpr std::array<task_state, 8> all_task_states = {
    task_state::pending,   task_state::queued, task_state::running,   task_state::retrying,
    task_state::succeeded, task_state::failed, task_state::cancelled, task_state::expired};

// "QUEUED", as on the wire.
std::string_view to_string(task_state s);
// "queued", as in event topics and counter names.
std::string lower_name(task_state s);
// The state named `name` (upper case, as to_string gives it), or nullopt.
std::optional<task_state> parse_task_state(std::string_view name);
// The state a stored number stands for, or nullopt.
std::optional<task_state> task_state_from_number(uint64_t n);

constexpr bool is_final(task_state s) {
    return s == task_state::succeeded || s == task_state::failed || s == task_state::cancelled ||
           s == task_state::expired;
}

}  // namespace taskmill::broker
