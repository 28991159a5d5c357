// Broker metrics: what the engine counts as it works (by handler, queue,
// priority) and the immutable snapshot the HTTP threads read.
//
// Threading: metrics_recorder belongs to the loop thread (plain integers, no
// locks on the hot path). Once per turn the loop builds a metrics_snapshot
// and publishes it into a metrics_hub; HTTP threads take a shared_ptr to the
// latest snapshot. The hub's mutex only guards a pointer swap, so a scrape
// can never hold the loop back for longer than that swap.
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

#include "model/task_state.hpp"

namespace taskmill::broker {

// Cumulative histogram over fixed bounds in milliseconds.
struct histogram {
    static constexpr std::array<double, 15> bounds = {1,    5,    10,   25,    50,    100,   250,   500,
                                                      1000, 2500, 5000, 10000, 30000, 60000, 300000};
    std::array<uint64_t, bounds.size() + 1> buckets{};  // per bucket (not cumulative); last = +Inf
    double sum = 0;
    uint64_t count = 0;
    void observe(double ms);
};

// The same over finer bounds, for loop turns (a turn is a millisecond or
// two when all is well; the bounds show the few that are not).
struct turn_histogram {
    static constexpr std::array<double, 12> bounds = {0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000};
    std::array<uint64_t, bounds.size() + 1> buckets{};
    double sum = 0;
    uint64_t count = 0;
    void observe(double ms);
};

struct handler_metrics {
    uint64_t submitted = 0;
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    uint64_t retried = 0;
    uint64_t cancelled = 0;
    uint64_t expired = 0;
    histogram run_ms;   // attempt run time (start to result)
    histogram wait_ms;  // queue wait (ready to dispatched)
};

struct metrics_snapshot {
    int64_t time_ms = 0;
    int64_t started_ms = 0;
    std::map<std::string, handler_metrics> handlers;                // by handler name (no @version)
    std::map<std::string, std::map<std::string, uint64_t>> states;  // queue -> state -> tasks
    std::map<std::string, std::map<int32_t, uint64_t>> queued;      // queue -> priority -> QUEUED tasks
    std::map<std::string, uint64_t> counters;                       // the engine's named counters
    uint32_t workers = 0;
    uint32_t slots = 0;
    uint32_t busy = 0;
    std::map<std::pair<std::string, std::string>, uint64_t> plugins;  // (plugin, version) -> workers
    uint64_t hellos = 0;
    uint64_t hellos_refused = 0;
    histogram commit_ms;
    uint64_t commits = 0;
    turn_histogram turn_ms;  // loop turns: messages, timers, jobs, dispatch and commit
    double store_fill = 0;   // used fraction of the LMDB map
    uint64_t store_map_bytes = 0;
    // Tasks that reached a final state, per second, oldest first; the last
    // entry is the current (partial) second.
    std::vector<uint64_t> finished_per_s;
};

// Handler spec without its version: "ns.name@2" -> "ns.name".
std::string_view handler_base(std::string_view spec);

class metrics_recorder {
public:
    static constexpr std::size_t history_s = 300;

    void submitted(std::string_view handler);
    void started(std::string_view handler, double wait_ms);
    // A final state; run_ms < 0 when no attempt ran.
    void finished(std::string_view handler, task_state state, double run_ms, int64_t now_ms);
    void retried(std::string_view handler, double run_ms);
    void state_change(const std::string& queue, int32_t priority, std::optional<task_state> from, task_state to);
    void queued_recovered(const std::string& queue, int32_t priority);
    void hello(bool accepted);
    void commit(double ms);
    void turn(double ms) { turn_ms_.observe(ms); }

    // The parts this recorder owns, copied into `s`.
    void fill(metrics_snapshot& s, int64_t now_ms) const;

private:
    handler_metrics& of(std::string_view handler);

    std::map<std::string, handler_metrics, std::less<>> handlers_;
    std::map<std::string, std::map<int32_t, uint64_t>> queued_;
    std::array<uint64_t, history_s> ring_{};
    int64_t ring_sec_ = 0;  // the second ring_[ring_sec_ % history_s] counts
    uint64_t hellos_ = 0;
    uint64_t hellos_refused_ = 0;
    histogram commit_ms_;
    uint64_t commits_ = 0;
    turn_histogram turn_ms_;
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

private:
    mutable std::mutex mu_;
    std::shared_ptr<const metrics_snapshot> latest_ = std::make_shared<metrics_snapshot>();
};

// Prometheus text exposition format 0.0.4.
std::string render_prometheus(const metrics_snapshot& s);

}  // namespace taskmill::broker
