// Broker metrics: what the engine counts as it works (by handler, queue,
// priority) and the immutable snapshot the HTTP threads read.
//
// Threading: metrics_recorder belongs to the loop thread (plain integers, no
// locks on the hot path). Once per turn the loop builds a metrics_snapshot
// and publishes it into a metrics_hub; HTTP threads take a shared_ptr to the
// latest snapshot. The hub's mutex only guards a pointer swap, so a scrape
// can never hold the loop back for longer than that swap.
//
// Durations are seconds throughout (Prometheus base units).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <taskmill/metrics/histogram.hpp>

#include "model/task_state.hpp"

namespace taskmill::broker {

using metrics::seconds_histogram;

struct handler_metrics {
    uint64_t submitted = 0;
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    uint64_t retried = 0;
    uint64_t cancelled = 0;
    uint64_t expired = 0;
    seconds_histogram run;   // attempt run time, from the attempt's start (a slot began it) to its outcome
    seconds_histogram wait;  // queue wait (ready to dispatched)
    // Filled into snapshots only: tasks of the handler that reached a final
    // state in the last 60 s, and attempts of it a slot is running now.
    uint64_t finished_last_minute = 0;
    uint64_t running = 0;
};

struct metrics_snapshot {
    int64_t time_ms = 0;
    int64_t started_ms = 0;
    std::map<std::string, handler_metrics> handlers;                // by handler name (no @version)
    std::map<std::string, std::map<std::string, uint64_t>> states;  // queue -> state -> tasks
    std::map<std::string, std::map<int32_t, uint64_t>> queued;      // queue -> priority -> QUEUED tasks
    std::map<std::string, uint64_t> counters;                       // the engine's named counters
    uint32_t workers = 0;
    uint32_t slots = 0;     // the workers' concurrency, summed
    uint32_t prefetch = 0;  // credit above their slots: tasks waiting in workers' local queues
    uint32_t busy = 0;      // tasks dispatched to workers (state RUNNING), started or not
    uint32_t running = 0;   // of those, the ones a slot has started
    std::map<std::pair<std::string, std::string>, uint64_t> plugins;  // (plugin, version) -> workers
    uint64_t hellos = 0;
    uint64_t hellos_refused = 0;
    seconds_histogram commit;
    uint64_t commits = 0;
    seconds_histogram turn;         // loop turns: messages, timers, jobs, dispatch and commit
    double store_fill = 0;          // used fraction of the capacity (map, or file + free disk if less)
    uint64_t store_map_bytes = 0;   // the LMDB map size in force
    uint64_t store_used_bytes = 0;  // pages up to the last one in use
    // Per queue with ready tasks: seconds since its oldest ready task became
    // ready (created, or its ETA passed).
    std::map<std::string, double> oldest_ready_age_s;
    // Tasks that reached a final state, per second, oldest first; the last
    // entry is the current (partial) second.
    std::vector<uint64_t> finished_per_s;
};

// A cluster member's figures (docs/CLUSTER.md), published by the loop
// whether this member leads or not (a follower has no engine, so no
// metrics_snapshot of its own beyond these).
struct cluster_figures {
    uint64_t node_id = 0;
    bool leading = false;
    uint64_t term = 0;
    uint64_t leader_changes = 0;  // leaders this member saw take over, the first included
    uint64_t last_index = 0;
    uint64_t commit_index = 0;
    uint64_t applied_index = 0;
    uint64_t snapshots = 0;            // taken
    uint64_t snapshots_installed = 0;  // received from a leader (or its own, at start)
    // Leader only: per other member, the entries of the leader's log it is
    // not known to hold.
    std::map<uint64_t, uint64_t> lag;
};

// Handler spec without its version: "ns.name@2" -> "ns.name".
std::string_view handler_base(std::string_view spec);

class metrics_recorder {
public:
    static constexpr std::size_t history_s = 300;
    static constexpr std::size_t handler_history_s = 60;

    void submitted(std::string_view handler);
    void dispatched(std::string_view handler, double wait_s);
    // A final state; run_s < 0 when no attempt ran.
    void finished(std::string_view handler, task_state state, double run_s, int64_t now_ms);
    void retried(std::string_view handler, double run_s);
    void state_change(const std::string& queue, int32_t priority, std::optional<task_state> from, task_state to);
    void queued_recovered(const std::string& queue, int32_t priority);
    void hello(bool accepted);
    void commit(double seconds);
    void turn(double seconds) { turn_.observe(seconds); }

    // The parts this recorder owns, copied into `s`.
    void fill(metrics_snapshot& s, int64_t now_ms) const;

private:
    // A handler's figures and its finished-per-second ring (last minute).
    struct handler_entry {
        handler_metrics m;
        std::array<uint32_t, handler_history_s> ring{};
        int64_t ring_sec = 0;
    };
    handler_entry& of(std::string_view handler);

    std::map<std::string, handler_entry, std::less<>> handlers_;
    std::map<std::string, std::map<int32_t, uint64_t>> queued_;
    std::array<uint64_t, history_s> ring_{};
    int64_t ring_sec_ = 0;  // the second ring_[ring_sec_ % history_s] counts
    uint64_t hellos_ = 0;
    uint64_t hellos_refused_ = 0;
    seconds_histogram commit_;
    uint64_t commits_ = 0;
    seconds_histogram turn_;
};

class metrics_hub {
public:
    void publish(std::shared_ptr<const metrics_snapshot> s) {
        std::lock_guard lock(mu_);
        latest_ = std::move(s);
    }
    // Never null: an empty snapshot before the first turn.
    std::shared_ptr<const metrics_snapshot> latest() const {
        std::lock_guard lock(mu_);
        return latest_;
    }
    void publish(std::shared_ptr<const cluster_figures> c) {
        std::lock_guard lock(mu_);
        cluster_ = std::move(c);
    }
    // Null outside a cluster.
    std::shared_ptr<const cluster_figures> cluster() const {
        std::lock_guard lock(mu_);
        return cluster_;
    }

private:
    mutable std::mutex mu_;
    std::shared_ptr<const metrics_snapshot> latest_ = std::make_shared<metrics_snapshot>();
    std::shared_ptr<const cluster_figures> cluster_;
};

// Prometheus text exposition format 0.0.4, with taskmill_build_info and
// the broker process's process_* figures (read from /proc on each call);
// `cluster`: a cluster member's taskmill_cluster_* figures, if given.
std::string render_prometheus(const metrics_snapshot& s, const cluster_figures* cluster = nullptr);

}  // namespace taskmill::broker
