// Workflows as data: a DAG of named steps, its validation, its durable
// encoding, and the pure rules the engine applies (which steps are ready,
// which are skipped, what payload a step receives, the final result).
// No store or sockets here, so the rules are unit-testable on their own;
// the JSON side (definitions, status) is in workflow_json.hpp.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/protocol/result.hpp>

#include "model/task_id.hpp"
#include "model/workflow_state.hpp"

namespace taskmill::broker {

struct wf_step {
    std::string name;
    std::string handler;
    std::string payload;  // msgpack bytes; empty = nil
    std::string queue;
    std::optional<int32_t> priority;
    std::optional<int32_t> retries;
    std::optional<int64_t> timeout_ms;
    std::vector<std::size_t> deps;  // indexes into workflow::steps
    std::optional<task_id> task;    // once started
    step_state state = step_state::waiting;
    std::string error;
};

struct workflow {
    std::string id;
    std::string name;
    bool fail_fast = true;  // on_failure = "fail_fast" (default) | "continue"
    bool cancel_requested = false;
    workflow_state state = workflow_state::running;
    int64_t created_ms = 0;
    int64_t finished_ms = 0;
    std::vector<wf_step> steps;
};

inline constexpr std::size_t max_steps = 1000;

std::string encode_workflow(const workflow& w);
result<workflow> decode_workflow(std::string_view bytes);

// WAITING steps whose dependencies all SUCCEEDED.
std::vector<std::size_t> ready_steps(const workflow& w);
// Marks SKIPPED every WAITING step with an unsuccessful dependency
// (transitively). Returns the steps it changed.
std::vector<std::size_t> skip_blocked(workflow& w);
bool all_final(const workflow& w);
// The workflow's final state once all_final(): CANCELLED if cancelled,
// SUCCEEDED if every step succeeded, else FAILED.
workflow_state final_state(const workflow& w);
// Steps no other step depends on; their results are the workflow's result.
std::vector<std::size_t> sink_steps(const workflow& w);

// The payload a step's task gets. No dependencies: its own payload
// unchanged. Otherwise a map: its own payload's keys when that is a map (or
// {"input": payload} when it is not nil and not a map), plus
// "deps": {step name: result of that step}. `results` holds the msgpack
// result of each dependency by step name; bytes are read as
// protocol::msgpack_to_json reads them (unreadable ones as {"msgpack_error"}).
std::string step_payload(const workflow& w, std::size_t step, const std::map<std::string, std::string>& results);

}  // namespace taskmill::broker
