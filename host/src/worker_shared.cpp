// The worker's cross-thread plumbing: mailbox, pending calls, task queue.
#include "worker_shared.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
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

// Wake coalescing: only the first waking post after a drain() writes the
// eventfd; later posts join the batch that write already announced. Nothing
// that asks for a wake can be left pending without one, because of the
// order in drain(): it reads (resets) the eventfd first and takes the batch
// (clearing `announced_`) under the lock second.
//  - A post that announced before drain() took the batch writes after its
//    own unlock: either before drain()'s read (consumed; drain() then takes
//    its item) or after it (a spurious wake; the next drain() finds an empty
//    batch, which on_mailbox() ignores).
//  - A post that announced after drain() took the batch writes after
//    drain() released the lock, so after drain()'s read: the counter stays
//    non-zero and poll() wakes the I/O thread again for it.
//  - A post that found a wake announced adds to a batch whose announcing
//    post wrote (or is about to write) the eventfd: the item is taken
//    together with that one.
// Reading the eventfd after taking the batch would break the second case: the
// read could consume the write of a post made in between and strand its item.
template <typename F> void mailbox::push(bool wake, F&& add) {
    bool write = false;
    {
        std::lock_guard lock(mu_);
        add(pending_);
        write = wake && !announced_;
        announced_ = announced_ || wake;
    }
    if (write) {
        uint64_t one = 1;
        // EAGAIN means the counter is already non-zero: the I/O thread will wake.
        (void)!::write(fd_, &one, sizeof one);
    }
}

void mailbox::post(std::string command, std::string body) {
    push(true, [&](batch& b) { b.messages.emplace_back(std::move(command), std::move(body)); });
}

void mailbox::post_outcome(protocol::outcome o) {
    push(true, [&](batch& b) { b.outcomes.push_back(std::move(o)); });
}

void mailbox::post_started(std::shared_ptr<task_run> run) {
    push(false, [&](batch& b) { b.started.push_back(std::move(run)); });
}

void mailbox::drain(batch& into) {
    into.clear();
    uint64_t count = 0;
    (void)!::read(fd_, &count, sizeof count);  // first: see push()
    std::lock_guard lock(mu_);
    std::swap(into, pending_);
    announced_ = false;
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

uint32_t task_queue::wanted_wakes() const {
    const int64_t asleep = int64_t{sleeping_} - woken_;  // not yet owed a wake
    const int64_t awake = int64_t{slots_} - asleep;      // running, or woken and on their way
    if (q_.empty() || asleep <= 0) return 0;
    double runners = static_cast<double>(q_.size());  // unknown run time: one slot per task
    if (mean_run_ns_ > 0) {
        const double slice_ns = std::chrono::duration<double, std::nano>(slice).count();
        runners = std::ceil(static_cast<double>(q_.size()) * mean_run_ns_ / slice_ns);
    }
    runners = std::max(runners, 1.0);
    if (runners <= static_cast<double>(awake)) return 0;
    return static_cast<uint32_t>(std::min(runners - static_cast<double>(awake), static_cast<double>(asleep)));
}

void task_queue::push(std::vector<std::shared_ptr<task_run>>& tasks, double mean_run_ns) {
    uint32_t wake = 0;
    {
        std::lock_guard lock(mu_);
        for (auto& t : tasks) q_.push_back(std::move(t));
        mean_run_ns_ = mean_run_ns;
        wake = wanted_wakes();
        woken_ += wake;
    }
    tasks.clear();
    for (uint32_t i = 0; i < wake; ++i) cv_.notify_one();
}

std::shared_ptr<task_run> task_queue::pop() {
    std::unique_lock lock(mu_);
    if (q_.empty() && !closed_) {
        // Asleep until woken for work: a wake is a ticket (woken_), taken by
        // whichever sleeper sees it first. One that finds the work already
        // gone to a slot that was awake sleeps again; so does one woken
        // spuriously or by a notify whose ticket another took.
        ++sleeping_;
        for (;;) {
            cv_.wait(lock);
            if (closed_) break;
            if (woken_ == 0) continue;
            --woken_;
            if (!q_.empty()) break;
        }
        --sleeping_;
    }
    if (q_.empty()) return nullptr;  // closed
    auto t = std::move(q_.front());
    q_.pop_front();
    last_pop_ = steady::now();
    // Work left behind: the queue may have grown past what the awake slots
    // should take on.
    const uint32_t wake = wanted_wakes();
    woken_ += wake;
    lock.unlock();
    for (uint32_t i = 0; i < wake; ++i) cv_.notify_one();
    return t;
}

void task_queue::nudge(steady::time_point now) {
    {
        std::lock_guard lock(mu_);
        if (closed_ || q_.empty() || sleeping_ <= woken_ || now - last_pop_ < stall) return;
        ++woken_;
        last_pop_ = now;  // one slot per stall period
    }
    cv_.notify_one();
}

void task_queue::close() {
    {
        std::lock_guard lock(mu_);
        closed_ = true;
        woken_ = 0;  // every sleeper leaves now; none takes a ticket on the way out
    }
    cv_.notify_all();
}

std::size_t task_queue::size() {
    std::lock_guard lock(mu_);
    return q_.size();
}

uint32_t task_queue::sleeping() {
    std::lock_guard lock(mu_);
    return sleeping_;
}

slot_pool::slot_pool(shared_state& s, uint32_t slots) : s_(s) {
    s_.queue.set_slots(slots);
    for (uint32_t i = 0; i < slots; ++i) {
        threads_.emplace_back([this, i] {
            while (auto t = s_.queue.pop()) execute_task(s_, t, i);
        });
    }
}

slot_pool::~slot_pool() {
    s_.queue.close();
    for (auto& t : threads_) t.join();
}

}  // namespace taskmill::host::detail
