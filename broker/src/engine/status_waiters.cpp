#include "engine/status_waiters.hpp"

namespace taskmill::broker {

result<void> status_waiters::park(const std::string& peer, uint64_t req, const task_id& id, int64_t deadline_ms) {
    const std::size_t mine = of_peer(peer);
    if (mine >= max_per_client_) {
        return fail(errc::unavailable,
                    "this client already waits on " + std::to_string(max_per_client_) +
                        " tasks (max-waits-per-client); wait for some to end, or ask without wait_ms");
    }
    if (waiters_.size() >= max_total_) {
        return fail(errc::unavailable, "the broker already holds " + std::to_string(max_total_) +
                                           " waiting STATUS requests (max-waits); retry later, or ask without wait_ms");
    }
    ++by_peer_[peer];
    const uint64_t serial = ++serial_;
    waiters_[serial] = waiter{parked_status{peer, req, id}, deadline_ms};
    by_task_.emplace(id, serial);
    deadlines_.emplace(deadline_ms, serial);
    return {};
}

std::vector<parked_status> status_waiters::take_task(const task_id& id) {
    std::vector<parked_status> out;
    auto range = by_task_.equal_range(id);
    for (auto it = range.first; it != range.second; ++it) {
        if (auto w = waiters_.find(it->second); w != waiters_.end()) {
            deadlines_.erase({w->second.deadline, w->first});
            out.push_back(unpark(w));
        }
    }
    by_task_.erase(range.first, range.second);
    return out;
}

std::vector<parked_status> status_waiters::take_due(int64_t now_ms) {
    std::vector<parked_status> out;
    while (!deadlines_.empty() && deadlines_.begin()->first <= now_ms) {
        const uint64_t serial = deadlines_.begin()->second;
        deadlines_.erase(deadlines_.begin());
        auto w = waiters_.find(serial);
        if (w == waiters_.end()) {
            continue;
        }
        auto range = by_task_.equal_range(w->second.who.id);
        for (auto it = range.first; it != range.second; ++it) {
            if (it->second == serial) {
                by_task_.erase(it);
                break;
            }
        }
        out.push_back(unpark(w));
    }
    return out;
}

// Drops the entry and its count against its client; returns who it was.
parked_status status_waiters::unpark(std::map<uint64_t, waiter>::iterator w) {
    parked_status who = std::move(w->second.who);
    waiters_.erase(w);
    if (auto it = by_peer_.find(who.peer); it != by_peer_.end() && --it->second == 0) {
        by_peer_.erase(it);
    }
    return who;
}

std::optional<int64_t> status_waiters::next_deadline() const {
    if (deadlines_.empty()) {
        return std::nullopt;
    }
    return deadlines_.begin()->first;
}

std::vector<std::pair<std::string, uint64_t>> status_waiters::all() const {
    std::vector<std::pair<std::string, uint64_t>> out;
    out.reserve(waiters_.size());
    for (const auto& [serial, w] : waiters_) {
        out.emplace_back(w.who.peer, w.who.req);
    }
    return out;
}

std::size_t status_waiters::of_peer(const std::string& peer) const {
    auto it = by_peer_.find(peer);
    return it == by_peer_.end() ? 0 : it->second;
}

}  // namespace taskmill::broker
