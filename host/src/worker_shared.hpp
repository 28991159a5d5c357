// Private to the worker: what the I/O thread and the slot threads share.
//
// Slot threads never touch the ZeroMQ socket. They post outgoing messages
// and finished outcomes to the mailbox (a mutex-guarded queue that wakes the
// I/O thread through an eventfd), and wait for broker replies (CHECKPOINT,
// SPAWN) on futures the I/O thread fulfils. Starts are posted without a
// wake: they ride along with the next outcome, or go at the I/O thread's
// next periodic look (see worker_loop::next_timeout).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <spdlog/logger.h>

#include <taskmill/host/plugin_loader.hpp>
#include <taskmill/protocol/messages.hpp>

#include "prefetch_control.hpp"
#include "running_file.hpp"
#include "worker_stats.hpp"

namespace taskmill::host::detail {

using steady = std::chrono::steady_clock;

int64_t unix_now_ms();

// One attempt of one task, from DISPATCH until its outcome is sent. A task
// may wait in the local queue (prefetch) before a slot starts it; its
// timeout counts from that start.
struct task_run {
    protocol::work_item item;
    const loaded_handler* handler = nullptr;  // nullptr: no such handler here
    // Set once by the slot thread when it starts the task (start + timeout_ms);
    // read by the I/O thread (check_deadlines). 0 = not started, or no timeout.
    std::atomic<int64_t> deadline_unix_ms{0};
    std::atomic<bool> cancelled{false};  // CANCEL from the broker
    // The worker stops (stop, or retire past --grace-ms): is_cancelled() is
    // true; a task not started yet is not run, and one whose handler gives
    // up (TM_CANCELLED, TM_RETRY) is handed back with the BYE, not reported.
    std::atomic<bool> stopping{false};
    std::atomic<bool> finished{false};  // the slot thread is done with it (reported or handed back)
    std::atomic<bool> reported{false};  // an outcome was sent (first one wins)

    bool deadline_passed() const {
        int64_t d = deadline_unix_ms.load(std::memory_order_relaxed);
        return d > 0 && unix_now_ms() >= d;
    }
};

// Slot threads -> I/O thread. post*() may be called from any thread.
class mailbox {
public:
    mailbox();
    ~mailbox();
    mailbox(const mailbox&) = delete;
    mailbox& operator=(const mailbox&) = delete;

    void post(std::string command, std::string body);
    void post_outcome(protocol::outcome o);
    // A slot started this task (the broker learns it with the next RESULTS).
    // Does not wake the I/O thread: a start alone is not worth a message and
    // a broker turn of its own (for a short task the outcome follows at once
    // and implies the start).
    void post_started(std::shared_ptr<task_run> run);
    int fd() const { return fd_; }

    struct batch {
        std::vector<std::pair<std::string, std::string>> messages;
        std::vector<protocol::outcome> outcomes;
        std::vector<std::shared_ptr<task_run>> started;
        bool empty() const { return messages.empty() && outcomes.empty() && started.empty(); }
        void clear() {
            messages.clear();
            outcomes.clear();
            started.clear();
        }
    };
    // Replaces `into` with everything posted so far (each kind in posting
    // order) and clears the eventfd. The vectors of `into` are cleared and
    // kept for the next posts, so a steady flow does not reallocate them.
    void drain(batch& into);

private:
    // Runs `add` on the pending batch under the lock; if `wake`, wakes the
    // I/O thread unless a wake is already announced since the last drain()
    // (see push() for why that is safe).
    template <typename F> void push(bool wake, F&& add);
    std::mutex mu_;
    batch pending_;
    bool announced_ = false;  // under mu_: the eventfd was (or is about to be) written since the last drain()
    int fd_ = -1;
};

// Requests that wait for a broker reply, matched by `req`.
class pending_calls {
public:
    std::pair<uint64_t, std::future<protocol::control>> open();
    void fulfil(const protocol::control& reply);  // unknown req: ignored
    void fail_all(const std::string& why);

private:
    std::mutex mu_;
    uint64_t next_ = 1;
    std::map<uint64_t, std::promise<protocol::control>> calls_;
};

// Tasks waiting for a free slot, and the policy that decides how many slot
// threads to wake for them.
//
// Waking a sleeping thread costs a few µs of CPU and, on a VM whose idle
// vCPUs halt, tens of µs of latency; for tasks that run for microseconds
// that is more than the task. So a push wakes only as many slots as the
// queued work calls for: each running slot should have about `slice` of
// queued work (from the tasks' mean run time) before another is woken. Until
// a mean is known every task gets its own slot, as for long tasks. A slot
// that takes a task and leaves work behind re-applies the rule (the queue may
// have grown), and nudge() wakes a slot for a queue that nobody has taken
// from for `stall` (its running slots may all be busy with long tasks).
class task_queue {
public:
    static constexpr std::chrono::microseconds slice{1000};
    static constexpr std::chrono::milliseconds stall{2};

    // How many slot threads pop(); before the first pop().
    void set_slots(uint32_t slots) { slots_ = slots; }

    // Appends `tasks` in order; `mean_run_ns` is the tasks' recent mean run
    // time (0 = not known yet).
    void push(std::vector<std::shared_ptr<task_run>>& tasks, double mean_run_ns);
    // The next task; if none is queued, sleeps until this thread is woken
    // for one, or close() (then nullptr once the queue is empty). Tasks come
    // out in the order they were pushed (= the broker's dispatch order).
    std::shared_ptr<task_run> pop();
    // I/O thread, now and then: wakes a slot if tasks have waited `stall`
    // since the last pop while slots sleep.
    void nudge(steady::time_point now);
    void close();
    std::size_t size();
    uint32_t sleeping();  // slots asleep in pop() (tests, diagnostics)

private:
    // Under mu_: how many sleeping slots to wake for what is queued.
    uint32_t wanted_wakes() const;

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::shared_ptr<task_run>> q_;
    uint32_t slots_ = 1;
    uint32_t sleeping_ = 0;   // slot threads waiting in pop()
    uint32_t woken_ = 0;      // of those, notified and not yet up
    double mean_run_ns_ = 0;  // from the last push
    steady::time_point last_pop_{};
    bool closed_ = false;
};

struct shared_state {
    std::shared_ptr<spdlog::logger> log;
    mailbox mail;
    pending_calls calls;
    task_queue queue;
    std::chrono::milliseconds reply_timeout{30000};
    std::chrono::milliseconds progress_interval{100};
    std::mutex serial_mu;
    std::map<const tm_handler*, std::unique_ptr<std::mutex>> serial_locks;  // TM_HANDLER_SERIAL
    // Slot i's entry: the task its handler is running (for the supervisor,
    // should the process die). Not open: nothing is recorded.
    running_file running;
    worker_stats stats;                    // figures for the host's /metrics; not open: nothing is counted
    prefetch_control* prefetch = nullptr;  // learns the tasks' run time (prefetch, slot wakes); owned by the I/O loop
};

// Runs one task on the calling thread (slot thread `slot`): sets its
// deadline, posts that it started, records it in s.running's entry `slot`
// while the handler runs, and posts its outcome (unless the I/O thread
// already reported it, or the task is handed back: see task_run::stopping).
// Never throws.
void execute_task(shared_state& s, const std::shared_ptr<task_run>& run, uint32_t slot = 0);

// The slot threads: each pops tasks from s.queue until it is closed. Thread
// i runs its tasks as slot i.
class slot_pool {
public:
    slot_pool(shared_state& s, uint32_t slots);
    ~slot_pool();  // closes the queue and joins
    slot_pool(const slot_pool&) = delete;
    slot_pool& operator=(const slot_pool&) = delete;

private:
    shared_state& s_;
    std::vector<std::thread> threads_;
};

}  // namespace taskmill::host::detail
