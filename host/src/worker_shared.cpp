// The worker's cross-thread plumbing: mailbox, pending calls, task queue.
#include "worker_shared.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <stdexcept>

namespace taskmill::host::detail {

int64_t unix_now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

mailbox::mailbox() : fd_(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) {
    if (fd_ < 0) throw std::runtime_error("eventfd failed");
}

mailbox::~mailbox() { ::close(fd_); }

void mailbox::wake() {
    uint64_t one = 1;
    // EAGAIN means the counter is already non-zero: the I/O thread will wake.
    (void)!::write(fd_, &one, sizeof one);
}

void mailbox::post(std::string command, std::string body) {
    {
        std::lock_guard lock(mu_);
        pending_.messages.emplace_back(std::move(command), std::move(body));
    }
    wake();
}

void mailbox::post_outcome(protocol::outcome o) {
    {
        std::lock_guard lock(mu_);
        pending_.outcomes.push_back(std::move(o));
    }
    wake();
}

mailbox::batch mailbox::drain() {
    uint64_t count = 0;
    (void)!::read(fd_, &count, sizeof count);
    std::lock_guard lock(mu_);
    batch out = std::move(pending_);
    pending_ = batch{};
    return out;
}

std::pair<uint64_t, std::future<protocol::control>> pending_calls::open() {
    std::lock_guard lock(mu_);
    uint64_t req = next_++;
    auto fut = calls_[req].get_future();
    return {req, std::move(fut)};
}

void pending_calls::fulfil(const protocol::control& reply) {
    std::lock_guard lock(mu_);
    auto it = calls_.find(reply.req);
    if (it == calls_.end()) return;
    it->second.set_value(reply);
    calls_.erase(it);
}

void pending_calls::fail_all(const std::string& why) {
    std::lock_guard lock(mu_);
    for (auto& [req, promise] : calls_) {
        protocol::control c;
        c.req = req;
        c.ok = false;
        c.error = why;
        promise.set_value(c);
    }
    calls_.clear();
}

void task_queue::push(std::shared_ptr<task_run> t) {
    {
        std::lock_guard lock(mu_);
        q_.push_back(std::move(t));
    }
    cv_.notify_one();
}

std::shared_ptr<task_run> task_queue::pop() {
    std::unique_lock lock(mu_);
    cv_.wait(lock, [&] { return closed_ || !q_.empty(); });
    if (q_.empty()) return nullptr;
    auto t = std::move(q_.front());
    q_.pop_front();
    return t;
}

void task_queue::close() {
    {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    cv_.notify_all();
}

std::size_t task_queue::size() {
    std::lock_guard lock(mu_);
    return q_.size();
}

slot_pool::slot_pool(shared_state& s, uint32_t slots) : s_(s) {
    for (uint32_t i = 0; i < slots; ++i) {
        threads_.emplace_back([this] {
            while (auto t = s_.queue.pop()) execute_task(s_, *t);
        });
    }
}

slot_pool::~slot_pool() {
    s_.queue.close();
    for (auto& t : threads_) t.join();
}

}  // namespace taskmill::host::detail
