// Who may say what on the backend: DEAD only from a worker's own
// supervisor; where a dead worker's task goes back in the queue.
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
