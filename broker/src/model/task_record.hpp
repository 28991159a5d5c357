// The durable record of one task (the value in the tasks table), its msgpack
// codec, and the conversions to and from the wire types.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

#include "engine/timers.hpp"
#include "model/task_id.hpp"
#include "model/task_state.hpp"

namespace taskmill::broker {

// One attempt of a task, kept in its record (the last max_history).
struct attempt_record {
    uint32_t attempt = 0;
    std::string worker;
    int64_t started_ms = 0;
    int64_t finished_ms = 0;  // 0 = not over
    std::string outcome;      // ok retry fail cancelled timeout lost expired
    std::string error;
    std::optional<int64_t> error_code;
    std::string version;
};

// How many attempts a record keeps (the newest): a task retried a thousand
// times must not carry a thousand errors through every state change.
inline constexpr std::size_t max_history = 10;

struct task_record {
    task_id id{};
    std::string handler;
    std::string payload;  // msgpack bytes
    std::string queue;
    int32_t priority = 0;
    int32_t max_retries = 0;
    int64_t timeout_ms = 0;
    int64_t ttl_ms = 0;
    int64_t eta_ms = 0;
    int64_t backoff_base_ms = 0;  // 0 = broker default
    double backoff_factor = 0;
    int64_t backoff_cap_ms = 0;
    std::vector<std::string> tags;
    std::string key;
    std::string parent;  // as the submitter gave it: a task id in hex for SPAWNed tasks, a workflow id for steps
    bool notify = false;
    std::string notify_peer;  // the submitting client's routing id
    task_state state = task_state::pending;
    // In memory only: false for a record create() just made, which is in no
    // state (and no counter) until the engine first sets one.
    bool has_state = false;
    uint32_t attempts = 0;
    uint32_t crashes = 0;
    int64_t created_ms = 0;
    int64_t started_ms = 0;
    int64_t finished_ms = 0;
    std::string error;
    std::optional<std::string> result;
    std::string worker;
    std::vector<task_id> children;
    std::optional<double> progress_fraction;
    std::string progress_note;
    std::optional<std::string> checkpoint;
    bool cancel_requested = false;
    uint64_t seq = 0;     // position in the ready index while QUEUED
    std::string version;  // plugin version of the last attempt
    // The code the handler set with the error of its last attempt
    // (tm_error.code); nullopt = none.
    std::optional<int64_t> error_code;
    // Crashes of workers that were running this task beside others: not
    // charged (the culprit is unknown), but the task then runs alone, so
    // that its next crash is its own (see engine::remove_worker).
    uint32_t suspect_crashes = 0;
    // Retention chosen at submit (task_spec::keep_ms); nullopt = the
    // queue's or the broker's for the final state; 0 = for ever.
    std::optional<int64_t> keep_ms;
    std::vector<attempt_record> history;  // oldest first, at most max_history
    // When the retention sweep deletes the finished task; 0 = never or not
    // finished. Kept so that the expiry entry can be found again.
    int64_t delete_at_ms = 0;
    // delete_at_ms is the finish time plus the broker's retention for the
    // state: no expiry entry, the sweep finds the task by walking its
    // state's index in finish order (retention/sweep.cpp). False for a
    // task with a retention of its own or its queue's, and in records of
    // older brokers (those have expiry entries).
    bool expiry_implied = false;

    bool runs_alone() const { return suspect_crashes > 0; }

    // The absolute time by which the task must have started; 0 = none.
    int64_t expires_ms() const { return ttl_ms > 0 ? add_ms(created_ms, ttl_ms) : 0; }
};

std::string encode(const task_record& r);
result<task_record> decode_record(std::string_view bytes);

// The task as TASKS and DONE show it: no payload, no history.
protocol::task_info to_info(const task_record& r);
// The task as STATUS shows it: to_info() with the payload and its size,
// and the attempt history.
protocol::task_info to_status_info(const task_record& r);

}  // namespace taskmill::broker
