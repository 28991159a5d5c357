// The in-memory index of QUEUED tasks: per queue, per priority, per handler,
// a FIFO of small entries (32 bytes; no payloads: the record is loaded from
// the store at dispatch). Splitting by handler lets a task whose handler no
// worker has wait without blocking the tasks behind it; FIFO within a
// priority is kept by comparing the fronts' sequence numbers.
// Removal is lazy (a tombstone consumed when the entry reaches the front).
// Single-threaded: owned by the loop.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "model/task_id.hpp"

namespace taskmill::broker {

class ready_index {
public:
    struct entry {
        uint64_t seq = 0;
        task_id id{};
        int64_t expires_ms = 0;
    };
    struct pick {
        int priority = 0;
        uint32_t handler = 0;
        entry e;
    };

    // Interns a handler spec ("ns.name@2") into a small number.
    uint32_t intern(const std::string& handler);
    const std::string& handler_name(uint32_t h) const { return handlers_[h]; }

    // Adds a task in sequence order: at the back for a new one, at its old
    // place for one whose attempt was lost.
    void push(const std::string& queue, int priority, uint32_t handler, const entry& e);
    // Forgets a queued task of `queue` (cancel, TTL).
    void remove(const std::string& queue, const task_id& id);
    // The task to run next in `queue`: highest priority, then lowest seq,
    // among handlers `can_run` accepts. Does not remove it.
    std::optional<pick> peek(const std::string& queue, const std::function<bool(uint32_t)>& can_run);
    // Removes the entry peek() returned (it is at the front of its FIFO).
    void pop(const std::string& queue, const pick& p);

    // The ready task of `queue` that has waited longest (lowest seq, over
    // every priority and handler), for its age in the metrics; O(its
    // priorities x handlers).
    std::optional<entry> oldest(const std::string& queue);

    std::size_t ready(const std::string& queue) const;
    std::size_t total() const { return total_; }
    // Queues that hold at least one ready task.
    std::vector<std::string> queues() const;

private:
    using fifo = std::deque<entry>;
    struct queue_slot {
        std::array<std::map<uint32_t, fifo>, 10> by_priority;  // [priority][handler]
        std::size_t count = 0;
    };
    // Drops tombstoned entries from the front of `f`.
    void skip_removed(fifo& f);

    std::unordered_map<std::string, queue_slot> queues_;
    std::unordered_set<task_id, task_id_hash> removed_;
    std::vector<std::string> handlers_;
    std::unordered_map<std::string, uint32_t> handler_ids_;
    std::size_t total_ = 0;
};

}  // namespace taskmill::broker
