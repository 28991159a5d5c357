#include "callback_thread.hpp"

namespace taskmill::client::detail {

void callback_job::run() noexcept {
    try {
        fn(*info);
    } catch (...) {
        // A user callback's exception must not end the thread.
    }
}

callback_thread::callback_thread() : thread_([this] { run(); }) {}

callback_thread::~callback_thread() { stop(); }

bool callback_thread::post(std::vector<callback_job>& jobs) {
    if (jobs.empty()) {
        return true;
    }
    bool wake = false;
    {
        std::lock_guard lock(mu_);
        if (stopping_) {
            return false;
        }
        if (queue_.empty()) {
            queue_.swap(jobs);
        } else {
            for (auto& j : jobs) {
                queue_.push_back(std::move(j));
            }
            jobs.clear();
        }
        wake = idle_;
    }
    if (wake) {
        cv_.notify_one();
    }
    return true;
}

void callback_thread::stop() {
    {
        std::lock_guard lock(mu_);
        stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) {
        thread_.join();
    }
}

// Takes the whole queue at once and runs it outside the lock, so a burst of
// completions costs one lock round, not one per callback.
void callback_thread::run() {
    std::vector<callback_job> batch;
    std::unique_lock lock(mu_);
    for (;;) {
        if (queue_.empty()) {
            if (stopping_) {
                return;  // stopping, and everything queued has run
            }
            idle_ = true;
            cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
            idle_ = false;
            continue;
        }
        batch.swap(queue_);
        lock.unlock();
        for (auto& j : batch) {
            j.run();
        }
        batch.clear();  // releases the states outside the lock as well
        lock.lock();
    }
}

}  // namespace taskmill::client::detail
