// The operator verbs and the bulk jobs behind them (PURGE, CANCEL and RETRY
// by filter, DELETE, RUN_NOW, JOB): the engine on the simulated clock.
#include <gtest/gtest.h>

#include <algorithm>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "jobs/bulk_job.hpp"

using namespace tmtest;

namespace {

tp::task_spec in_queue(const std::string& handler, const std::string& queue) {
    auto t = task(handler);
    t.queue = queue;
    return t;
}

// Submits n tasks in batches of a SUBMIT each.
std::vector<std::string> submit_many(engine_harness& h, const tp::task_spec& t, std::size_t n) {
    std::vector<std::string> ids;
    while (ids.size() < n) {
        auto batch = h.submit(std::vector<tp::task_spec>(std::min<std::size_t>(1000, n - ids.size()), t));
        ids.insert(ids.end(), batch.begin(), batch.end());
    }
    return ids;
}

tp::job_info job_of(engine_harness& h, uint64_t id) {
    tp::request rq;
    rq.job = id;
    auto rep = h.call(tp::cmd::job, rq);
    EXPECT_TRUE(rep.ok) << rep.error;
    return rep.job.value_or(tp::job_info{});
}

// The large jobs run over LMDB in a temp folder, as the broker does (the
// memory store copies itself at every turn).
struct lmdb_harness {
    temp_dir dir;
    engine_harness h{
        sim_config(),
        tb::open_lmdb_store({.dir = dir.path.string(), .map_size_bytes = 1ull << 30, .mode = tb::durability::none}),
        sim_epoch_ms};
};

uint64_t state_count(engine_harness& h, const std::string& state) {
    auto stats = h.call(tp::cmd::stats, tp::request{});
    return stats.stats->states[state];
}

}  // namespace

TEST(Jobs, PurgeCancelsQueuedAndDelayedOfTheQueueOnly) {
    engine_harness h;
    h.subscribe("job.");
    auto& w = h.connect_worker(1, {handler("a.b")}, {.queues = {"q"}});
    auto running = h.submit(in_queue("a.b", "q"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    auto queued = h.submit(std::vector<tp::task_spec>(3, in_queue("a.b", "q")));
    auto delayed = in_queue("a.b", "q");
    delayed.delay_ms = 60000;
    auto pending = h.submit(delayed);
    auto other = h.submit(in_queue("a.b", "other"));

    tp::request rq;
    rq.queue = "q";
    auto rep = h.call(tp::cmd::purge, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_TRUE(rep.job);
    EXPECT_EQ(rep.job->kind, "purge");
    EXPECT_EQ(rep.job->state, "done");  // a small job is done in the request's turn
    EXPECT_EQ(rep.job->changed, 4u);
    for (const auto& id : queued) {
        EXPECT_EQ(h.status(id).state, "CANCELLED");
    }
    EXPECT_EQ(h.status(pending).state, "CANCELLED");
    EXPECT_EQ(h.status(running).state, "RUNNING");
    EXPECT_EQ(h.status(other).state, "QUEUED");
    EXPECT_TRUE(w.received(tp::cmd::cancel).empty());
    auto events = h.events("job.");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].topic, "job.started");
    EXPECT_EQ(events[1].topic, "job.done");
    EXPECT_EQ(events[1].body["changed"], 4);
    EXPECT_EQ(job_of(h, rep.job->id).changed, 4u);

    rq.queue.clear();
    EXPECT_EQ(h.call(tp::cmd::purge, rq).error_code, "invalid_argument");
}

TEST(Jobs, CancelByQueueAsksRunningTasksToStop) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto running = h.submit(in_queue("a.b", "q"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    auto waiting = h.submit(in_queue("a.b", "q"));
    auto elsewhere = h.submit(in_queue("c.d", "r"));
    tp::request rq;
    rq.queue = "q";
    auto rep = h.call(tp::cmd::cancel, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_TRUE(rep.job);
    EXPECT_EQ(rep.job->kind, "cancel");
    EXPECT_EQ(rep.job->changed, 2u);
    EXPECT_EQ(rep.ids.size(), 2u);
    EXPECT_EQ(h.status(waiting).state, "CANCELLED");
    EXPECT_EQ(w.received(tp::cmd::cancel).size(), 1u);  // the usual cancel request
    EXPECT_EQ(h.status(elsewhere).state, "QUEUED");
    (void)running;

    rq.queue.clear();
    rq.state = "SUCCEEDED";
    EXPECT_EQ(h.call(tp::cmd::cancel, rq).error_code, "invalid_argument");
}

TEST(Jobs, BulkRetryByStateAndHandler) {
    engine_harness h;
    auto mine = h.submit(std::vector<tp::task_spec>(3, task("a.b")));
    auto theirs = h.submit(task("c.d"));
    auto kept = h.submit(task("a.b"));
    for (const auto& id : mine) {
        tp::request c;
        c.id = id;
        h.call(tp::cmd::cancel, c);
    }
    tp::request c;
    c.id = theirs;
    h.call(tp::cmd::cancel, c);

    tp::request rq;
    rq.state = "CANCELLED";
    rq.handler = "a.b";
    auto rep = h.call(tp::cmd::retry, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_TRUE(rep.job);
    EXPECT_EQ(rep.job->changed, 3u);
    for (const auto& id : mine) {
        EXPECT_EQ(h.status(id).state, "QUEUED");
    }
    EXPECT_EQ(h.status(theirs).state, "CANCELLED");
    EXPECT_EQ(h.status(kept).state, "QUEUED");

    rq.state = "QUEUED";
    EXPECT_EQ(h.call(tp::cmd::retry, rq).error_code, "invalid_argument");
    rq.state = "CANCELLED";
    rq.handler = "a.b@2";
    EXPECT_EQ(h.call(tp::cmd::retry, rq).error_code, "invalid_argument");
    rq.handler.clear();
    h.hold_new_work(1000, "test");
    EXPECT_EQ(h.call(tp::cmd::retry, rq).error_code, "unavailable");
}

TEST(Jobs, DeleteFinishedByIdAndFilterSkipsUnfinished) {
    engine_harness h;
    auto done = h.submit(std::vector<tp::task_spec>(3, in_queue("a.b", "q")));
    auto open = h.submit(in_queue("a.b", "q"));
    for (const auto& id : done) {
        tp::request c;
        c.id = id;
        h.call(tp::cmd::cancel, c);
    }
    tp::request one;
    one.id = open;
    EXPECT_EQ(h.call(tp::cmd::remove, one).error_code, "conflict");
    one.id = done[0];
    auto rep = h.call(tp::cmd::remove, one);
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_EQ(rep.ids, std::vector<std::string>{done[0]});
    tp::request st;
    st.id = done[0];
    EXPECT_EQ(h.call(tp::cmd::status, st).error_code, "not_found");
    EXPECT_EQ(h.call(tp::cmd::remove, one).error_code, "not_found");

    tp::request by_filter;
    by_filter.queue = "q";
    rep = h.call(tp::cmd::remove, by_filter);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_TRUE(rep.job);
    EXPECT_EQ(rep.job->kind, "delete");
    EXPECT_EQ(rep.job->matched, 3u);  // two finished and the unfinished one
    EXPECT_EQ(rep.job->changed, 2u);
    EXPECT_EQ(h.status(open).state, "QUEUED");
    EXPECT_EQ(state_count(h, "CANCELLED"), 0u);

    tp::request bad;
    bad.ids = {done[1], "nothex"};
    EXPECT_EQ(h.call(tp::cmd::remove, bad).error_code, "invalid_argument");
    bad.ids = {done[1]};
    bad.queue = "q";
    EXPECT_EQ(h.call(tp::cmd::remove, bad).error_code, "invalid_argument");
}

TEST(Jobs, RunNowQueuesADelayedTask) {
    engine_harness h;
    auto later = task("a.b");
    later.delay_ms = 3600000;
    auto id = h.submit(later);
    EXPECT_EQ(h.status(id).state, "PENDING");
    tp::request rq;
    rq.id = id;
    auto rep = h.call(tp::cmd::run_now, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_EQ(h.status(id).state, "QUEUED");
    h.advance(3600000);  // the old due time passes: no second entry
    auto& w = h.connect_worker(2, {handler("a.b")});
    EXPECT_EQ(w.dispatched().size(), 1u);
    EXPECT_EQ(h.call(tp::cmd::run_now, rq).error_code, "conflict");  // running now
    rq.id = "00000000000000000000000000000000";
    EXPECT_EQ(h.call(tp::cmd::run_now, rq).error_code, "not_found");
}

TEST(Jobs, NoFilterIsRefusedUnlessAll) {
    engine_harness h;
    auto id = h.submit(task("a.b"));
    for (auto cmd : {tp::cmd::cancel, tp::cmd::retry, tp::cmd::remove}) {
        auto rep = h.call(cmd, tp::request{});
        EXPECT_EQ(rep.error_code, "invalid_argument") << cmd;
    }
    EXPECT_EQ(h.status(id).state, "QUEUED");
    tp::request all;
    all.all = true;
    auto rep = h.call(tp::cmd::cancel, all);
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_EQ(rep.job->changed, 1u);
    EXPECT_EQ(h.status(id).state, "CANCELLED");
    tp::request unknown;
    unknown.job = 999;
    EXPECT_EQ(h.call(tp::cmd::job, unknown).error_code, "not_found");
}

// A job over many tasks advances one bounded slice per turn, while the
// loop serves other requests between slices.
TEST(Jobs, LargeJobTakesManyTurnsEachBoundedByTheCap) {
    lmdb_harness lh;
    auto& h = lh.h;
    constexpr std::size_t n = 100000;
    submit_many(h, in_queue("a.b", "bulk"), n);
    tp::request rq;
    rq.queue = "bulk";
    auto rep = h.call(tp::cmd::purge, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_EQ(rep.job->state, "running");
    EXPECT_LE(rep.job->changed, tb::job_slice_tasks);
    uint64_t last = rep.job->changed;
    int turns = 1;
    for (;;) {
        auto j = job_of(h, rep.job->id);  // a turn: the request, then a slice
        EXPECT_LE(j.changed - last, tb::job_slice_tasks);
        last = j.changed;
        ++turns;
        if (j.state == "done") {
            break;
        }
        ASSERT_LT(turns, 100000);
    }
    EXPECT_GE(turns, static_cast<int>(n / tb::job_slice_tasks));
    EXPECT_EQ(last, n);
    EXPECT_EQ(state_count(h, "CANCELLED"), n);
    EXPECT_EQ(state_count(h, "QUEUED"), 0u);
}

// The job's cursor is committed with each slice: a new engine on the same
// store goes on from there and ends with every task retried exactly once.
TEST(Jobs, JobResumesAfterRestartFromItsCursor) {
    lmdb_harness lh;
    auto& h = lh.h;
    constexpr std::size_t n = 20000;
    auto t = in_queue("a.b", "bulk");
    submit_many(h, t, n);
    tp::request all;
    all.queue = "bulk";
    ASSERT_TRUE(h.call(tp::cmd::purge, all).ok);
    while (state_count(h, "QUEUED") > 0) {
    }
    tp::request rq;
    rq.state = "CANCELLED";
    rq.queue = "bulk";
    auto rep = h.call(tp::cmd::retry, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_EQ(rep.job->state, "running");
    const auto before = job_of(h, rep.job->id);
    ASSERT_LT(before.changed, n);
    h.restart();
    auto after = job_of(h, rep.job->id);
    EXPECT_GE(after.changed, before.changed);  // counts kept, nothing redone
    while (after.state != "done") {
        after = job_of(h, rep.job->id);
    }
    EXPECT_EQ(after.matched, n);
    EXPECT_EQ(after.changed, n);
    EXPECT_EQ(state_count(h, "QUEUED"), n);
    EXPECT_EQ(state_count(h, "CANCELLED"), 0u);
}
