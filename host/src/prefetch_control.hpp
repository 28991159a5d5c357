// Private to the worker: sizes its local queue (prefetch) from the run time
// of the tasks it sees, when --prefetch is auto.
//
// The local queue should hold enough work to keep the slots busy while the
// broker turns a RESULTS into the next DISPATCH (a turn or two, a few ms
// under load): deep for short tasks, whose slots would otherwise wait for
// the broker, and shallow for long ones, so that tasks are not hoarded by
// one worker while others are idle. The worker tells the broker the new
// size with CREDIT (slots = concurrency + prefetch).
//
// Threads: ran() from any slot thread (two relaxed atomic adds); the rest on
// the I/O thread.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <optional>

namespace taskmill::host::detail {

class prefetch_control {
public:
    using clock = std::chrono::steady_clock;

    // How much work the local queue aims to hold, spread over the slots.
    static constexpr std::chrono::microseconds cover{10'000};
    // A decision needs this many finished tasks, and comes at most this often.
    static constexpr uint64_t min_sample = 8;
    static constexpr std::chrono::milliseconds min_interval{20};

    // `fixed`: never changes (an explicit --prefetch). Otherwise it moves
    // between 1 and `max`, from `initial`.
    prefetch_control(uint32_t concurrency, uint32_t initial, uint32_t max, bool fixed);

    // A slot thread ran one task for `ns` nanoseconds.
    void ran(uint64_t ns) {
        run_ns_.fetch_add(ns, std::memory_order_relaxed);
        runs_.fetch_add(1, std::memory_order_relaxed);
    }

    uint32_t current() const { return current_; }
    bool fixed() const { return fixed_; }
    // The mean run time of the tasks in the last window (ns; 0 = none yet).
    double mean_run_ns() const { return mean_ns_; }

    // I/O thread: measures the tasks that ran since the last window (at
    // most every min_interval, from min_sample tasks), and returns the new
    // prefetch if that calls for a change (by half or by half again: small
    // drifts are not worth a message); nullopt otherwise, and always when
    // fixed.
    std::optional<uint32_t> update(clock::time_point now);

    // The prefetch for tasks of mean run time `mean_ns` on `concurrency`
    // slots: enough to cover `cover`, within [1, max].
    static uint32_t target(uint32_t concurrency, double mean_ns, uint32_t max);

private:
    uint32_t concurrency_;
    uint32_t max_;
    uint32_t current_;
    bool fixed_;
    std::atomic<uint64_t> run_ns_{0};
    std::atomic<uint64_t> runs_{0};
    uint64_t seen_ns_ = 0;    // run_ns_ at the last decision
    uint64_t seen_runs_ = 0;  // runs_ at the last decision
    double mean_ns_ = 0;
    clock::time_point last_{};
};

}  // namespace taskmill::host::detail
