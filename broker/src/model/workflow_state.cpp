#include "model/workflow_state.hpp"

#include <array>
#include <cstddef>

namespace taskmill::broker {
namespace {
constexpr std::array<std::string_view, 7> step_names = {"WAITING",   "QUEUED",  "SUCCEEDED", "FAILED",
                                                        "CANCELLED", "EXPIRED", "SKIPPED"};
constexpr std::array<std::string_view, 4> workflow_names = {"RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"};

template <typename E, std::size_t N>
std::optional<E> find_name(const std::array<std::string_view, N>& names, std::string_view name) {
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == name) {
            return static_cast<E>(i);
        }
    }
    return std::nullopt;
}
}  // namespace

std::string_view to_string(step_state s) { return step_names[static_cast<std::size_t>(s)]; }
std::string_view to_string(workflow_state s) { return workflow_names[static_cast<std::size_t>(s)]; }

std::optional<step_state> parse_step_state(std::string_view name) { return find_name<step_state>(step_names, name); }

std::optional<workflow_state> parse_workflow_state(std::string_view name) {
    return find_name<workflow_state>(workflow_names, name);
}

step_state step_state_of(task_state s) {
    switch (s) {
        case task_state::succeeded: return step_state::succeeded;
        case task_state::failed: return step_state::failed;
        case task_state::cancelled: return step_state::cancelled;
        case task_state::expired: return step_state::expired;
        default: return step_state::queued;
    }
}

bool step_final(step_state s) { return s != step_state::waiting && s != step_state::queued; }

bool step_unsuccessful(step_state s) { return step_final(s) && s != step_state::succeeded; }

}  // namespace taskmill::broker
