#include "callback_thread.hpp"

namespace taskmill::client::detail {

callback_thread::callback_thread() : thread_([this] { run(); }) {}

callback_thread::~callback_thread() { stop(); }

bool callback_thread::post(std::function<void()> fn) {
    {
        std::lock_guard lock(mu_);
        if (stopping_) {
            return false;
        }
        queue_.push_back(std::move(fn));
    }
    cv_.notify_one();
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

void callback_thread::run() {
    std::unique_lock lock(mu_);
    for (;;) {
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) {
            return;  // stopping, and everything queued has run
        }
        auto fn = std::move(queue_.front());
        queue_.pop_front();
        lock.unlock();
        try {
            fn();
        } catch (...) {
            // A user callback's exception must not end the thread.
        }
        lock.lock();
    }
}

}  // namespace taskmill::client::detail
