// Measuring helpers: see measure.hpp.
#include "measure.hpp"

#include <cmath>
#include <limits>

namespace taskmill::bench {

double percentile(const std::vector<double>& sorted, double p) {
    if (sorted.empty()) {
        return 0;
    }
    auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(sorted.size())));
    if (rank == 0) {
        rank = 1;
    }
    return sorted[std::min(rank, sorted.size()) - 1];
}

void completion_counter::watch(const client::task_handle& h) {
    h.then([this](const client::task_info& t) { record(true, t); },
           [this](const client::task_info& t) { record(false, t); });
}

void completion_counter::record(bool ok, const client::task_info& t) {
    bool reached = false;
    {
        std::lock_guard lock(mu_);
        if (ok) {
            ++succeeded_;
        } else {
            ++failed_;
            if (first_error_.empty()) {
                first_error_ = t.id + " " + t.state + ": " + t.error;
            }
        }
        reached = succeeded_ + failed_ >= target_;
    }
    // Only the completion the waiter waits for wakes it: a wakeup per task
    // would cost the client two context switches per task.
    if (reached) {
        cv_.notify_all();
    }
}

bool completion_counter::wait_for(std::size_t total, steady::time_point until) {
    std::unique_lock lock(mu_);
    target_ = total;
    const bool all = cv_.wait_until(lock, until, [&] { return succeeded_ + failed_ >= total; });
    target_ = std::numeric_limits<std::size_t>::max();
    return all;
}

std::size_t completion_counter::succeeded() const {
    std::lock_guard lock(mu_);
    return succeeded_;
}

std::size_t completion_counter::failed() const {
    std::lock_guard lock(mu_);
    return failed_;
}

std::string completion_counter::first_error() const {
    std::lock_guard lock(mu_);
    return first_error_;
}

client::task_options make_task(const std::string& handler, const std::string& queue, std::size_t i) {
    client::task_options t;
    t.handler = handler;
    t.queue = queue;
    t.payload = nlohmann::json{{"i", i}};
    return t;
}

}  // namespace taskmill::bench
