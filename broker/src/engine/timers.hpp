// A set of (deadline, task id) with at most one deadline per task: the
// delayed/backoff index, TTLs and leases. next() is O(1), so the loop can
// sleep exactly until the earliest one instead of polling the queue.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "model/task_id.hpp"

namespace taskmill::broker {

// The sum of a time and durations, saturated at the int64 range instead of
// overflowing: validated input stays far below it, but a record written by
// an older broker or a figure from a peer need not.
template <typename... Ms> constexpr int64_t add_ms(int64_t t, Ms... durations) {
    for (int64_t d : {static_cast<int64_t>(durations)...}) {
        if (__builtin_add_overflow(t, d, &t)) {
            return d > 0 ? std::numeric_limits<int64_t>::max() : std::numeric_limits<int64_t>::min();
        }
    }
    return t;
}

class deadline_set {
public:
    // Sets (or moves) the deadline of `id`.
    void set(const task_id& id, int64_t when_ms);
    void erase(const task_id& id);
    std::optional<int64_t> next() const;
    // Removes and returns every id due at or before `now_ms`, earliest first,
    // at most `max` of them.
    std::vector<task_id> take_due(int64_t now_ms, std::size_t max = 4096);
    std::size_t size() const { return by_id_.size(); }

private:
    std::set<std::pair<int64_t, task_id>> by_time_;
    std::unordered_map<task_id, int64_t, task_id_hash> by_id_;
};

}  // namespace taskmill::broker
