// The worker's local queue and its wake policy: short tasks wake few slots,
// tasks of unknown or long run time get a slot each, and a queue stuck
// behind slots busy with long tasks is nudged.
#include <atomic>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "worker_shared.hpp"

namespace detail = taskmill::host::detail;
using namespace std::chrono_literals;

namespace {

// `slots` threads popping from a queue, running `run(id)` for each task and
// recording which thread ran it.
class slots {
public:
    slots(detail::task_queue& q, uint32_t n, std::function<void(const std::string&)> run) : q_(q) {
        q_.set_slots(n);
        for (uint32_t i = 0; i < n; ++i) {
            threads_.emplace_back([this, i, run] {
                while (auto t = q_.pop()) {
                    {
                        std::lock_guard lock(mu_);
                        ran_by_.insert(i);
                        ++done_;
                    }
                    run(t->item.id);
                }
            });
        }
    }
    ~slots() {
        q_.close();
        for (auto& t : threads_) t.join();
    }
    std::set<uint32_t> ran_by() {
        std::lock_guard lock(mu_);
        return ran_by_;
    }
    std::size_t started() {
        std::lock_guard lock(mu_);
        return done_;
    }

private:
    detail::task_queue& q_;
    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::set<uint32_t> ran_by_;
    std::size_t done_ = 0;
};

std::vector<std::shared_ptr<detail::task_run>> tasks(int n, const std::string& prefix) {
    std::vector<std::shared_ptr<detail::task_run>> out;
    for (int i = 0; i < n; ++i) {
        out.push_back(std::make_shared<detail::task_run>());
        out.back()->item.id = prefix + std::to_string(i);
    }
    return out;
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds timeout = 5s) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (!cond()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::yield();
    }
    return true;
}

// Until all `n` slot threads are asleep in pop() (nothing is queued yet).
void let_them_sleep(detail::task_queue& q, uint32_t n) {
    ASSERT_TRUE(wait_for([&] { return q.sleeping() == n; })) << q.sleeping() << " of " << n << " asleep";
}

}  // namespace

TEST(TaskQueue, ShortTasksAreRunByOneSlot) {
    detail::task_queue q;
    slots s(q, 4, [](const std::string&) {});
    let_them_sleep(q, 4);
    auto batch = tasks(200, "t");
    q.push(batch, 1000.0);  // 1 µs each: 200 µs of work, under one slice
    ASSERT_TRUE(wait_for([&] { return s.started() == 200; }));
    EXPECT_EQ(s.ran_by().size(), 1u) << "200 µs of work woke more than one slot";
}

// Pushes `n` tasks of mean run time `mean_ns` to `n` sleeping slots, each of
// which holds its slot until all `n` run at once; true if they get there.
bool all_run_at_once(uint32_t n, double mean_ns) {
    detail::task_queue q;
    std::atomic<uint32_t> running{0};
    std::atomic<bool> all_in{false};
    slots s(q, n, [&](const std::string&) {
        if (++running == n) all_in = true;
        wait_for([&] { return all_in.load(); });
    });
    let_them_sleep(q, n);
    auto batch = tasks(static_cast<int>(n), "t");
    q.push(batch, mean_ns);
    bool ok = wait_for([&] { return all_in.load(); });
    all_in = true;  // let the slots go either way
    return ok && s.ran_by().size() == n;
}

TEST(TaskQueue, TasksOfUnknownRunTimeGetASlotEach) { EXPECT_TRUE(all_run_at_once(4, 0.0)); }

TEST(TaskQueue, LongTasksGetASlotEach) { EXPECT_TRUE(all_run_at_once(3, 50e6)); }  // 50 ms each

TEST(TaskQueue, AQueueBehindABusySlotIsNudged) {
    detail::task_queue q;
    std::atomic<bool> release{false};
    slots s(q, 2, [&](const std::string& id) {
        if (id == "long0") wait_for([&] { return release.load(); }, 10s);
    });
    let_them_sleep(q, 2);
    auto first = tasks(1, "long");
    q.push(first, 1000.0);
    ASSERT_TRUE(wait_for([&] { return s.started() == 1; }));
    // Short tasks by the mean: one awake slot is enough for them, but that
    // slot is stuck in the long one.
    auto second = tasks(1, "short");
    q.push(second, 1000.0);
    EXPECT_EQ(q.size(), 1u);
    q.nudge(std::chrono::steady_clock::time_point{});  // not `stall` after the last pop: no wake
    EXPECT_EQ(q.size(), 1u);
    q.nudge(std::chrono::steady_clock::now() + detail::task_queue::stall + 1ms);
    EXPECT_TRUE(wait_for([&] { return s.started() == 2; })) << "the nudge woke no slot";
    EXPECT_EQ(s.ran_by().size(), 2u);
    release = true;
}

TEST(TaskQueue, CloseEndsEveryPop) {
    detail::task_queue q;
    {
        slots s(q, 3, [](const std::string&) {});
        let_them_sleep(q, 3);
    }  // closes and joins: a pop that never returned would hang here
    EXPECT_EQ(q.size(), 0u);
}
