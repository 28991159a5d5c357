// Who may say what on the backend: DEAD only from a worker's own
// supervisor; leases that bound every dispatched task; the credit of an
// attempt the broker gave up on; outcomes resent after a broker restart.
#include <gtest/gtest.h>

#include "broker_harness.hpp"

using namespace tmtest;

namespace {

class Backend : public broker_test {};

tp::control dead_of(const std::string& worker) {
    tp::control dead;
    dead.ids = {worker};
    dead.note = "killed by signal 9";
    return dead;
}

}  // namespace

// Three DEADs from a peer that is not the worker's supervisor used to fail
// a healthy task as poison; now they are refused with an ERROR and change
// nothing, and the supervisor the worker named is still heard.
TEST_F(Backend, DeadIsTakenOnlyFromTheSupervisorTheWorkerNamed) {
    cfg_.max_crashes = 3;
    cfg_.liveness_ms = 60000;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:400");
    w.supervisor = "node:1:supervisor";
    w.hello({handler("a.b")}, 1);
    auto ids = c.submit({task("a.b")});
    ASSERT_EQ(w.next_dispatch().size(), 1u);

    peer intruder(ctx_, be(), "node:9:supervisor");
    for (int i = 0; i < 3; ++i) {
        intruder.send(tp::cmd::dead, tp::encode(dead_of("node:400")));
        auto err = intruder.recv();
        ASSERT_TRUE(err.has_value()) << "a refused DEAD is answered";
        EXPECT_EQ(err->command, tp::cmd::error);
        auto body = tp::decode_control(err->body);
        ASSERT_TRUE(body.has_value());
        EXPECT_FALSE(body->ok);
        EXPECT_NE(body->error.find("supervisor"), std::string::npos) << body->error;
        EXPECT_EQ(body->ids, std::vector<std::string>{"node:400"});
    }
    auto st = c.status(ids[0]);
    EXPECT_EQ(st.state, "RUNNING");
    EXPECT_EQ(st.attempts, 1u);

    peer sup(ctx_, be(), "node:1:supervisor");
    sup.send(tp::cmd::dead, tp::encode(dead_of("node:400")));
    EXPECT_TRUE(c.wait_state(ids[0], "QUEUED"));
}

// A worker that named no supervisor cannot be reported dead by anyone.
TEST_F(Backend, DeadForAWorkerWithoutASupervisorIsRefused) {
    cfg_.liveness_ms = 60000;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:401");
    w.hello({handler("a.b")}, 1);
    auto ids = c.submit({task("a.b")});
    ASSERT_EQ(w.next_dispatch().size(), 1u);
    peer other(ctx_, be(), "");
    other.send(tp::cmd::dead, tp::encode(dead_of("node:401")));
    auto err = other.recv();
    ASSERT_TRUE(err.has_value());
    EXPECT_EQ(err->command, tp::cmd::error);
    EXPECT_EQ(c.status(ids[0]).state, "RUNNING");
}

// A worker that heartbeats but never answers used to keep a task without a
// timeout for good: every dispatched task has a lease, renewed only by a
// worker that names the task (HEARTBEAT ids, a start, PROGRESS).
TEST_F(Backend, TaskWithoutTimeoutIsReclaimedFromAWorkerThatDoesNotNameIt) {
    cfg_.lease_grace_ms = 0;
    cfg_.liveness_ms = 500;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:410");
    w.hello({handler("a.b")}, 2);
    auto t = task("a.b");
    t.retries = 1;
    auto ids = c.submit({t});
    auto first = w.next_dispatch();
    ASSERT_EQ(first.size(), 1u);
    // Heartbeats that name nothing: the lease (liveness + grace) runs out.
    auto cancel = w.expect(tp::cmd::cancel, 5s);
    ASSERT_TRUE(cancel.has_value()) << "the lease bounds a task without a timeout";
    auto cc = tp::decode_control(cancel->body);
    ASSERT_TRUE(cc.has_value());
    EXPECT_EQ(cc->ids, std::vector<std::string>{ids[0]});
    EXPECT_EQ(cc->attempt, 1u) << "CANCEL names the attempt it stops";
    auto again = w.next_dispatch();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].attempt, 2u);
    EXPECT_NE(c.status(ids[0]).error.find("lease"), std::string::npos);
}

TEST_F(Backend, WorkerNamingItsTaskInHeartbeatsKeepsIt) {
    cfg_.lease_grace_ms = 0;
    cfg_.liveness_ms = 400;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:411");
    w.hello({handler("a.b")}, 1);
    auto ids = c.submit({task("a.b")});
    ASSERT_EQ(w.next_dispatch().size(), 1u);
    w.holding = {ids[0]};
    // Three lease lengths: the broker's HEARTBEATs (every 100 ms) are
    // answered with one naming the task.
    EXPECT_FALSE(w.expect(tp::cmd::cancel, 1200ms).has_value());
    auto st = c.status(ids[0]);
    EXPECT_EQ(st.state, "RUNNING");
    EXPECT_EQ(st.attempts, 1u);
}

// With a prefetch announced, a task with a timeout that was never reported
// started used to have its lease re-armed for good.
TEST_F(Backend, UnstartedTaskOfAPrefetchingWorkerIsReclaimed) {
    cfg_.lease_grace_ms = 0;
    cfg_.liveness_ms = 400;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:412");
    w.prefetch = 1;
    w.hello({handler("a.b")}, 2);
    auto t = task("a.b");
    t.timeout_ms = 100;
    t.retries = 0;
    auto ids = c.submit({t});
    ASSERT_EQ(w.next_dispatch().size(), 1u);
    ASSERT_TRUE(w.expect(tp::cmd::cancel, 5s).has_value());
    auto st = c.status(ids[0], 5000);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_NE(st.error.find("lease"), std::string::npos) << st.error;
}

// After a lease ran out on a 1-slot worker, the attempt may still run
// there: the slot stays taken until the worker reports it over, and only
// then does the next task come.
TEST_F(Backend, ExpiredAttemptKeepsItsSlotUntilTheWorkerReportsIt) {
    cfg_.lease_grace_ms = 0;
    cfg_.liveness_ms = 400;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:420");
    w.hello({handler("a.b")}, 1);
    auto a = task("a.b");
    a.timeout_ms = 50;
    a.retries = 0;
    auto ids = c.submit({a, task("a.b")});
    auto first = w.next_dispatch();
    ASSERT_EQ(first.size(), 1u);
    ASSERT_EQ(first[0].id, ids[0]);
    auto cancel = w.expect(tp::cmd::cancel, 5s);
    ASSERT_TRUE(cancel.has_value());
    EXPECT_EQ(tp::decode_control(cancel->body)->attempt, 1u);
    EXPECT_EQ(c.status(ids[0], 5000).state, "FAILED");
    // Still running it (named in heartbeats): nothing else is sent.
    w.holding = {ids[0]};
    EXPECT_FALSE(w.expect(tp::cmd::dispatch, 800ms).has_value()) << "no second task beside the expired attempt";
    // The attempt ends: its late outcome frees the slot (and changes nothing).
    w.holding.clear();
    w.result(first[0], "cancelled");
    auto next = w.next_dispatch();
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].id, ids[1]);
    EXPECT_EQ(c.status(ids[0]).state, "FAILED");
}

// A killed worker's task goes back to its place in the queue (it was
// next), not behind the backlog submitted after it.
TEST_F(Backend, RequeuedTaskKeepsItsPlaceInTheQueue) {
    cfg_.liveness_ms = 60000;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:430");
    w.supervisor = "node:2:supervisor";
    w.hello({handler("a.b")}, 1);
    auto ids = c.submit({task("a.b")});
    ASSERT_EQ(w.next_dispatch().size(), 1u);
    auto backlog = c.submit({task("a.b"), task("a.b"), task("a.b")});
    peer sup(ctx_, be(), "node:2:supervisor");
    sup.send(tp::cmd::dead, tp::encode(dead_of("node:430")));
    ASSERT_TRUE(c.wait_state(ids[0], "QUEUED"));
    fake_worker next(ctx_, be(), "node:431");
    next.hello({handler("a.b")}, 1);
    auto items = next.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].id, ids[0]) << "the requeued task runs before the backlog";
    EXPECT_EQ(items[0].attempt, 2u);
}

// Outcomes a worker sent to a broker that died before reading them come
// again after the new broker's WELCOME; a task it recovered as QUEUED takes
// the outcome of its lost attempt instead of running again.
TEST_F(Backend, ResentOutcomeFinishesATaskRecoveredAsQueued) {
    start();
    std::vector<std::string> ids;
    {
        client c(ctx_, fe());
        ids = c.submit({task("a.b")});
    }
    tp::work_item item;
    {
        fake_worker w(ctx_, be(), "node:440");
        w.hello({handler("a.b")}, 1);
        auto d = w.next_dispatch();
        ASSERT_EQ(d.size(), 1u);
        item = d[0];
    }
    stop();
    cfg_ = test_config(dir_.path.string());  // same data, fresh endpoints (inproc unbinds lazily)
    start();
    client c2(ctx_, fe());
    EXPECT_EQ(c2.status(ids[0]).state, "QUEUED");
    // Serves another queue: nothing is dispatched to it meanwhile.
    fake_worker w(ctx_, be(), "node:440");
    w.hello({handler("a.b")}, 1, {"elsewhere"});
    tp::results rs;
    rs.seq = 9;
    rs.items.push_back(tp::outcome{item.id, item.attempt, "ok", "\x2a", "", std::nullopt, "1.0.0"});
    w.send(tp::cmd::results, tp::encode(rs));
    auto st = c2.status(ids[0], 5000);
    EXPECT_EQ(st.state, "SUCCEEDED");
    EXPECT_EQ(st.attempts, 1u);
    EXPECT_EQ(st.result, std::optional<std::string>("\x2a"));
    // The broker's HEARTBEAT acknowledges what it read.
    bool acked = false;
    for (int i = 0; i < 20 && !acked; ++i) {
        auto hb = w.recv(1s);
        if (hb && hb->command == tp::cmd::heartbeat) {
            acked = tp::decode_control(hb->body)->req == 9;
        }
    }
    EXPECT_TRUE(acked) << "HEARTBEAT echoes the last RESULTS seq read";
}
