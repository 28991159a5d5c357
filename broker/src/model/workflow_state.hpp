// The states of a workflow and of its steps. As with task_state, the names
// appear only where they leave the broker (status JSON, events, logs) and in
// the workflow records, which are JSON.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/task_state.hpp"

namespace taskmill::broker {

enum class step_state : uint8_t {
    waiting,  // dependencies not done yet
    queued,   // its task was created; the task's own state says more
    succeeded,
    failed,
    cancelled,
    expired,
    skipped,  // a dependency did not succeed
};

enum class workflow_state : uint8_t { running, succeeded, failed, cancelled };

std::string_view to_string(step_state s);
std::string_view to_string(workflow_state s);
std::optional<step_state> parse_step_state(std::string_view name);
std::optional<workflow_state> parse_workflow_state(std::string_view name);

// The step state of a step whose task ended in `s` (a final state); a task
// state that is not final leaves the step queued.
step_state step_state_of(task_state s);

// Final for a step: SUCCEEDED FAILED CANCELLED EXPIRED SKIPPED.
bool step_final(step_state s);
// Final and not SUCCEEDED.
bool step_unsuccessful(step_state s);

}  // namespace taskmill::broker
