// Worker prefetch against real processes: a worker holds tasks beyond its
// slots (--prefetch); a task's timeout and lease count from when a slot
// starts it, and a worker killed while holding prefetched tasks loses none
// and runs none to completion twice.
#include "system_fixture.hpp"

#include <signal.h>

#include <map>

#include <gtest/gtest.h>

#include <taskmill/protocol/frame.hpp>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

class Prefetch : public system_test {
protected:
    // A broker and one host with one worker process of `concurrency` slots
    // and `prefetch` more tasks in its local queue (< 0: auto, which starts
    // at 4 x concurrency).
    void start(const std::vector<std::string>& broker_extra, int concurrency, int prefetch,
               std::vector<std::string> host_extra = {}) {
        if (prefetch >= 0) {
            host_extra.insert(host_extra.end(), {"--prefetch", std::to_string(prefetch)});
        } else {
            prefetch = 4 * concurrency;
        }
        start_system(broker_extra, {.processes = 1, .concurrency = concurrency, .extra = host_extra}, 1);
        auto w = client->workers();
        ASSERT_EQ(w.size(), 1u);
        EXPECT_EQ(w[0].slots, static_cast<uint32_t>(concurrency)) << "WORKERS: slots are the concurrency";
        EXPECT_EQ(w[0].prefetch, static_cast<uint32_t>(prefetch)) << "and the prefetch apart";
    }

    std::vector<std::string> submit_sleeps(int n, int64_t ms, int64_t timeout_ms, int retries) {
        std::vector<tp::task_spec> specs;
        for (int i = 0; i < n; ++i) {
            auto t = task("demo.sleep", {{"ms", ms}});
            t.timeout_ms = timeout_ms;
            t.retries = retries;
            specs.push_back(std::move(t));
        }
        auto ids = client->submit(specs);
        EXPECT_EQ(ids.size(), static_cast<size_t>(n));
        return ids;
    }

    uint32_t busy() {
        auto w = client->workers();
        return w.empty() ? 0 : w[0].busy;
    }

    uint64_t counter(const std::string& name) {
        auto rep = client->call(tp::cmd::stats, {});
        if (!rep || !rep->stats) return 0;
        auto it = rep->stats->counters.find(name);
        return it == rep->stats->counters.end() ? 0 : it->second;
    }

    // The task.succeeded events received so far, per task id.
    std::map<std::string, int> successes() {
        events->drain(50ms);
        std::map<std::string, int> n;
        for (const auto& id : ids_seen) {
            for (const auto& e : events->of(id)) {
                if (e.value("type", "") == "task.succeeded") ++n[id];
            }
        }
        return n;
    }
    std::vector<std::string> ids_seen;

    void TearDown() override {
        if (HasFailure() && host) std::cerr << "---- host log ----\n" << host->log_text();
    }
};

}  // namespace

// One slot, four more tasks in the worker's queue: each 400 ms sleep with a
// 600 ms timeout waits up to 1.2 s behind the others, yet none times out
// (its timeout counts from when the slot starts it) and none is retried.
// Auto prefetch end to end: short tasks make the worker ask for a deep local
// queue (CREDIT), long ones for a shallow one; the broker follows, and every
// task completes once.
TEST_F(Prefetch, AutoPrefetchFollowsTheTasksRunTime) {
    start({}, 2, -1, {"--prefetch-max", "300"});
    std::vector<tp::task_spec> specs;
    for (int i = 0; i < 400; ++i) specs.push_back(task("echo.echo", {{"i", i}}));
    auto ids = client->submit(specs);
    ASSERT_EQ(ids.size(), 400u);
    for (const auto& id : ids) EXPECT_EQ(final_state(id).state, "SUCCEEDED");
    // Echo takes microseconds: the queue deepens from its start of 4 x 2
    // (to the ceiling of 300 on a quiet machine; a loaded one stretches the
    // measured run times).
    EXPECT_TRUE(wait_until(
        [&] {
            auto w = client->workers();
            return !w.empty() && w[0].slots == 2 && w[0].prefetch > 8;
        },
        30s))
        << "prefetch stayed at " << (client->workers().empty() ? 0 : client->workers()[0].prefetch);

    auto sleeps = submit_sleeps(16, 40, 0, 0);  // two windows of 8: the first may mix in echoes
    for (const auto& id : sleeps) EXPECT_EQ(final_state(id).state, "SUCCEEDED");
    // 2 slots x 10 ms of cover / 40 ms tasks: one waits.
    EXPECT_TRUE(wait_until(
        [&] {
            auto w = client->workers();
            return !w.empty() && w[0].slots == 2 && w[0].prefetch == 1;
        },
        30s))
        << "prefetch stayed at " << (client->workers().empty() ? 0 : client->workers()[0].prefetch);
    EXPECT_EQ(counter("succeeded"), 416u);
}

// Slots are woken by work: after a stream of no-op tasks (which run on one
// slot) a batch of long tasks still gets a slot each, although the mean
// run time the worker last measured says they are tiny: all four run at
// once, shown by progress on each while none has finished.
TEST_F(Prefetch, LongTasksAfterShortOnesStillRunSideBySide) {
    start({}, 4, -1);
    std::vector<tp::task_spec> specs;
    for (int i = 0; i < 300; ++i) specs.push_back(task("echo.echo", {{"i", i}}));
    auto quick = client->submit(specs);
    ASSERT_EQ(quick.size(), 300u);
    for (const auto& id : quick) EXPECT_EQ(final_state(id).state, "SUCCEEDED");

    specs.clear();
    for (int i = 0; i < 4; ++i) specs.push_back(task("demo.progress", {{"steps", 60}, {"ms", 50}}));  // ~3 s each
    auto slow = client->submit(specs);
    ASSERT_EQ(slow.size(), 4u);
    auto all_running = [&] {
        for (const auto& id : slow) {
            auto t = client->status(id);
            if (!t || t->state != "RUNNING" || !t->progress || t->progress->fraction <= 0) return false;
        }
        return true;
    };
    EXPECT_TRUE(wait_until(all_running, 2500ms)) << "the four long tasks did not all run at once";
    for (const auto& id : slow) EXPECT_EQ(final_state(id).state, "SUCCEEDED");
}

TEST_F(Prefetch, TasksWaitingInTheLocalQueueDoNotTimeOut) {
    start({}, 1, 4);
    auto ids = submit_sleeps(4, 400, 600, 2);
    ASSERT_TRUE(wait_until([&] { return busy() >= 2; }, 10s)) << "the worker took more tasks than its one slot";
    for (const auto& id : ids) {
        auto t = final_state(id);
        EXPECT_EQ(t.state, "SUCCEEDED") << id << " " << t.error;
        EXPECT_EQ(t.attempts, 1u) << id << " was retried: " << t.error;
    }
    EXPECT_EQ(counter("timeouts"), 0u);
    EXPECT_EQ(counter("retried"), 0u);
}

// The broker restarts a task's lease when the worker reports its start
// (RESULTS `started`): with liveness 1 s and lease grace 0.2 s, a lease
// counted from the DISPATCH would be 0.6 + 0.2 + 1 = 1.8 s, and the fifth
// 400 ms task, started ~1.6 s after its DISPATCH, ends ~2.0 s after it.
TEST_F(Prefetch, LeaseOfAPrefetchedTaskCountsFromItsStart) {
    start({"--heartbeat-ms", "200", "--liveness-ms", "1000", "--lease-grace-ms", "200"}, 1, 4);
    auto ids = submit_sleeps(5, 400, 600, 0);
    for (const auto& id : ids) {
        auto t = final_state(id);
        EXPECT_EQ(t.state, "SUCCEEDED") << id << " " << t.error;
        EXPECT_EQ(t.attempts, 1u) << id;
    }
    EXPECT_EQ(counter("timeouts"), 0u);
}

// SIGKILL the worker while it holds one running and four prefetched tasks:
// the supervisor reports it dead, the broker requeues what it held, and
// every task succeeds exactly once.
TEST_F(Prefetch, WorkerKilledWhileHoldingPrefetchedTasksLosesNone) {
    start({"--max-crashes", "3"}, 1, 4);
    auto ids = submit_sleeps(10, 300, 0, 3);
    ids_seen = ids;
    ASSERT_TRUE(wait_until([&] { return busy() == 5; }, 10s)) << "busy=" << busy();
    auto w = client->workers();
    ASSERT_EQ(w.size(), 1u);
    auto victim = static_cast<pid_t>(w[0].pid);
    ASSERT_GT(victim, 0);
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    for (const auto& id : ids) {
        auto t = final_state(id);
        EXPECT_EQ(t.state, "SUCCEEDED") << id << " " << t.error;
    }
    // A restarted worker took over.
    ASSERT_TRUE(wait_until(
        [&] {
            auto now = client->workers();
            return now.size() == 1 && now[0].pid != victim;
        },
        20s));
    std::map<std::string, int> n;
    ASSERT_TRUE(wait_until(
        [&] {
            n = successes();
            return n.size() == ids.size();
        },
        10s));
    for (const auto& id : ids) EXPECT_EQ(n[id], 1) << id << " succeeded " << n[id] << " times";
    EXPECT_EQ(counter("duplicates"), 0u);
}

// A worker's death is charged only to the tasks it may have been running:
// with one slot (HELLO slots 5, prefetch 4) one task, its oldest, not the
// four waiting in its queue.
TEST_F(Prefetch, WorkerDeathIsChargedOnlyToTheTasksItMayHaveStarted) {
    start({"--max-crashes", "3"}, 1, 4);
    // ~2 s tasks that report progress every 50 ms: progress on the first
    // proves its slot runs it (a DISPATCH alone does not: the kill could
    // come before the slot starts, and then no task is to blame).
    std::vector<tp::task_spec> specs;
    for (int i = 0; i < 5; ++i) {
        auto t = task("demo.progress", {{"steps", 40}, {"ms", 50}});
        t.retries = 3;
        specs.push_back(std::move(t));
    }
    auto ids = client->submit(specs);
    ASSERT_EQ(ids.size(), 5u);
    ASSERT_TRUE(wait_until([&] { return busy() == 5; }, 10s)) << "busy=" << busy();
    ASSERT_TRUE(wait_until(
        [&] {
            auto t = client->status(ids[0]);
            return t && t->progress && t->progress->fraction > 0;
        },
        10s));
    auto w = client->workers();
    ASSERT_EQ(w.size(), 1u);
    auto victim = static_cast<pid_t>(w[0].pid);
    ASSERT_EQ(::kill(victim, SIGKILL), 0);
    ASSERT_TRUE(wait_until([&] { return counter("requeued") >= 5; }, 20s)) << "requeued=" << counter("requeued");
    EXPECT_EQ(counter("crashes"), 1u) << "a crash was charged to tasks that never started";
    for (const auto& id : ids) EXPECT_EQ(final_state(id).state, "SUCCEEDED") << id;
}
