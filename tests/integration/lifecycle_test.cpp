// The task lifecycle against real processes: retries with backoff,
// timeouts, delays, TTL, cancellation, idempotency, poison tasks, events,
// worker deaths and recycling.
#include "system_fixture.hpp"

#include <signal.h>

#include <set>

#include <gtest/gtest.h>

#include <taskmill/protocol/frame.hpp>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

class TaskLifecycle : public system_test {
protected:
    // A broker and one host serving only the "default" queue, so tasks sent
    // to "parked" stay queued.
    void start(const std::vector<std::string>& broker_extra = {}, int processes = 1, int concurrency = 4,
               std::vector<std::string> host_extra = {}) {
        host_extra.insert(host_extra.end(), {"--queues", "default"});
        start_system(broker_extra, {.processes = processes, .concurrency = concurrency, .extra = host_extra},
                     static_cast<std::size_t>(processes));
    }

    std::string submit(tp::task_spec t) {
        auto ids = client->submit({std::move(t)});
        EXPECT_EQ(ids.size(), 1u);
        return ids.empty() ? std::string() : ids[0];
    }

    bool wait_state(const std::string& id, const std::string& state, ms timeout = 20s) {
        return wait_until(
            [&] {
                auto t = client->status(id);
                return t && t->state == state;
            },
            timeout);
    }

    std::set<int64_t> worker_pids() {
        std::set<int64_t> pids;
        for (auto& w : client->workers()) {
            pids.insert(w.pid);
        }
        return pids;
    }

    int64_t pid_of(const std::string& worker_id) {
        for (auto& w : client->workers()) {
            if (w.id == worker_id) {
                return w.pid;
            }
        }
        return 0;
    }

    // Start times (ms) of each attempt of a task, from task.running events.
    // Events travel on their own socket and may trail the STATUS reply that
    // showed a state (on a loaded machine, by far more than a fixed wait):
    // the broker publishes every state change in order, so first wait until
    // the last event received is that of the task's current state.
    std::vector<int64_t> attempt_starts(const std::string& id) {
        EXPECT_TRUE(wait_until(
            [&] {
                events->drain(20ms);
                auto seen = events->of(id);
                auto now = client->status(id);
                return now && !seen.empty() && seen.back().value("state", "") == now->state;
            },
            20s))
            << "the events of " << id << " did not catch up with its state";
        std::vector<int64_t> starts;
        for (auto& e : events->of(id)) {
            if (e.value("type", "") == "task.running") {
                starts.push_back(e["time_ms"].get<int64_t>());
            }
        }
        return starts;
    }
};

TEST_F(TaskLifecycle, RetryableFailuresRetryWithGrowingGapsThenSucceed) {
    start();
    auto t = task("demo.fail", {{"mode", "retryable"}, {"times", 2}});
    t.retries = 3;
    t.backoff_base_ms = 200;
    t.backoff_factor = 4;
    auto id = submit(t);
    auto done = final_state(id);
    EXPECT_EQ(done.state, "SUCCEEDED") << done.error;
    EXPECT_EQ(done.attempts, 3u);
    EXPECT_EQ(from_msgpack(*done.result), (nlohmann::json{{"attempt", 3}}));
    auto starts = attempt_starts(id);
    ASSERT_EQ(starts.size(), 3u);
    auto gap1 = starts[1] - starts[0];
    auto gap2 = starts[2] - starts[1];
    EXPECT_GE(gap1, 100);  // base 200 ms with equal jitter: 100..200
    EXPECT_GT(gap2, gap1) << "backoff grows: " << gap1 << " then " << gap2;
}

TEST_F(TaskLifecycle, PermanentFailureIsNotRetriedAndRetryRequeuesIt) {
    start();
    auto t = task("demo.fail", {{"mode", "permanent"}});
    t.retries = 5;
    auto id = submit(t);
    auto done = final_state(id);
    EXPECT_EQ(done.state, "FAILED");
    EXPECT_EQ(done.attempts, 1u);
    EXPECT_FALSE(done.error.empty());
    ASSERT_EQ(attempt_starts(id).size(), 1u);

    tp::request r;
    r.id = id;
    auto rep = client->call(tp::cmd::retry, r);
    ASSERT_TRUE(rep && rep->ok) << (rep ? rep->error : "no reply");
    ASSERT_TRUE(events->wait_for(
        [&](auto& e) { return e.value("id", "") == id && e.value("type", "") == "task.running"; }, 5s));
    ASSERT_TRUE(wait_until([&] { return attempt_starts(id).size() == 2; }, 20s)) << "ran again after RETRY";
    EXPECT_EQ(final_state(id).state, "FAILED");
}

TEST_F(TaskLifecycle, CooperativeTimeoutFailsWithoutKillingTheWorker) {
    start({}, 1, 2, {"--kill-grace-ms", "3000"});
    auto pids = worker_pids();
    auto t = task("demo.sleep", {{"ms", 20000}});
    t.timeout_ms = 300;
    t.retries = 1;
    t.backoff_base_ms = 50;
    auto done = final_state(submit(t));
    EXPECT_EQ(done.state, "FAILED");
    EXPECT_NE(done.error.find("timeout"), std::string::npos) << done.error;
    EXPECT_EQ(done.attempts, 2u);
    EXPECT_EQ(worker_pids(), pids) << "no worker was killed";
}

TEST_F(TaskLifecycle, HandlerIgnoringItsDeadlineGetsItsWorkerKilled) {
    start({}, 1, 2, {"--kill-grace-ms", "300"});
    auto pids = worker_pids();
    auto t = task("demo.spin", {{"ms", 60000}});
    t.timeout_ms = 300;
    t.retries = 1;
    t.backoff_base_ms = 50;
    auto done = final_state(submit(t));
    EXPECT_EQ(done.state, "FAILED");
    EXPECT_NE(done.error.find("timeout"), std::string::npos) << done.error;
    EXPECT_EQ(done.attempts, 2u);
    ASSERT_TRUE(wait_until(
        [&] {
            auto now = worker_pids();
            return !now.empty() && now != pids;
        },
        20s))
        << "the worker was replaced";
    EXPECT_TRUE(host->running());
    // The replacement serves.
    EXPECT_EQ(final_state(submit(task("echo.echo", 1))).state, "SUCCEEDED");
}

TEST_F(TaskLifecycle, DelayedTaskWaitsAndExpiredTaskNeverRuns) {
    start();
    auto d = task("echo.echo", "late");
    d.delay_ms = 800;
    auto delayed = submit(d);
    auto st = client->status(delayed);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->state, "PENDING");
    auto done = final_state(delayed);
    EXPECT_EQ(done.state, "SUCCEEDED");
    EXPECT_GE(done.started_ms - done.created_ms, 800);

    auto e = task("echo.echo", "never");
    e.queue = "parked";
    e.ttl_ms = 300;
    auto expired = final_state(submit(e));
    EXPECT_EQ(expired.state, "EXPIRED");
    EXPECT_EQ(expired.started_ms, 0);
    EXPECT_EQ(expired.attempts, 0u);
}

TEST_F(TaskLifecycle, CancelQueuedDelayedAndRunningByIdAndTag) {
    start();
    auto q = task("echo.echo", 1);
    q.queue = "parked";
    auto queued = submit(q);
    auto d = task("echo.echo", 2);
    d.delay_ms = 60000;
    d.tags = {"batch-7"};
    auto delayed = submit(d);
    auto r = task("demo.sleep", {{"ms", 30000}});
    r.tags = {"batch-7"};
    auto running = submit(r);
    ASSERT_TRUE(wait_state(running, "RUNNING"));

    tp::request by_id;
    by_id.id = queued;
    auto rep = client->call(tp::cmd::cancel, by_id);
    ASSERT_TRUE(rep && rep->ok);
    EXPECT_EQ(client->status(queued)->state, "CANCELLED");

    tp::request by_tag;
    by_tag.tag = "batch-7";
    rep = client->call(tp::cmd::cancel, by_tag);
    ASSERT_TRUE(rep && rep->ok);
    EXPECT_EQ(std::set<std::string>(rep->ids.begin(), rep->ids.end()), (std::set<std::string>{delayed, running}));
    EXPECT_EQ(final_state(delayed, 10s).state, "CANCELLED");
    auto ran = final_state(running, 10s);
    EXPECT_EQ(ran.state, "CANCELLED") << "the running handler saw the cancellation and returned";

    // Cancelling a finished task is a clear no-op.
    rep = client->call(tp::cmd::cancel, by_id);
    ASSERT_TRUE(rep.has_value());
    EXPECT_FALSE(rep->note.empty());
    EXPECT_EQ(client->status(queued)->state, "CANCELLED");
}

TEST_F(TaskLifecycle, SameIdempotencyKeyMakesOneTask) {
    start();
    auto t = task("echo.echo", "once");
    t.key = "order-42";
    auto first = submit(t);
    auto second = submit(t);
    EXPECT_EQ(first, second);
    tp::request list;
    list.limit = 1000;
    auto rep = client->call(tp::cmd::tasks, list);
    ASSERT_TRUE(rep && rep->ok);
    EXPECT_EQ(rep->tasks.size(), 1u);
}

TEST_F(TaskLifecycle, PoisonTaskFailsAfterMaxCrashesAndOthersComplete) {
    // Four slots and a prefetch queue per worker: the supervisor reports which
    // tasks the dead worker's slots were running, so the crash is charged
    // to the poison task and to nothing that merely shared its worker.
    start({"--max-crashes", "3"}, 2, 4);
    auto poison = task("demo.crash", nlohmann::json::object());
    poison.retries = 10;
    auto bad = submit(poison);
    std::vector<tp::task_spec> good;
    for (int i = 0; i < 50; ++i) {
        good.push_back(task("echo.echo", i));
    }
    auto ids = client->submit(good);
    ASSERT_EQ(ids.size(), 50u);
    for (auto& id : ids) {
        auto t = final_state(id);
        EXPECT_EQ(t.state, "SUCCEEDED") << t.error;
    }
    auto done = final_state(bad);
    EXPECT_EQ(done.state, "FAILED");
    EXPECT_NE(done.error.find("poison"), std::string::npos) << done.error;
    EXPECT_TRUE(host->running());
    EXPECT_EQ(final_state(submit(task("echo.echo", "after"))).state, "SUCCEEDED");
}

TEST_F(TaskLifecycle, EventsOfAWholeLifeArriveInOrder) {
    start();
    auto id = submit(task("echo.echo", "watched"));
    final_state(id);
    ASSERT_TRUE(events->wait_for(
        [&](auto& e) { return e.value("id", "") == id && e.value("type", "") == "task.succeeded"; }, 5s));
    std::vector<std::string> types;
    for (auto& e : events->of(id)) {
        types.push_back(e["type"]);
    }
    EXPECT_EQ(types, (std::vector<std::string>{"task.queued", "task.running", "task.succeeded"}));
}

TEST_F(TaskLifecycle, KilledWorkersTaskIsRequeuedLongBeforeTheLivenessWindow) {
    start({"--liveness-ms", "60000", "--heartbeat-ms", "5000"}, 1, 1);
    auto id = submit(task("demo.sleep", {{"ms", 3000}}));
    ASSERT_TRUE(wait_state(id, "RUNNING"));
    auto victim = pid_of(client->status(id)->worker);
    ASSERT_GT(victim, 0);
    auto killed_at = std::chrono::steady_clock::now();
    ASSERT_EQ(::kill(static_cast<pid_t>(victim), SIGKILL), 0);
    ASSERT_TRUE(events->wait_for(
        [&](auto& e) {
            return e.value("id", "") == id && e.value("type", "") == "task.queued" && e.value("attempt", 0) == 1;
        },
        10s));
    EXPECT_LT(std::chrono::steady_clock::now() - killed_at, 10s) << "requeued by the supervisor's report";
    EXPECT_EQ(final_state(id).state, "SUCCEEDED");
}

TEST_F(TaskLifecycle, LeakingHandlerGetsItsWorkerRecycledWithoutFailingTasks) {
    start({}, 1, 1, {"--max-rss-mb", "150"});
    auto pids = worker_pids();
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        ids.push_back(submit(task("demo.leak", {{"mb", 100}})));
    }
    for (auto& id : ids) {
        EXPECT_EQ(final_state(id).state, "SUCCEEDED");
    }
    EXPECT_TRUE(wait_until(
        [&] {
            auto now = worker_pids();
            return !now.empty() && now != pids;
        },
        20s))
        << "the worker was recycled:\n"
        << host->log_text();
    EXPECT_TRUE(host->running());
}

// AddressSanitizer reserves terabytes of address space: RLIMIT_AS cannot apply.
#ifndef __SANITIZE_ADDRESS__
TEST_F(TaskLifecycle, AllocationPastTheWorkerMemoryLimitFailsWithThatReason) {
    start({}, 1, 1, {"--memory-limit-mb", "1024"});
    auto pids = worker_pids();
    auto t = task("demo.leak", {{"mb", 2048}});
    t.retries = 0;
    auto done = final_state(submit(t));
    EXPECT_EQ(done.state, "FAILED");
    EXPECT_NE(done.error.find("memory limit of 1024 MB"), std::string::npos) << done.error;
    // The worker survived it and keeps serving.
    EXPECT_EQ(final_state(submit(task("echo.echo", 1))).state, "SUCCEEDED");
    EXPECT_EQ(worker_pids(), pids);
}
#endif

}  // namespace
