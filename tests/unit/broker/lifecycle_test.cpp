// Retries and their backoff, delays, TTL, cancel, retry, idempotency,
// poison tasks, checkpoints, progress, spawn and task events: the engine on
// the simulated clock (engine_harness.hpp), so times are exact.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "store/keys.hpp"

using namespace tmtest;

TEST(Lifecycle, RetryThenSucceed) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 2;
    t.backoff_base_ms = 5;
    auto id = h.submit(t);
    auto first = w.dispatched();
    ASSERT_EQ(first.size(), 1u);
    w.result(first[0], "retry", "", "flaky");
    EXPECT_EQ(h.status(id).state, "RETRYING");
    h.advance(5);
    auto second = w.dispatched();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].attempt, 2u);
    w.result(second[0], "ok", "\x07");
    auto st = h.status(id);
    EXPECT_EQ(st.state, "SUCCEEDED");
    EXPECT_EQ(st.attempts, 2u);
    auto stats = h.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(stats.stats->counters["retried"], 1u);
}

// Equal jitter: the n-th retry waits between half and all of
// min(cap, base * factor^(n-1)).
TEST(Lifecycle, BackoffGapsGrowByTheFactorUpToTheCap) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 6;
    t.backoff_base_ms = 100;
    t.backoff_factor = 2;
    t.backoff_cap_ms = 1000;
    auto id = h.submit(t);
    const std::vector<int64_t> full = {100, 200, 400, 800, 1000, 1000};
    for (uint32_t attempt = 1; attempt <= 6; ++attempt) {
        auto items = w.dispatched();
        ASSERT_EQ(items.size(), 1u) << "attempt " << attempt;
        EXPECT_EQ(items[0].attempt, attempt);
        w.result(items[0], "retry", "", "flaky");
        auto st = h.status(id);
        EXPECT_EQ(st.state, "RETRYING");
        const int64_t gap = st.eta_ms - h.now();
        EXPECT_GE(gap, full[attempt - 1] / 2) << "attempt " << attempt;
        EXPECT_LE(gap, full[attempt - 1]) << "attempt " << attempt;
        h.advance(gap - 1);
        EXPECT_TRUE(w.dispatched().empty()) << "dispatched before its backoff ended";
        h.advance(1);
    }
    auto last = w.dispatched();
    ASSERT_EQ(last.size(), 1u);
    EXPECT_EQ(last[0].attempt, 7u);
    w.result(last[0], "retry", "", "still flaky");
    EXPECT_EQ(h.status(id).state, "FAILED") << "retries exhausted";
}

// A task that sets no backoff of its own gets the broker's (--backoff-*).
TEST(Lifecycle, BackoffDefaultsComeFromTheConfig) {
    auto cfg = sim_config();
    cfg.backoff_base_ms = 400;
    cfg.backoff_factor = 3;
    cfg.backoff_cap_ms = 2000;
    engine_harness h(cfg);
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 3;
    auto id = h.submit(t);
    for (int64_t full : {400, 1200, 2000}) {
        auto items = w.dispatched();
        ASSERT_EQ(items.size(), 1u);
        w.result(items[0], "retry", "", "flaky");
        const int64_t gap = h.status(id).eta_ms - h.now();
        EXPECT_GE(gap, full / 2);
        EXPECT_LE(gap, full);
        h.advance(gap);
    }
}

// A handler that names its own delay is retried exactly then.
TEST(Lifecycle, RetryAfterFromTheHandlerIsExact) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 1;
    auto id = h.submit(t);
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    w.result(items[0], "retry", "", "rate limited", 2500);
    EXPECT_EQ(h.status(id).eta_ms, h.now() + 2500);
    h.advance(2499);
    EXPECT_TRUE(w.dispatched().empty());
    h.advance(1);
    EXPECT_EQ(w.dispatched().size(), 1u);
}

TEST(Lifecycle, RetriesExhaustedFailsAndRetryCommandRequeues) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 1;
    t.backoff_base_ms = 1;
    auto id = h.submit(t);
    for (int i = 0; i < 2; ++i) {
        h.advance(1);
        auto items = w.dispatched();
        ASSERT_EQ(items.size(), 1u);
        w.result(items[0], "retry", "", "still broken");
    }
    auto st = h.status(id);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.error, "still broken");
    EXPECT_EQ(st.attempts, 2u);

    tp::request rq;
    rq.id = id;
    auto rep = h.call(tp::cmd::retry, rq);
    EXPECT_TRUE(rep.ok) << rep.error;
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].attempt, 1u);  // fresh attempts
    w.result(items[0], "fail", "", "permanent");
    EXPECT_EQ(h.status(id).state, "FAILED");
}

TEST(Lifecycle, DelayedTaskIsPendingUntilDue) {
    engine_harness h;
    auto t = task("a.b");
    t.delay_ms = 300;
    auto id = h.submit(t);
    auto st = h.status(id);
    EXPECT_EQ(st.state, "PENDING");
    EXPECT_EQ(st.eta_ms, st.created_ms + 300);
    h.advance(299);
    EXPECT_EQ(h.status(id).state, "PENDING");
    h.advance(1);
    EXPECT_EQ(h.status(id).state, "QUEUED");
}

TEST(Lifecycle, TtlExpiresAnUnstartedTask) {
    engine_harness h;
    auto t = task("a.b");
    t.ttl_ms = 100;
    auto id = h.submit(t);
    h.advance(99);
    EXPECT_EQ(h.status(id).state, "QUEUED");
    h.advance(1);
    auto st = h.status(id);
    EXPECT_EQ(st.state, "EXPIRED");
    EXPECT_EQ(st.finished_ms, st.created_ms + 100);
    EXPECT_EQ(st.error, "ttl elapsed before the task started");
}

// The TTL counts from the submit: a delayed task whose TTL ends before its
// ETA expires when it comes due, without running; a started task is past
// its TTL for good.
TEST(Lifecycle, TtlCountsFromTheSubmitAndEndsAtTheStart) {
    engine_harness h;
    auto delayed = task("a.b");
    delayed.delay_ms = 1000;
    delayed.ttl_ms = 100;
    auto started = task("x.y");
    started.ttl_ms = 100;
    auto ids = h.submit({delayed, started});
    auto& w = h.connect_worker(1, {handler("a.b"), handler("x.y")});
    ASSERT_EQ(w.dispatched().size(), 1u);
    h.advance(999);
    EXPECT_EQ(h.status(ids[0]).state, "PENDING");
    h.advance(1);
    auto st = h.status(ids[0]);
    EXPECT_EQ(st.state, "EXPIRED");
    EXPECT_EQ(st.finished_ms, st.created_ms + 1000);
    EXPECT_EQ(st.attempts, 0u);
    EXPECT_TRUE(w.dispatched().empty());
    EXPECT_EQ(h.status(ids[1]).state, "RUNNING");
}

TEST(Lifecycle, CancelQueuedRunningAndFinished) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto ids = h.submit({task("a.b", 9), task("a.b", 0)});
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    ASSERT_EQ(items[0].id, ids[0]);

    tp::request rq;
    rq.id = ids[1];
    auto rep = h.call(tp::cmd::cancel, rq);
    EXPECT_TRUE(rep.ok);
    EXPECT_EQ(h.status(ids[1]).state, "CANCELLED");

    rq.id = ids[0];
    rep = h.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.note, "cancel requested");
    auto cancel = w.received(tp::cmd::cancel);
    ASSERT_EQ(cancel.size(), 1u);
    EXPECT_EQ(cancel[0].second.ids, std::vector<std::string>{ids[0]});
    w.result(items[0], "cancelled");
    EXPECT_EQ(h.status(ids[0]).state, "CANCELLED");

    rep = h.call(tp::cmd::cancel, rq);
    EXPECT_TRUE(rep.ok);
    EXPECT_EQ(rep.note, "already finished (CANCELLED)");
    h.advance(10'000);
    EXPECT_TRUE(w.dispatched().empty()) << "the cancelled queued task is never dispatched";
}

TEST(Lifecycle, CancelByTag) {
    engine_harness h;
    auto t = task("a.b");
    t.tags = {"batch7"};
    auto ids = h.submit({t, t, task("a.b")});
    tp::request rq;
    rq.tag = "batch7";
    auto rep = h.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids.size(), 2u);
    EXPECT_EQ(h.status(ids[0]).state, "CANCELLED");
    EXPECT_EQ(h.status(ids[1]).state, "CANCELLED");
    EXPECT_EQ(h.status(ids[2]).state, "QUEUED");
}

// Cancel by tag reads the tags table, which holds a task only while it is
// unfinished: a finished one is left alone, a retried one is back in it.
TEST(Lifecycle, CancelByTagFindsExactlyTheUnfinishedTasks) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto tagged = task("a.b");
    tagged.tags = {"t1", "t2"};
    auto done = h.submit(tagged);
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    w.result(items[0], "ok");
    EXPECT_EQ(h.status(done).state, "SUCCEEDED");

    auto parked = tagged;  // a handler no worker has: it stays queued
    parked.handler = "x.y";
    auto later = parked;
    later.delay_ms = 60000;
    auto open = h.submit({parked, later, task("x.y")});
    tp::request rq;
    rq.tag = "t2";
    auto rep = h.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids, (std::vector<std::string>{open[0], open[1]}));
    EXPECT_EQ(h.status(done).state, "SUCCEEDED");
    EXPECT_EQ(h.status(open[1]).state, "CANCELLED");
    EXPECT_EQ(h.status(open[2]).state, "QUEUED");

    tp::request again;
    again.id = open[0];
    auto retried = h.call(tp::cmd::retry, again);
    ASSERT_TRUE(retried.ok) << retried.error_code << " " << retried.error;
    rq.tag = "t1";
    rep = h.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids, std::vector<std::string>{open[0]});
    rq.tag = "t";  // a prefix of both tags, and a tag of its own
    EXPECT_TRUE(h.call(tp::cmd::cancel, rq).ids.empty());
}

// The index survives a restart, and a store written before it existed is
// indexed at its first start.
TEST(Lifecycle, CancelByTagAfterARestartAndOnAnOldStore) {
    engine_harness h;
    auto t = task("a.b");
    t.queue = "parked";
    t.tags = {"old"};
    auto ids = h.submit({t, t});
    h.restart();
    tp::request first;
    first.id = ids[0];
    EXPECT_EQ(h.call(tp::cmd::cancel, first).ids, std::vector<std::string>{ids[0]});
    {
        // As a store from before the tags table: no entries, no marker.
        auto txn = h.store().begin(true);
        std::vector<std::string> keys;
        ASSERT_TRUE(txn->scan(tb::table::tags, "", false,
                              [&](std::string_view k, std::string_view) {
                                  keys.emplace_back(k);
                                  return true;
                              })
                        .has_value());
        EXPECT_EQ(keys.size(), 2u);  // the cancelled one stays listed
        for (const auto& k : keys) ASSERT_TRUE(txn->erase(tb::table::tags, k).has_value());
        ASSERT_TRUE(txn->erase(tb::table::meta, tb::keys::meta_tags_indexed).has_value());
        ASSERT_TRUE(txn->erase(tb::table::meta, tb::keys::meta_listing_indexed).has_value());
        ASSERT_TRUE(txn->commit().has_value());
    }
    h.restart();
    tp::request rq;
    rq.tag = "old";
    auto rep = h.call(tp::cmd::cancel, rq);
    EXPECT_EQ(rep.ids, std::vector<std::string>{ids[1]});
    EXPECT_EQ(h.status(ids[1]).state, "CANCELLED");
}

// TASKS reads at most list_scan_budget tasks per request and says where it
// stopped: the pages together are the whole list, newest first, once each.
TEST(Lifecycle, TasksPagesThroughABoundedScan) {
    auto cfg = sim_config();
    cfg.list_scan_budget = 3;
    engine_harness h(cfg);
    std::vector<tp::task_spec> specs;
    for (int i = 0; i < 10; ++i) {
        auto t = task("x.y");
        t.queue = i % 2 == 0 ? "even" : "odd";
        specs.push_back(t);
    }
    auto ids = h.submit(specs);
    std::vector<std::string> listed;
    std::size_t pages = 0;
    tp::request rq;
    rq.queue = "odd";
    do {
        auto rep = h.call(tp::cmd::tasks, rq);
        ASSERT_TRUE(rep.ok) << rep.error;
        EXPECT_LE(rep.tasks.size(), 3u);
        for (const auto& t : rep.tasks) listed.push_back(t.id);
        rq.before = rep.next;
        ++pages;
    } while (!rq.before.empty() && pages < 20);
    EXPECT_EQ(listed, (std::vector<std::string>{ids[9], ids[7], ids[5], ids[3], ids[1]}));
    EXPECT_EQ(pages, 2u);  // the queue's index holds its 5 tasks, 3 read per request

    rq = tp::request{};
    rq.limit = 2;
    auto first = h.call(tp::cmd::tasks, rq);
    EXPECT_EQ(first.tasks.size(), 2u);
    EXPECT_EQ(first.next, ids[8]) << "the last task read, to go on from";
    rq.before = "zz";
    EXPECT_EQ(h.call(tp::cmd::tasks, rq).error_code, "invalid_argument");
}

TEST(Lifecycle, IdempotencyKeyReturnsFirstId) {
    engine_harness h;
    auto t = task("a.b");
    t.key = "order-42";
    auto first = h.submit(t);
    tp::request rq;
    rq.tasks = {t};
    auto rep = h.call(tp::cmd::submit, rq);
    ASSERT_TRUE(rep.ok);
    EXPECT_EQ(rep.ids, std::vector<std::string>{first});
    EXPECT_FALSE(rep.note.empty());
    auto list = h.call(tp::cmd::tasks, tp::request{});
    EXPECT_EQ(list.tasks.size(), 1u);
}

TEST(Lifecycle, PoisonTaskFailsAfterMaxCrashes) {
    auto cfg = sim_config();
    cfg.max_crashes = 2;
    engine_harness h(cfg);
    auto id = h.submit(task("a.b"));
    for (int i = 0; i < 2; ++i) {
        auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:" + std::to_string(200 + i), .supervisor = "sup"});
        ASSERT_EQ(w.dispatched().size(), 1u);
        tp::control dead;
        dead.ids = {w.id()};
        h.backend("sup", tp::cmd::dead, tp::encode(dead));
        if (i == 0) {
            EXPECT_EQ(h.status(id).state, "QUEUED");
        }
    }
    auto st = h.status(id);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.error, "poison: crashed its worker 2 times (max-crashes 2)");
}

// A DEAD that names what the worker's slots were running charges the crash
// to exactly those; the worker's other tasks go back to the queue uncharged.
TEST(Lifecycle, DeadWithRunningChargesOnlyThoseTasks) {
    auto cfg = sim_config();
    cfg.max_crashes = 1;
    engine_harness h(cfg);
    auto ids = h.submit({task("a.b"), task("a.b"), task("a.b")});
    auto& w = h.connect_worker(3, {handler("a.b")}, {.id = "node:300", .supervisor = "sup"});
    ASSERT_EQ(w.dispatched().size(), 3u);
    tp::control dead;
    dead.ids = {"node:300"};
    dead.running = std::vector<std::string>{ids[1]};
    h.backend("sup", tp::cmd::dead, tp::encode(dead));
    auto st = h.status(ids[1]);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.error, "poison: crashed its worker 1 time (max-crashes 1)");
    EXPECT_EQ(h.status(ids[0]).state, "QUEUED");
    EXPECT_EQ(h.status(ids[2]).state, "QUEUED");
}

TEST(Lifecycle, CheckpointIsHandedToTheNextAttempt) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.backoff_base_ms = 1;
    h.submit(t);
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_FALSE(items[0].checkpoint.has_value());
    tp::control cp;
    cp.req = 5;
    cp.id = items[0].id;
    cp.data = "step-3";
    w.send(tp::cmd::checkpoint, cp);
    auto ack = w.received(tp::cmd::checkpoint);
    ASSERT_EQ(ack.size(), 1u);
    EXPECT_TRUE(ack[0].second.ok);
    EXPECT_EQ(ack[0].second.req, 5u);
    tp::control pr;
    pr.id = items[0].id;
    pr.fraction = 0.5;
    pr.note = "half";
    w.send(tp::cmd::progress, pr);
    w.result(items[0], "retry", "", "again");
    h.advance(1);
    auto again = w.dispatched();
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].checkpoint, std::optional<std::string>("step-3"));
}

// The code a handler sets with its error (tm_error.code) is kept with the
// task and shown in STATUS; a later success clears it.
TEST(Lifecycle, HandlerErrorCodeShowsInStatus) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 1;
    t.backoff_base_ms = 1000;
    auto id = h.submit(t);
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    tp::results rs;
    rs.items.push_back(
        tp::outcome{items[0].id, items[0].attempt, "retry", "", "quota", std::nullopt, "1.0.0", 429, std::nullopt});
    w.send(rs);
    auto st = h.status(id);
    EXPECT_EQ(st.state, "RETRYING");
    EXPECT_EQ(st.error_code, std::optional<int64_t>(429));
    h.advance(1000);
    items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    w.result(items[0], "ok");
    EXPECT_FALSE(h.status(id).error_code.has_value());
}

TEST(Lifecycle, ProgressShowsInStatus) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto id = h.submit(task("a.b"));
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    tp::control pr;
    pr.id = items[0].id;
    pr.fraction = 0.25;
    pr.note = "quarter";
    w.send(tp::cmd::progress, pr);
    auto seen = h.status(id).progress;
    ASSERT_TRUE(seen.has_value());
    EXPECT_DOUBLE_EQ(seen->fraction, 0.25);
    EXPECT_EQ(seen->note, "quarter");
}

TEST(Lifecycle, SpawnRecordsParentAndChildren) {
    engine_harness h;
    auto& w = h.connect_worker(4, {handler("a.b"), handler("echo.echo")});
    auto id = h.submit(task("a.b"));
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    tp::control sp;
    sp.req = 9;
    sp.id = id;
    sp.tasks = {task("echo.echo"), task("echo.echo")};
    w.send(tp::cmd::spawn, sp);
    auto ack = w.received(tp::cmd::spawn);
    ASSERT_EQ(ack.size(), 1u);
    ASSERT_TRUE(ack[0].second.ok) << ack[0].second.error;
    ASSERT_EQ(ack[0].second.ids.size(), 2u);
    EXPECT_EQ(h.status(id).children, ack[0].second.ids);
    EXPECT_EQ(h.status(ack[0].second.ids[0]).parent, id);
}

// Each state change is an event on the topic of its state, stamped with
// the simulated time it happened at.
TEST(Lifecycle, EveryStateChangeIsAnEvent) {
    engine_harness h;
    h.subscribe("task.");
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.delay_ms = 250;
    auto id = h.submit(t);
    h.advance(250);
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    h.advance(40);
    w.result(items[0], "ok");
    std::vector<std::pair<std::string, int64_t>> seen;
    for (const auto& e : h.events()) {
        EXPECT_EQ(e.body.at("id"), id);
        EXPECT_EQ(e.body.at("type"), e.topic);
        EXPECT_EQ(e.body.at("time_ms"), e.at_ms);
        seen.emplace_back(e.topic, e.at_ms - sim_epoch_ms);
    }
    EXPECT_EQ(seen, (std::vector<std::pair<std::string, int64_t>>{
                        {"task.pending", 0}, {"task.queued", 250}, {"task.running", 250}, {"task.succeeded", 290}}));
}
