// Who may say what on the backend: DEAD only from a worker's own
// supervisor; leases that bound every dispatched task (expiry, renewal by
// heartbeat, grace); the credit of an attempt the broker gave up on;
// outcomes resent after a broker restart. The engine on the simulated
// clock (engine_harness.hpp): every lease ends at an exact time.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

tp::control dead_of(const std::string& worker) {
    tp::control dead;
    dead.ids = {worker};
    dead.note = "killed by signal 9";
    return dead;
}

// Leases of liveness_ms alone, unless a test adds grace.
tb::broker_config lease_config(int64_t liveness_ms, int64_t grace_ms = 0) {
    auto cfg = sim_config();
    cfg.liveness_ms = liveness_ms;
    cfg.lease_grace_ms = grace_ms;
    return cfg;
}

}  // namespace

// Three DEADs from a peer that is not the worker's supervisor used to fail
// a healthy task as poison; now they are refused with an ERROR and change
// nothing, and the supervisor the worker named is still heard.
TEST(Backend, DeadIsTakenOnlyFromTheSupervisorTheWorkerNamed) {
    auto cfg = sim_config();
    cfg.max_crashes = 3;
    engine_harness h(cfg);
    auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:400", .supervisor = "node:1:supervisor"});
    auto id = h.submit(task("a.b"));
    ASSERT_EQ(w.dispatched().size(), 1u);

    for (int i = 0; i < 3; ++i) {
        h.backend("node:9:supervisor", tp::cmd::dead, tp::encode(dead_of("node:400")));
        auto err = h.take("node:9:supervisor");
        ASSERT_EQ(err.size(), 1u) << "a refused DEAD is answered";
        EXPECT_EQ(err[0].command, tp::cmd::error);
        auto body = tp::decode_control(err[0].body);
        ASSERT_TRUE(body.has_value());
        EXPECT_FALSE(body->ok);
        EXPECT_NE(body->error.find("supervisor"), std::string::npos) << body->error;
        EXPECT_EQ(body->ids, std::vector<std::string>{"node:400"});
    }
    auto st = h.status(id);
    EXPECT_EQ(st.state, "RUNNING");
    EXPECT_EQ(st.attempts, 1u);

    h.backend("node:1:supervisor", tp::cmd::dead, tp::encode(dead_of("node:400")));
    EXPECT_EQ(h.status(id).state, "QUEUED");
}

// A worker that named no supervisor cannot be reported dead by anyone.
TEST(Backend, DeadForAWorkerWithoutASupervisorIsRefused) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:401"});
    auto id = h.submit(task("a.b"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    h.backend("", tp::cmd::dead, tp::encode(dead_of("node:401")));
    auto err = h.take("");
    ASSERT_EQ(err.size(), 1u);
    EXPECT_EQ(err[0].command, tp::cmd::error);
    EXPECT_EQ(h.status(id).state, "RUNNING");
}

// A worker that heartbeats but never answers used to keep a task without a
// timeout for good: every dispatched task has a lease, renewed only by a
// worker that names the task (HEARTBEAT ids, a start, PROGRESS).
TEST(Backend, TaskWithoutTimeoutIsReclaimedFromAWorkerThatDoesNotNameIt) {
    engine_harness h(lease_config(500));
    auto& w = h.connect_worker(2, {handler("a.b")}, {.id = "node:410"});
    auto t = task("a.b");
    t.retries = 1;
    t.backoff_base_ms = 1;
    auto id = h.submit(t);
    ASSERT_EQ(w.dispatched().size(), 1u);
    const int64_t dispatched_at = h.now();
    // Heartbeats that name nothing: the lease (liveness + grace) runs out.
    h.advance(499);
    EXPECT_TRUE(w.received(tp::cmd::cancel).empty());
    h.advance(1);
    auto cancel = w.received(tp::cmd::cancel);
    ASSERT_EQ(cancel.size(), 1u) << "the lease bounds a task without a timeout";
    EXPECT_EQ(cancel[0].first, dispatched_at + 500);
    EXPECT_EQ(cancel[0].second.ids, std::vector<std::string>{id});
    EXPECT_EQ(cancel[0].second.attempt, 1u) << "CANCEL names the attempt it stops";
    h.advance(1);
    auto again = w.dispatched();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].attempt, 2u);
    EXPECT_NE(h.status(id).error.find("lease"), std::string::npos);
}

TEST(Backend, LeaseTimeoutRetriesTheTask) {
    engine_harness h(lease_config(400));
    auto& w = h.connect_worker(2, {handler("a.b")});
    auto t = task("a.b");
    t.timeout_ms = 50;
    t.retries = 1;
    t.backoff_base_ms = 1;
    auto id = h.submit(t);
    ASSERT_EQ(w.dispatched().size(), 1u);
    const int64_t dispatched_at = h.now();
    // No result: the lease (timeout + liveness) runs out, the worker is told
    // to cancel and the task comes back as attempt 2.
    h.advance(449);
    EXPECT_TRUE(w.received(tp::cmd::cancel).empty());
    h.advance(1);
    auto cancel = w.received(tp::cmd::cancel);
    ASSERT_EQ(cancel.size(), 1u);
    EXPECT_EQ(cancel[0].first, dispatched_at + 450);
    h.advance(1);
    auto again = w.dispatched();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].attempt, 2u);
    EXPECT_EQ(again[0].timeout_ms, 50);
    EXPECT_EQ(h.status(id).attempts, 2u);
}

// The grace is added to every lease: a started task with a timeout gets
// timeout + grace + liveness from its start, and no heartbeat renews it.
TEST(Backend, AStartedTaskWithATimeoutEndsAtTimeoutPlusGracePlusLiveness) {
    engine_harness h(lease_config(400, 1000));
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.timeout_ms = 200;
    t.retries = 0;
    auto id = h.submit(t);
    ASSERT_EQ(w.dispatched().size(), 1u);
    w.holding = {id};
    h.advance(300);
    tp::results started;
    started.started = {id};
    w.send(started);
    const int64_t started_at = h.now();
    h.advance(200 + 1000 + 400 - 1);
    EXPECT_TRUE(w.received(tp::cmd::cancel).empty()) << "heartbeats named it: no renewal, but no end yet";
    h.advance(1);
    auto cancel = w.received(tp::cmd::cancel);
    ASSERT_EQ(cancel.size(), 1u);
    EXPECT_EQ(cancel[0].first, started_at + 1600);
    auto st = h.status(id);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_NE(st.error.find("lease"), std::string::npos) << st.error;
}

// Every HEARTBEAT naming the task renews its lease from that moment; once
// they stop naming it, the lease ends one lease length after the last.
TEST(Backend, WorkerNamingItsTaskInHeartbeatsKeepsIt) {
    engine_harness h(lease_config(400, 100));
    auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:411"});
    auto id = h.submit(task("a.b"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    w.holding = {id};
    h.advance(10 * 500);
    EXPECT_TRUE(w.received(tp::cmd::cancel).empty());
    auto st = h.status(id);
    EXPECT_EQ(st.state, "RUNNING");
    EXPECT_EQ(st.attempts, 1u);
    auto heartbeats = w.received(tp::cmd::heartbeat);
    ASSERT_FALSE(heartbeats.empty());
    const int64_t last_named = heartbeats.back().first;  // answered in that moment
    w.holding.clear();
    h.advance(1000);
    auto cancel = w.received(tp::cmd::cancel);
    ASSERT_EQ(cancel.size(), 1u);
    EXPECT_EQ(cancel[0].first, last_named + 100 + 400);
}

// With a prefetch announced, a task with a timeout that was never reported
// started used to have its lease re-armed for good.
TEST(Backend, UnstartedTaskOfAPrefetchingWorkerIsReclaimed) {
    engine_harness h(lease_config(400));
    auto& w = h.connect_worker(2, {handler("a.b")}, {.id = "node:412", .prefetch = 1});
    auto t = task("a.b");
    t.timeout_ms = 100;
    t.retries = 0;
    auto id = h.submit(t);
    ASSERT_EQ(w.dispatched().size(), 1u);
    const int64_t dispatched_at = h.now();
    h.advance(1000);
    auto cancel = w.received(tp::cmd::cancel);
    ASSERT_EQ(cancel.size(), 1u);
    EXPECT_EQ(cancel[0].first, dispatched_at + 500);
    auto st = h.status(id);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_NE(st.error.find("lease"), std::string::npos) << st.error;
}

// After a lease ran out on a 1-slot worker, the attempt may still run
// there: the slot stays taken until the worker reports it over, and only
// then does the next task come.
TEST(Backend, ExpiredAttemptKeepsItsSlotUntilTheWorkerReportsIt) {
    engine_harness h(lease_config(400));
    auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:420"});
    auto a = task("a.b");
    a.timeout_ms = 50;
    a.retries = 0;
    auto ids = h.submit({a, task("a.b")});
    auto first = w.dispatched();
    ASSERT_EQ(first.size(), 1u);
    ASSERT_EQ(first[0].id, ids[0]);
    h.advance(450);
    auto cancel = w.received(tp::cmd::cancel);
    ASSERT_EQ(cancel.size(), 1u);
    EXPECT_EQ(cancel[0].second.attempt, 1u);
    EXPECT_EQ(h.status(ids[0]).state, "FAILED");
    w.holding = {ids[0]};  // still running it, named in heartbeats
    h.advance(10'000);
    EXPECT_TRUE(w.dispatched().empty()) << "no second task beside the expired attempt";
    // The attempt ends: its late outcome frees the slot (and changes nothing).
    w.holding.clear();
    w.result(first[0], "cancelled");
    auto next = w.dispatched();
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].id, ids[1]);
    EXPECT_EQ(h.status(ids[0]).state, "FAILED");
}

// A worker that stops answering is dropped one liveness after it was last
// heard from, and its tasks go back to the queue.
TEST(Backend, SilentWorkerIsDroppedAndTasksRequeued) {
    auto cfg = sim_config();
    cfg.liveness_ms = 300;
    engine_harness h(cfg);
    auto& quiet = h.connect_worker(1, {handler("a.b")}, {.id = "quiet", .answers_heartbeats = false});
    auto id = h.submit(task("a.b"));
    ASSERT_EQ(quiet.dispatched().size(), 1u);  // heard from last now
    h.advance(300);
    EXPECT_EQ(h.status(id).state, "RUNNING");
    h.advance(1);
    EXPECT_EQ(h.status(id).state, "QUEUED");
    auto workers = h.call(tp::cmd::workers, tp::request{});
    EXPECT_TRUE(workers.workers.empty());
}

// A message the loop could not route (the worker's connection is gone)
// removes the worker at the next turn, and its tasks go back to the queue.
TEST(Backend, AnUnroutableWorkerLosesItsTasksAtTheNextTurn) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto id = h.submit(task("a.b"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    h.disconnect(w.id());
    h.advance(sim_config().heartbeat_ms);  // its HEARTBEAT cannot be routed
    auto st = h.status(id);
    EXPECT_EQ(st.state, "QUEUED");
    EXPECT_EQ(st.error, "unroutable");
    EXPECT_TRUE(h.call(tp::cmd::workers, tp::request{}).workers.empty());
}

// A killed worker's task goes back to its place in the queue (it was
// next), not behind the backlog submitted after it.
TEST(Backend, RequeuedTaskKeepsItsPlaceInTheQueue) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:430", .supervisor = "node:2:supervisor"});
    auto id = h.submit(task("a.b"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    h.submit({task("a.b"), task("a.b"), task("a.b")});
    h.backend("node:2:supervisor", tp::cmd::dead, tp::encode(dead_of("node:430")));
    ASSERT_EQ(h.status(id).state, "QUEUED");
    auto& next = h.connect_worker(1, {handler("a.b")}, {.id = "node:431"});
    auto items = next.dispatched();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].id, id) << "the requeued task runs before the backlog";
    EXPECT_EQ(items[0].attempt, 2u);
}

// Outcomes a worker sent to a broker that died before reading them come
// again after the new broker's WELCOME; a task it recovered as QUEUED takes
// the outcome of its lost attempt instead of running again.
TEST(Backend, ResentOutcomeFinishesATaskRecoveredAsQueued) {
    engine_harness h;
    auto id = h.submit(task("a.b"));
    auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:440"});
    auto d = w.dispatched();
    ASSERT_EQ(d.size(), 1u);
    h.restart();
    EXPECT_EQ(h.status(id).state, "QUEUED");
    // Serves another queue: nothing is dispatched to it meanwhile.
    auto& again = h.connect_worker(1, {handler("a.b")}, {.id = "node:440", .queues = {"elsewhere"}});
    tp::results rs;
    rs.seq = 9;
    rs.items.push_back(
        tp::outcome{d[0].id, d[0].attempt, "ok", "\x2a", "", std::nullopt, "1.0.0", std::nullopt, std::nullopt});
    again.send(rs);
    auto st = h.status(id);
    EXPECT_EQ(st.state, "SUCCEEDED");
    EXPECT_EQ(st.attempts, 1u);
    EXPECT_EQ(st.result, std::optional<std::string>("\x2a"));
    // The broker's next HEARTBEAT acknowledges what it read.
    h.take("node:440", tp::cmd::heartbeat);
    h.advance(sim_config().heartbeat_ms);
    auto hb = again.received(tp::cmd::heartbeat);
    ASSERT_FALSE(hb.empty());
    EXPECT_EQ(hb.back().second.req, 9u) << "HEARTBEAT echoes the last RESULTS seq read";
}
