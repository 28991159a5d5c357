// Retries, delays, TTL, leases, cancel, retry, idempotency, poison tasks,
// checkpoints, spawn and events.
#include <gtest/gtest.h>

#include <msgpack.hpp>

#include "broker_harness.hpp"
#include "store/keys.hpp"

using namespace tmtest;

namespace {

class Lifecycle : public broker_test {};

}  // namespace

TEST_F(Lifecycle, RetryThenSucceed) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto t = task("a.b");
    t.retries = 2;
    t.backoff_base_ms = 5;
    auto ids = c.submit({t});
    auto first = w.next_dispatch();
    ASSERT_EQ(first.size(), 1u);
    w.result(first[0], "retry", "", "flaky");
    auto second = w.next_dispatch();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].attempt, 2u);
    w.result(second[0], "ok", "\x07");
    auto st = c.status(ids[0], 5000);
    EXPECT_EQ(st.state, "SUCCEEDED");
    EXPECT_EQ(st.attempts, 2u);
    auto stats = c.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(stats.stats->counters["retried"], 1u);
}

TEST_F(Lifecycle, RetriesExhaustedFailsAndRetryCommandRequeues) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto t = task("a.b");
    t.retries = 1;
    t.backoff_base_ms = 1;
    auto ids = c.submit({t});
    for (int i = 0; i < 2; ++i) {
        auto items = w.next_dispatch();
        ASSERT_EQ(items.size(), 1u);
        w.result(items[0], "retry", "", "still broken");
    }
    auto st = c.status(ids[0], 5000);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.error, "still broken");
    EXPECT_EQ(st.attempts, 2u);

    tp::request rq;
    rq.id = ids[0];
    auto rep = c.call(tp::cmd::retry, rq);
    EXPECT_TRUE(rep.ok) << rep.error;
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].attempt, 1u);  // fresh attempts
    w.result(items[0], "fail", "", "permanent");
    EXPECT_EQ(c.status(ids[0], 5000).state, "FAILED");
}

TEST_F(Lifecycle, DelayedTaskIsPendingUntilDue) {
    start();
    client c(ctx_, fe());
    auto t = task("a.b");
    t.delay_ms = 300;
    auto ids = c.submit({t});
    EXPECT_EQ(c.status(ids[0]).state, "PENDING");
    EXPECT_TRUE(c.wait_state(ids[0], "QUEUED"));
    auto st = c.status(ids[0]);
    EXPECT_GE(st.eta_ms, st.created_ms + 300);
}

TEST_F(Lifecycle, TtlExpiresAnUnstartedTask) {
    start();
    client c(ctx_, fe());
    auto t = task("a.b");
    t.ttl_ms = 100;
    auto ids = c.submit({t});
    auto st = c.status(ids[0], 5000);
    EXPECT_EQ(st.state, "EXPIRED");
}

TEST_F(Lifecycle, LeaseTimeoutRetriesTheTask) {
    cfg_.lease_grace_ms = 0;
    cfg_.liveness_ms = 400;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 2);
    auto t = task("a.b");
    t.timeout_ms = 50;
    t.retries = 1;
    t.backoff_base_ms = 1;
    auto ids = c.submit({t});
    ASSERT_EQ(w.next_dispatch().size(), 1u);
    // No result: the lease (timeout + liveness) runs out, the worker is told
    // to cancel and the task comes back as attempt 2.
    ASSERT_TRUE(w.expect(tp::cmd::cancel).has_value());
    auto again = w.next_dispatch();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].attempt, 2u);
    EXPECT_EQ(again[0].timeout_ms, 50);
}

TEST_F(Lifecycle, CancelQueuedRunningAndFinished) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto ids = c.submit({task("a.b", 9), task("a.b", 0)});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    ASSERT_EQ(items[0].id, ids[0]);

    tp::request rq;
    rq.id = ids[1];
    auto rep = c.call(tp::cmd::cancel, rq);
    EXPECT_TRUE(rep.ok);
    EXPECT_EQ(c.status(ids[1]).state, "CANCELLED");

    rq.id = ids[0];
    rep = c.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.note, "cancel requested");
    auto cancel = w.expect(tp::cmd::cancel);
    ASSERT_TRUE(cancel.has_value());
    EXPECT_EQ(tp::decode_control(cancel->body)->ids, std::vector<std::string>{ids[0]});
    w.result(items[0], "cancelled");
    EXPECT_EQ(c.status(ids[0], 5000).state, "CANCELLED");

    rep = c.call(tp::cmd::cancel, rq);
    EXPECT_TRUE(rep.ok);
    EXPECT_EQ(rep.note, "already finished (CANCELLED)");
    // The cancelled queued task is never dispatched.
    EXPECT_FALSE(w.expect(tp::cmd::dispatch, 200ms).has_value());
}

TEST_F(Lifecycle, CancelByTag) {
    start();
    client c(ctx_, fe());
    auto t = task("a.b");
    t.tags = {"batch7"};
    auto ids = c.submit({t, t, task("a.b")});
    tp::request rq;
    rq.tag = "batch7";
    auto rep = c.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids.size(), 2u);
    EXPECT_EQ(c.status(ids[0]).state, "CANCELLED");
    EXPECT_EQ(c.status(ids[1]).state, "CANCELLED");
    EXPECT_EQ(c.status(ids[2]).state, "QUEUED");
}

// Cancel by tag reads the tags table, which holds a task only while it is
// unfinished: a finished one is left alone, a retried one is back in it.
TEST_F(Lifecycle, CancelByTagFindsExactlyTheUnfinishedTasks) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto tagged = task("a.b");
    tagged.tags = {"t1", "t2"};
    auto done = c.submit({tagged});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    w.result(items[0], "ok");
    EXPECT_EQ(c.status(done[0], 5000).state, "SUCCEEDED");

    auto parked = tagged;  // a handler no worker has: it stays queued
    parked.handler = "x.y";
    auto later = parked;
    later.delay_ms = 60000;
    auto open = c.submit({parked, later, task("x.y")});
    tp::request rq;
    rq.tag = "t2";
    auto rep = c.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids, (std::vector<std::string>{open[0], open[1]}));
    EXPECT_EQ(c.status(done[0]).state, "SUCCEEDED");
    EXPECT_EQ(c.status(open[1]).state, "CANCELLED");
    EXPECT_EQ(c.status(open[2]).state, "QUEUED");

    tp::request again;
    again.id = open[0];
    auto retried = c.call(tp::cmd::retry, again);
    ASSERT_TRUE(retried.ok) << retried.error_code << " " << retried.error;
    rq.tag = "t1";
    rep = c.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids, std::vector<std::string>{open[0]});
    rq.tag = "t";  // a prefix of both tags, and a tag of its own
    EXPECT_TRUE(c.call(tp::cmd::cancel, rq).ids.empty());
}

// The index survives a restart, and a store written before it existed is
// indexed at its first start.
TEST_F(Lifecycle, CancelByTagAfterARestartAndOnAnOldStore) {
    start();
    auto t = task("a.b");
    t.queue = "parked";
    t.tags = {"old"};
    std::vector<std::string> ids;
    {
        client c(ctx_, fe());
        ids = c.submit({t, t});
    }
    stop();
    cfg_ = test_config(dir_.path.string());  // same data, fresh endpoints (inproc unbinds lazily)
    start();
    {
        client c(ctx_, fe());
        tp::request first;
        first.id = ids[0];
        EXPECT_EQ(c.call(tp::cmd::cancel, first).ids, std::vector<std::string>{ids[0]});
    }
    stop();
    {
        // As a store from before the tags table: no entries, no marker.
        auto st = tb::open_lmdb_store({.dir = cfg_.data_dir, .map_size_bytes = 64ull << 20});
        auto txn = st->begin(true);
        std::vector<std::string> keys;
        ASSERT_TRUE(txn->scan(tb::table::tags, "", false, [&](std::string_view k, std::string_view) {
                        keys.emplace_back(k);
                        return true;
                    }).has_value());
        EXPECT_EQ(keys.size(), 1u);  // the cancelled one left the table
        for (const auto& k : keys) ASSERT_TRUE(txn->erase(tb::table::tags, k).has_value());
        ASSERT_TRUE(txn->erase(tb::table::meta, tb::keys::meta_tags_indexed).has_value());
        ASSERT_TRUE(txn->commit().has_value());
    }
    cfg_ = test_config(dir_.path.string());
    start();
    client c(ctx_, fe());
    tp::request rq;
    rq.tag = "old";
    auto rep = c.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids, std::vector<std::string>{ids[1]});
    EXPECT_EQ(c.status(ids[1]).state, "CANCELLED");
}

// TASKS reads at most list_scan_budget tasks per request and says where it
// stopped: the pages together are the whole list, newest first, once each.
TEST_F(Lifecycle, TasksPagesThroughABoundedScan) {
    cfg_.list_scan_budget = 3;
    start();
    client c(ctx_, fe());
    std::vector<tp::task_spec> specs;
    for (int i = 0; i < 10; ++i) {
        auto t = task("x.y");
        t.queue = i % 2 == 0 ? "even" : "odd";
        specs.push_back(t);
    }
    auto ids = c.submit(specs);
    std::vector<std::string> listed;
    std::size_t pages = 0;
    tp::request rq;
    rq.queue = "odd";
    do {
        auto rep = c.call(tp::cmd::tasks, rq);
        ASSERT_TRUE(rep.ok) << rep.error;
        EXPECT_LE(rep.tasks.size(), 3u);
        for (const auto& t : rep.tasks) listed.push_back(t.id);
        rq.before = rep.next;
        ++pages;
    } while (!rq.before.empty() && pages < 20);
    EXPECT_EQ(listed, (std::vector<std::string>{ids[9], ids[7], ids[5], ids[3], ids[1]}));
    EXPECT_GE(pages, 4u);  // 10 tasks, 3 read per request

    rq = tp::request{};
    rq.limit = 2;
    auto first = c.call(tp::cmd::tasks, rq);
    EXPECT_EQ(first.tasks.size(), 2u);
    EXPECT_EQ(first.next, ids[8]) << "the last task read, to go on from";
    rq.before = "zz";
    EXPECT_EQ(c.call(tp::cmd::tasks, rq).error_code, "invalid_argument");
}

TEST_F(Lifecycle, IdempotencyKeyReturnsFirstId) {
    start();
    client c(ctx_, fe());
    auto t = task("a.b");
    t.key = "order-42";
    auto first = c.submit({t});
    tp::request rq;
    rq.tasks = {t};
    auto rep = c.call(tp::cmd::submit, rq);
    ASSERT_TRUE(rep.ok);
    EXPECT_EQ(rep.ids, first);
    EXPECT_FALSE(rep.note.empty());
    auto list = c.call(tp::cmd::tasks, tp::request{});
    EXPECT_EQ(list.tasks.size(), 1u);
}

TEST_F(Lifecycle, PoisonTaskFailsAfterMaxCrashes) {
    cfg_.max_crashes = 2;
    start();
    client c(ctx_, fe());
    peer supervisor(ctx_, be(), "sup");
    auto ids = c.submit({task("a.b")});
    for (int i = 0; i < 2; ++i) {
        std::string wid = "node:" + std::to_string(200 + i);
        fake_worker w(ctx_, be(), wid);
        w.supervisor = "sup";
        w.hello({handler("a.b")}, 1);
        ASSERT_EQ(w.next_dispatch().size(), 1u);
        tp::control dead;
        dead.ids = {wid};
        supervisor.send(tp::cmd::dead, tp::encode(dead));
        if (i == 0) {
            EXPECT_TRUE(c.wait_state(ids[0], "QUEUED"));
        }
    }
    auto st = c.status(ids[0], 5000);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.error, "poison: killed 2 worker processes");
}

// A DEAD that names what the worker's slots were running charges the crash
// to exactly those; the worker's other tasks go back to the queue uncharged.
TEST_F(Lifecycle, DeadWithRunningChargesOnlyThoseTasks) {
    cfg_.max_crashes = 1;
    start();
    client c(ctx_, fe());
    peer supervisor(ctx_, be(), "sup");
    auto ids = c.submit({task("a.b"), task("a.b"), task("a.b")});
    fake_worker w(ctx_, be(), "node:300");
    w.supervisor = "sup";
    w.hello({handler("a.b")}, 3);
    std::vector<tp::work_item> items;
    while (items.size() < 3) {
        auto more = w.next_dispatch();
        ASSERT_FALSE(more.empty());
        items.insert(items.end(), more.begin(), more.end());
    }
    tp::control dead;
    dead.ids = {"node:300"};
    dead.running = std::vector<std::string>{ids[1]};
    supervisor.send(tp::cmd::dead, tp::encode(dead));
    auto st = c.status(ids[1], 5000);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.error, "poison: killed 1 worker processes");
    EXPECT_TRUE(c.wait_state(ids[0], "QUEUED"));
    EXPECT_TRUE(c.wait_state(ids[2], "QUEUED"));
}

TEST_F(Lifecycle, CheckpointIsHandedToTheNextAttempt) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto t = task("a.b");
    t.backoff_base_ms = 1;
    c.submit({t});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_FALSE(items[0].checkpoint.has_value());
    tp::control cp;
    cp.req = 5;
    cp.id = items[0].id;
    cp.data = "step-3";
    w.send(tp::cmd::checkpoint, tp::encode(cp));
    auto ack = w.expect(tp::cmd::checkpoint);
    ASSERT_TRUE(ack.has_value());
    auto ackc = tp::decode_control(ack->body);
    EXPECT_TRUE(ackc->ok);
    EXPECT_EQ(ackc->req, 5u);
    tp::control pr;
    pr.id = items[0].id;
    pr.fraction = 0.5;
    pr.note = "half";
    w.send(tp::cmd::progress, tp::encode(pr));
    w.result(items[0], "retry", "", "again");
    auto again = w.next_dispatch();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].checkpoint, std::optional<std::string>("step-3"));
}

TEST_F(Lifecycle, ProgressShowsInStatus) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto ids = c.submit({task("a.b")});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    tp::control pr;
    pr.id = items[0].id;
    pr.fraction = 0.25;
    pr.note = "quarter";
    w.send(tp::cmd::progress, tp::encode(pr));
    auto deadline = std::chrono::steady_clock::now() + 5s;
    std::optional<tp::progress_info> seen;
    while (!seen && std::chrono::steady_clock::now() < deadline) {
        seen = c.status(ids[0], 20).progress;
    }
    ASSERT_TRUE(seen.has_value());
    EXPECT_DOUBLE_EQ(seen->fraction, 0.25);
    EXPECT_EQ(seen->note, "quarter");
}

TEST_F(Lifecycle, SpawnRecordsParentAndChildren) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b"), handler("echo.echo")}, 4);
    auto ids = c.submit({task("a.b")});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    tp::control sp;
    sp.req = 9;
    sp.id = ids[0];
    sp.tasks = {task("echo.echo"), task("echo.echo")};
    w.send(tp::cmd::spawn, tp::encode(sp));
    auto ack = w.expect(tp::cmd::spawn);
    ASSERT_TRUE(ack.has_value());
    auto ackc = tp::decode_control(ack->body);
    ASSERT_TRUE(ackc->ok) << ackc->error;
    ASSERT_EQ(ackc->ids.size(), 2u);
    EXPECT_EQ(c.status(ids[0]).children, ackc->ids);
    EXPECT_EQ(c.status(ackc->ids[0]).parent, ids[0]);
}

TEST_F(Lifecycle, EventsArePublished) {
    start();
    zmq::socket_t sub(ctx_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::subscribe, "task.");
    sub.connect(b_->endpoints().events);
    client c(ctx_, fe());
    // A SUB joins asynchronously: submit until an event arrives.
    std::optional<std::string> topic;
    std::string body;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!topic && std::chrono::steady_clock::now() < deadline) {
        c.submit({task("a.b")});
        std::vector<zmq::pollitem_t> items = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 50ms);
        zmq::message_t t;
        zmq::message_t b;
        if (sub.recv(t, zmq::recv_flags::dontwait)) {
            (void)sub.recv(b, zmq::recv_flags::none);
            topic = t.to_string();
            body = b.to_string();
        }
    }
    ASSERT_TRUE(topic.has_value());
    EXPECT_EQ(*topic, "task.queued");
    auto h = msgpack::unpack(body.data(), body.size());
    auto m = h.get().as<std::map<std::string, msgpack::object>>();
    EXPECT_EQ(m.at("state").as<std::string>(), "QUEUED");
    EXPECT_EQ(m.at("handler").as<std::string>(), "a.b");
}
