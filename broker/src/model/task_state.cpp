#include "model/task_state.hpp"

namespace taskmill::broker {
namespace {
constexpr std::array<std::string_view, all_task_states.size()> names = {"PENDING",   "QUEUED", "RUNNING",   "RETRYING",
                                                                        "SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED"};
}  // namespace

std::string_view to_string(task_state s) { return names[static_cast<std::size_t>(s)]; }

std::string lower_name(task_state s) {
    std::string out(to_string(s));
    for (auto& c : out) {
        c = static_cast<char>(c - 'A' + 'a');
    }
    return out;
}

std::optional<task_state> parse_task_state(std::string_view name) {
    for (auto s : all_task_states) {
        if (to_string(s) == name) {
            return s;
        }
    }
    return std::nullopt;
}

std::optional<task_state> task_state_from_number(uint64_t n) {
    if (n >= all_task_states.size()) {
        return std::nullopt;
    }
    return all_task_states[n];
}

}  // namespace taskmill::broker
