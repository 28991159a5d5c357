// Small measuring helpers shared by the bench modes: clocks, percentiles,
// a completion counter fed by task_handle::then callbacks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <vector>

#include <taskmill/client/client.hpp>

namespace taskmill::bench {

using steady = std::chrono::steady_clock;

inline double seconds_between(steady::time_point a, steady::time_point b) {
    return std::chrono::duration<double>(b - a).count();
}

inline double ms_between(steady::time_point a, steady::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
}

// Nearest-rank percentile of sorted values (p in [0, 1]); 0 for none.
double percentile(const std::vector<double>& sorted, double p);

// Counts final states reported by then() callbacks (which run on the
// client's callback thread) and lets the producer wait for a total.
class completion_counter {
public:
    void watch(const client::task_handle& h);
    // Waits until `total` tasks finished or `until` passes; true if all did.
    bool wait_for(std::size_t total, steady::time_point until);
    std::size_t succeeded() const;
    std::size_t failed() const;
    std::string first_error() const;

private:
    void record(bool ok, const client::task_info& t);

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::size_t succeeded_ = 0;
    std::size_t failed_ = 0;
    std::size_t target_ = static_cast<std::size_t>(-1);  // the total wait_for waits for
    std::string first_error_;
};

// A task for `handler` on `queue` with the payload {"i": i}.
client::task_options make_task(const std::string& handler, const std::string& queue, std::size_t i);

}  // namespace taskmill::bench
