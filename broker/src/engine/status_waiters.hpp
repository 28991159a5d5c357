// STATUS requests with wait_ms, parked until their task reaches a final
// state or their wait ends. Each costs memory until then, so one client
// may park only so many and all clients together only so many
// (--max-waits-per-client, --max-waits).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include <taskmill/protocol/result.hpp>

#include "model/task_id.hpp"

namespace taskmill::broker {

// A parked request: who asked (peer, req) about which task.
struct parked_status {
    std::string peer;
    uint64_t req = 0;
    task_id id{};
};

class status_waiters {
public:
    status_waiters(std::size_t max_total, std::size_t max_per_client)
        : max_total_(max_total), max_per_client_(max_per_client) {}

    // Parks a request until `deadline_ms`; errc::unavailable, saying which
    // bound and what to do, when a bound is reached.
    result<void> park(const std::string& peer, uint64_t req, const task_id& id, int64_t deadline_ms);
    // The requests waiting on `id`, which just reached a final state; they
    // are no longer parked.
    std::vector<parked_status> take_task(const task_id& id);
    // The requests whose wait ended at or before `now_ms`, earliest first;
    // they are no longer parked.
    std::vector<parked_status> take_due(int64_t now_ms);
    // When the earliest wait ends; nullopt = nothing parked.
    std::optional<int64_t> next_deadline() const;
    // Every parked request (peer, req).
    std::vector<std::pair<std::string, uint64_t>> all() const;
    std::size_t size() const { return waiters_.size(); }
    std::size_t of_peer(const std::string& peer) const;

private:
    struct waiter {
        parked_status who;
        int64_t deadline = 0;
    };
    parked_status unpark(std::map<uint64_t, waiter>::iterator w);

    std::size_t max_total_;
    std::size_t max_per_client_;
    std::map<uint64_t, waiter> waiters_;  // by serial, i.e. arrival order
    std::unordered_multimap<task_id, uint64_t, task_id_hash> by_task_;
    std::set<std::pair<int64_t, uint64_t>> deadlines_;
    std::unordered_map<std::string, std::size_t> by_peer_;
    uint64_t serial_ = 0;
};

}  // namespace taskmill::broker
