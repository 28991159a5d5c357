// The workers the broker knows: what each serves (queues, handlers), its
// credit (slots) and the tasks it holds. Picks the worker for a task: one
// that serves the queue, has the handler, has free credit, and is the least
// loaded (ties broken round-robin so work spreads evenly).
// Single-threaded: owned by the loop.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <taskmill/protocol/messages.hpp>

#include "model/task_id.hpp"
#include "model/validate.hpp"

namespace taskmill::broker {

struct worker {
    std::string id;  // routing id
    protocol::hello info;
    std::string user_id;  // the connection's CURVE key (Z85), empty without CURVE
    uint32_t slots = 0;
    std::unordered_set<task_id, task_id_hash> in_flight;
    // Attempts whose lease ran out (they were retried elsewhere and told to
    // stop) but that may still run here: each keeps its slot taken until the
    // worker reports it over (an outcome, or a HEARTBEAT that no longer
    // names it), so a 1-slot worker is not sent a second task meanwhile.
    std::unordered_map<task_id, uint32_t, task_id_hash> stale;  // -> attempt
    uint64_t results_seq = 0;                                   // the last RESULTS `seq` read, echoed in HEARTBEAT
    int64_t last_seen_ms = 0;
    uint64_t last_pick = 0;  // pick counter value when last chosen
    // A task that must run alone (it was in a worker that crashed running
    // several tasks): while the worker holds it, it is given nothing else.
    std::optional<task_id> alone;
    // Kept free for a task that must run alone: it is sent nothing else
    // until it is idle (see worker_registry::reserve).
    bool reserved = false;
    // Tasks of in_flight a slot has started (RESULTS `started`, or an
    // outcome); the others wait in the worker's prefetch.
    uint32_t running = 0;
    uint64_t rss_bytes = 0;  // as its last HEARTBEAT reported it; 0 = unknown

    // Its slots: the credit of its HELLO less the prefetch it announced
    // there (CREDIT resizes the prefetch, never the slots).
    uint32_t concurrency() const { return info.slots > info.prefetch ? info.slots - info.prefetch : info.slots; }
    // Credit above its slots: tasks it accepts to wait for a free slot.
    uint32_t prefetch() const { return slots > concurrency() ? slots - concurrency() : 0; }
    uint32_t busy() const { return static_cast<uint32_t>(in_flight.size() + stale.size()); }
    bool holds_alone() const { return alone && (in_flight.count(*alone) > 0 || stale.count(*alone) > 0); }
    bool has_credit() const { return busy() < slots && !holds_alone() && !reserved; }
    // The attempt of `task` it held is over; `started`: a slot had begun it.
    void release(const task_id& task, bool started) {
        if (in_flight.erase(task) > 0 && started && running > 0) {
            --running;
        }
    }
    bool serves(const std::string& queue) const;
    bool can_run(const handler_ref& h) const;
    protocol::worker_info to_info() const;
};

class worker_registry {
public:
    // Registers or re-registers (a HELLO). Returns the tasks the worker held
    // under its previous registration, which it no longer runs.
    std::vector<task_id> upsert(const std::string& id, const protocol::hello& h, int64_t now_ms);
    worker* find(const std::string& id);
    // Removes the worker and returns the tasks it held.
    std::vector<task_id> remove(const std::string& id);
    // Workers silent for longer than `liveness_ms`.
    std::vector<std::string> silent(int64_t now_ms, int64_t liveness_ms) const;
    std::optional<int64_t> earliest_seen() const;

    // The worker to give a task of `queue` needing `h`, or nullptr.
    // `alone`: the task must run alone, so only an idle worker will do.
    worker* pick(const std::string& queue, const handler_ref& h, bool alone = false);
    // A task that must run alone waits for an idle worker; under steady
    // load none would ever be idle. So one worker that could run it, the
    // least busy, is reserved: sent nothing new until it is idle. At most
    // one at a time (such tasks are rare); clear_reserved() at the start of
    // each dispatch round lets the choice follow the load.
    void reserve(const std::string& queue, const handler_ref& h);
    void clear_reserved();
    // Marks `w` as just chosen (round-robin among equals).
    void chosen(worker& w) { w.last_pick = ++picks_; }

    uint32_t free_slots() const;
    uint32_t total_busy() const;
    uint32_t total_concurrency() const;
    uint32_t total_prefetch() const;
    uint32_t total_running() const;
    std::size_t size() const { return workers_.size(); }
    const std::map<std::string, worker>& all() const { return workers_; }

private:
    std::map<std::string, worker> workers_;
    uint64_t picks_ = 0;
};

}  // namespace taskmill::broker
