// The harness itself: time moves only by advance(), which stops at every
// moment the engine asked for; simulated workers answer HEARTBEATs as a
// host does unless told not to; restart() keeps the store and nothing else.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

TEST(EngineHarness, AdvanceRunsATurnAtEveryDeadlineOnTheWay) {
    engine_harness h;
    h.subscribe("task.queued");
    auto early = task("a.b");
    early.delay_ms = 300;
    auto late = task("a.b");
    late.delay_ms = 700;
    h.submit({early, late});
    EXPECT_EQ(h.now(), sim_epoch_ms) << "nothing moves the clock but advance()";
    h.advance(1000);
    EXPECT_EQ(h.now(), sim_epoch_ms + 1000);
    std::vector<int64_t> at;
    for (const auto& e : h.events("task.queued")) {
        at.push_back(e.at_ms - sim_epoch_ms);
    }
    EXPECT_EQ(at, (std::vector<int64_t>{300, 700}));
}

TEST(EngineHarness, WorkersThatAnswerHeartbeatsStayAndSilentOnesAreDropped) {
    engine_harness h;  // liveness 2 s
    h.connect_worker(1, {handler("a.b")}, {.id = "talks"});
    h.connect_worker(1, {handler("a.b")}, {.id = "silent", .answers_heartbeats = false});
    h.advance(60'000);
    auto workers = h.call(tp::cmd::workers, tp::request{}).workers;
    ASSERT_EQ(workers.size(), 1u);
    EXPECT_EQ(workers[0].id, "talks");
}

TEST(EngineHarness, RestartKeepsTheStoreAndForgetsTheWorkers) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto done = h.submit(task("a.b"));
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    w.result(items[0], "ok");
    auto queued = h.submit(task("x.y"));
    h.restart(5000);
    EXPECT_EQ(h.now(), sim_epoch_ms + 5000) << "down for 5 s";
    EXPECT_EQ(h.status(done).state, "SUCCEEDED");
    EXPECT_EQ(h.status(queued).state, "QUEUED");
    EXPECT_TRUE(h.call(tp::cmd::workers, tp::request{}).workers.empty());
    w.send(tp::cmd::heartbeat, tp::control{});
    EXPECT_EQ(w.received(tp::cmd::unknown).size(), 1u) << "a worker of the old engine is told to say HELLO";
}
