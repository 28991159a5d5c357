// Dispatch on the engine harness: credit, routing by handler, version and
// queue, requeue on DEAD, batch validation, and the STATS and WORKERS
// figures. Whether something is sent is known after the turn, so "nothing
// more is dispatched" needs no waiting.
#include <gtest/gtest.h>

#include <algorithm>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

TEST(Dispatch, CreditIsRespected) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto ids = h.submit({task("a.b"), task("a.b"), task("a.b")});
    auto first = w.dispatched();
    ASSERT_EQ(first.size(), 1u);
    // With one slot busy nothing else comes, however long it runs.
    w.holding = {first[0].id};
    auto stats = h.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(stats.stats->busy, 1u);
    EXPECT_EQ(stats.stats->queues.at(0).ready, 2u);
    h.advance(60'000);
    EXPECT_TRUE(w.dispatched().empty());
    w.result(first[0], "ok");
    auto second = w.dispatched();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].id, ids[1]);  // FIFO within a priority

    // CREDIT raises the capacity: the last task comes without a result.
    tp::control cr;
    cr.slots = 2;
    w.send(tp::cmd::credit, cr);
    auto third = w.dispatched();
    ASSERT_EQ(third.size(), 1u);
    EXPECT_EQ(third[0].id, ids[2]);
}

TEST(Dispatch, InvalidBatchIsRejectedWhole) {
    engine_harness h;
    tp::request rq;
    rq.tasks = {task("a.b"), task("a.b", 12)};
    auto rep = h.call(tp::cmd::submit, rq);
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.error_code, "invalid_argument");
    EXPECT_NE(rep.error.find("task 1"), std::string::npos) << rep.error;
    EXPECT_NE(rep.error.find("priority"), std::string::npos) << rep.error;
    rq.tasks = {task("no_dot")};
    rep = h.call(tp::cmd::submit, rq);
    EXPECT_NE(rep.error.find("handler"), std::string::npos) << rep.error;
    auto list = h.call(tp::cmd::tasks, tp::request{});
    EXPECT_TRUE(list.ok);
    EXPECT_TRUE(list.tasks.empty());
}

TEST(Dispatch, DeadRequeuesAtOnce) {
    engine_harness h;
    auto& a = h.connect_worker(1, {handler("a.b")}, {.id = "node:100", .supervisor = "node:supervisor"});
    auto id = h.submit(task("a.b"));
    ASSERT_EQ(a.dispatched().size(), 1u);
    auto& b = h.connect_worker(1, {handler("a.b")}, {.id = "node:101"});
    tp::control dead;
    dead.ids = {"node:100"};
    dead.note = "SIGSEGV";
    h.backend("node:supervisor", tp::cmd::dead, tp::encode(dead));
    auto items = b.dispatched();
    ASSERT_EQ(items.size(), 1u) << "in the turn of the DEAD";
    EXPECT_EQ(items[0].id, id);
    EXPECT_EQ(items[0].attempt, 2u);
    // The dead worker's late result is a duplicate and changes nothing.
    a.result(tp::work_item{id, "a.b", "", 1, 0, "", std::nullopt}, "ok");
    b.result(items[0], "ok", "\x01");
    auto st = h.status(id);
    EXPECT_EQ(st.state, "SUCCEEDED");
    EXPECT_EQ(st.result, std::optional<std::string>("\x01"));
}

TEST(Dispatch, WorkerWithoutTheHandlerGetsNothing) {
    engine_harness h;
    auto& other = h.connect_worker(4, {handler("x.y")}, {.id = "other"});
    auto ids = h.submit({task("a.b"), task("x.y")});
    auto items = other.dispatched();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].id, ids[1]);
    other.holding = {ids[1]};
    EXPECT_EQ(h.status(ids[0]).state, "QUEUED");
    auto& right = h.connect_worker(4, {handler("a.b")}, {.id = "right"});
    items = right.dispatched();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].id, ids[0]);
    h.advance(10'000);
    EXPECT_TRUE(other.dispatched().empty());
}

TEST(Dispatch, VersionAndQueueRouting) {
    engine_harness h;
    auto& v1 = h.connect_worker(4, {handler("img.resize", "1.4.0")}, {.id = "v1", .queues = {"default"}});
    auto& v2 = h.connect_worker(4, {handler("img.resize", "2.1.0")}, {.id = "v2", .queues = {"default", "gpu"}});
    auto t2 = task("img.resize@2");
    auto exact = task("img.resize@1.4.0");
    auto gpu = task("img.resize");
    gpu.queue = "gpu";
    auto ids = h.submit({t2, exact, gpu});
    auto a = v1.dispatched();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].id, ids[1]);
    std::vector<std::string> got;
    for (const auto& i : v2.dispatched()) {
        got.push_back(i.id);
    }
    std::sort(got.begin(), got.end());
    std::vector<std::string> want = {ids[0], ids[2]};
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
}

// @X.Y names any X.Y.z: accepted at submit, and matched by minor, not by
// prefix (1.2 is not 1.20).
TEST(Dispatch, MinorVersionPinMatchesThatMinor) {
    engine_harness h;
    auto& v12 = h.connect_worker(4, {handler("img.resize", "1.2.5")}, {.id = "v12"});
    auto& v120 = h.connect_worker(4, {handler("img.resize", "1.20.0")}, {.id = "v120"});
    auto ids = h.submit({task("img.resize@1.2"), task("img.resize@1.20")});
    auto a = v12.dispatched();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].id, ids[0]);
    auto b = v120.dispatched();
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].id, ids[1]);
    for (const char* bad : {"img.resize@1.2.3.4", "img.resize@1.", "img.resize@.1", "img.resize@1.x"}) {
        tp::request rq;
        rq.tasks = {task(bad)};
        EXPECT_EQ(h.call(tp::cmd::submit, rq).error_code, "invalid_argument") << bad;
    }
}

TEST(Dispatch, UnknownWorkerIsToldUnknown) {
    engine_harness h;
    h.backend("stranger", tp::cmd::heartbeat, tp::encode(tp::control{}));
    EXPECT_EQ(h.take("stranger", tp::cmd::unknown).size(), 1u);
}

TEST(Dispatch, StatsAndWorkers) {
    engine_harness h;
    auto& w = h.connect_worker(3, {handler("a.b")});
    h.submit(task("a.b"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    h.advance(1234);
    auto ws = h.call(tp::cmd::workers, tp::request{});
    ASSERT_EQ(ws.workers.size(), 1u);
    EXPECT_EQ(ws.workers[0].id, w.id());
    EXPECT_EQ(ws.workers[0].slots, 3u);
    EXPECT_EQ(ws.workers[0].busy, 1u);
    EXPECT_EQ(ws.workers[0].last_seen_ms, h.now() - 34) << "its answer to the HEARTBEAT at 1.2 s";
    auto st = h.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(st.stats->counters["submitted"], 1u);
    EXPECT_EQ(st.stats->states["RUNNING"], 1u);
    EXPECT_EQ(st.stats->workers, 1u);
    EXPECT_EQ(st.stats->slots, 3u);
    EXPECT_EQ(st.stats->uptime_ms, 1234);
}
