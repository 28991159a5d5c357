#include "engine/timers.hpp"

namespace taskmill::broker {

void deadline_set::set(const task_id& id, int64_t when_ms) {
    erase(id);
    by_time_.emplace(when_ms, id);
    by_id_.emplace(id, when_ms);
}

void deadline_set::erase(const task_id& id) {
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
        return;
    }
    by_time_.erase({it->second, id});
    by_id_.erase(it);
}

std::optional<int64_t> deadline_set::next() const {
    if (by_time_.empty()) {
        return std::nullopt;
    }
    return by_time_.begin()->first;
}

std::vector<task_id> deadline_set::take_due(int64_t now_ms, std::size_t max) {
    std::vector<task_id> out;
    while (!by_time_.empty() && by_time_.begin()->first <= now_ms && out.size() < max) {
        task_id id = by_time_.begin()->second;
        by_time_.erase(by_time_.begin());
        by_id_.erase(id);
        out.push_back(id);
    }
    return out;
}

}  // namespace taskmill::broker
