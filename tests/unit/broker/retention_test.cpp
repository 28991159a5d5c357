// Retention: finished tasks and workflows deleted when their retention
// ends (per final state, per queue, per task), RETRY calling it off, keys
// expiring with their task, and the sweep's bounded slices. The engine on
// the simulated clock (engine_harness.hpp).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "retention/expiry.hpp"
#include "retention/sweep_slice.hpp"

using namespace tmtest;
using nlohmann::json;

namespace {

constexpr int64_t second = 1000;

tb::broker_config retention_config(int64_t succeeded, int64_t failed, int64_t cancelled, int64_t expired) {
    auto cfg = sim_config();
    cfg.retention = {succeeded, failed, cancelled, expired};
    return cfg;
}

// `cfg` with a [queue.NAME] section that sets retention-succeeded.
tb::broker_config with_queue(tb::broker_config cfg, const std::string& name, int64_t succeeded_ms) {
    tb::queue_config q;
    q.name = name;
    q.retention.succeeded_ms = succeeded_ms;
    cfg.queues.push_back(q);
    return cfg;
}

// True when STATUS says the task is gone.
bool gone(engine_harness& h, const std::string& id) {
    tp::request rq;
    rq.id = id;
    auto rep = h.call(tp::cmd::status, rq);
    EXPECT_TRUE(rep.ok || rep.error_code == "not_found") << rep.error;
    return !rep.ok && rep.error_code == "not_found";
}

std::size_t expiry_entries(engine_harness& h) {
    std::size_t n = 0;
    auto txn = h.store().begin(false);
    EXPECT_TRUE(txn->scan(tb::table::expiry, "", false, [&](std::string_view, std::string_view) {
        ++n;
        return true;
    }));
    return n;
}

// Finished tasks stored (STATS, a turn of its own).
std::size_t succeeded(engine_harness& h) {
    auto stats = h.call(tp::cmd::stats, tp::request{});
    return stats.stats ? stats.stats->states["SUCCEEDED"] : 0;
}

uint64_t deleted(engine_harness& h) {
    auto stats = h.call(tp::cmd::stats, tp::request{});
    return stats.stats ? stats.stats->counters["deleted"] : 0;
}

// Runs one task of `handler` to the worker's outcome `status`; returns its id.
std::string run(engine_harness& h, sim_worker& w, tp::task_spec t, const std::string& status) {
    t.retries = 0;
    auto id = h.submit(t);
    auto items = w.dispatched();
    EXPECT_EQ(items.size(), 1u);
    if (!items.empty()) {
        w.result(items[0], status, "", status == "ok" ? "" : "boom");
    }
    return id;
}

std::string cancelled_task(engine_harness& h, tp::task_spec t) {
    t.delay_ms = 3600 * second;
    auto id = h.submit(t);
    tp::request rq;
    rq.id = id;
    EXPECT_TRUE(h.call(tp::cmd::cancel, rq).ok);
    return id;
}

}  // namespace

TEST(Retention, EachFinalStateKeepsItsOwnRetention) {
    engine_harness h(retention_config(1 * second, 5 * second, 3 * second, 4 * second));
    auto& w = h.connect_worker(1, {handler("a.b")});
    const int64_t t0 = h.now();
    auto ok = run(h, w, task("a.b"), "ok");
    auto failed = run(h, w, task("a.b"), "fail");
    auto cancelled = cancelled_task(h, task("a.b"));
    auto ttl = task("a.nobody");
    ttl.ttl_ms = 100;
    auto expired = h.submit(ttl);
    EXPECT_EQ(h.status(ok).delete_at_ms, t0 + 1 * second);
    EXPECT_EQ(h.status(failed).delete_at_ms, t0 + 5 * second);
    EXPECT_EQ(h.status(cancelled).delete_at_ms, t0 + 3 * second);
    h.advance(100);
    EXPECT_EQ(h.status(expired).state, "EXPIRED");
    EXPECT_EQ(h.status(expired).delete_at_ms, t0 + 100 + 4 * second);

    h.advance(1 * second - 101);
    EXPECT_FALSE(gone(h, ok)) << "deleted before its retention ended";
    h.advance(1);
    EXPECT_TRUE(gone(h, ok));
    EXPECT_FALSE(gone(h, cancelled));
    h.advance(2 * second);
    EXPECT_TRUE(gone(h, cancelled));
    EXPECT_FALSE(gone(h, failed));
    h.advance(1 * second + 100);
    EXPECT_TRUE(gone(h, expired));
    EXPECT_FALSE(gone(h, failed));
    h.advance(1 * second);
    EXPECT_TRUE(gone(h, failed));
    EXPECT_EQ(deleted(h), 4u);
    EXPECT_EQ(expiry_entries(h), 0u);
    auto stats = h.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(stats.stats->states["SUCCEEDED"], 0u) << "the per-state counts follow the deletions";
    EXPECT_EQ(stats.stats->states["FAILED"], 0u);
}

TEST(Retention, AQueueSectionOverridesTheBrokersAndATaskOverridesBoth) {
    auto cfg = with_queue(retention_config(10 * second, 10 * second, 10 * second, 10 * second), "short", 1 * second);
    engine_harness h(cfg);
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto plain = run(h, w, task("a.b"), "ok");
    auto in_short = task("a.b");
    in_short.queue = "short";
    auto short_ok = run(h, w, in_short, "ok");
    auto short_failed = run(h, w, in_short, "fail");  // the queue leaves FAILED to the broker
    auto own = task("a.b");
    own.queue = "short";
    own.keep_ms = 500;
    auto kept_less = run(h, w, own, "ok");
    own.keep_ms = 0;
    auto kept_forever = run(h, w, own, "ok");
    EXPECT_EQ(h.status(kept_forever).delete_at_ms, 0);

    h.advance(500);
    EXPECT_TRUE(gone(h, kept_less));
    EXPECT_FALSE(gone(h, short_ok));
    h.advance(500);
    EXPECT_TRUE(gone(h, short_ok));
    EXPECT_FALSE(gone(h, plain));
    EXPECT_FALSE(gone(h, short_failed));
    h.advance(9 * second);
    EXPECT_TRUE(gone(h, plain));
    EXPECT_TRUE(gone(h, short_failed));
    EXPECT_EQ(expiry_entries(h), 0u) << "keep 0 is for ever: nothing left to delete";
    h.advance(60 * second);
    EXPECT_FALSE(gone(h, kept_forever));
}

// A task kept as long as the broker says for its state needs no expiry
// entry: the sweep walks the state's index in finish order. One with a
// retention of its own or of its queue's has one.
TEST(Retention, OnlyARetentionOfItsOwnTakesAnExpiryEntry) {
    auto cfg = with_queue(retention_config(10 * second, 10 * second, 10 * second, 10 * second), "short", 1 * second);
    engine_harness h(cfg);
    auto& w = h.connect_worker(1, {handler("a.b")});
    std::vector<std::string> plain;
    for (int i = 0; i < 3; ++i) {
        plain.push_back(run(h, w, task("a.b"), i == 0 ? "fail" : "ok"));
    }
    EXPECT_EQ(expiry_entries(h), 0u);
    auto in_short = task("a.b");
    in_short.queue = "short";
    auto short_ok = run(h, w, in_short, "ok");
    auto own = task("a.b");
    own.keep_ms = 2 * second;
    auto kept = run(h, w, own, "ok");
    EXPECT_EQ(expiry_entries(h), 2u);
    h.advance(2 * second);
    EXPECT_TRUE(gone(h, short_ok));
    EXPECT_TRUE(gone(h, kept));
    EXPECT_EQ(expiry_entries(h), 0u);
    for (const auto& id : plain) {
        EXPECT_FALSE(gone(h, id));
    }
    h.advance(8 * second);
    for (const auto& id : plain) {
        EXPECT_TRUE(gone(h, id)) << "the walk of the finished tasks deleted it";
    }
    EXPECT_EQ(deleted(h), 5u);
}

// Lowering retention-succeeded applies to the tasks that finished under
// the broker's setting before (an operator short of disk must not wait for
// the old setting to run out); a task with its own keeps its time; 0 keeps
// every task of the state for ever.
TEST(Retention, AChangedSettingAppliesToTheTasksFinishedBefore) {
    auto cfg = retention_config(3600 * second, 3600 * second, 1, 1);
    engine_harness h(cfg);
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto plain = run(h, w, task("a.b"), "ok");
    auto own = task("a.b");
    own.keep_ms = 3600 * second;
    auto kept = run(h, w, own, "ok");
    auto failed = run(h, w, task("a.b"), "fail");
    cfg.retention.succeeded_ms = 10 * second;
    cfg.retention.failed_ms = 0;
    h.restart_with(cfg, 5 * second);
    EXPECT_FALSE(gone(h, plain));
    h.advance(5 * second);
    EXPECT_TRUE(gone(h, plain));
    EXPECT_FALSE(gone(h, kept)) << "its own retention is its own";
    h.advance(7200 * second);
    EXPECT_TRUE(gone(h, kept));
    EXPECT_FALSE(gone(h, failed)) << "retention-failed 0 keeps it";
}

// The walk goes on from where it stopped, across a restart: tasks passed
// over (kept for ever by their queue) are not read again.
TEST(Retention, TheWalkOfTheFinishedTasksResumesAfterARestart) {
    auto cfg = with_queue(retention_config(1 * second, 1, 1, 1), "kept", 0);
    engine_harness h(cfg);
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto in_kept = task("a.b");
    in_kept.queue = "kept";
    auto forever = run(h, w, in_kept, "ok");
    auto first = run(h, w, task("a.b"), "ok");
    h.advance(1 * second);
    EXPECT_TRUE(gone(h, first));
    auto position = [&] {
        auto txn = h.store().begin(false);
        auto raw = txn->get(tb::table::meta, "sweep-from/SUCCEEDED");
        return raw ? *raw : std::string();
    };
    const auto walked = position();
    EXPECT_FALSE(walked.empty());
    auto later = run(h, w, task("a.b"), "ok");
    h.restart(1);
    h.advance(1 * second);
    EXPECT_TRUE(gone(h, later));
    EXPECT_FALSE(gone(h, forever));
    EXPECT_GT(position(), walked);
}

TEST(Retention, ZeroKeepsForEver) {
    engine_harness h(retention_config(0, 0, 0, 0));
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto ok = run(h, w, task("a.b"), "ok");
    auto failed = run(h, w, task("a.b"), "fail");
    EXPECT_EQ(h.status(ok).delete_at_ms, 0);
    EXPECT_EQ(expiry_entries(h), 0u);
    EXPECT_FALSE(h.call(tp::cmd::stats, tp::request{}).stats->counters.count("deleted"));
    h.advance(60 * second);
    EXPECT_FALSE(gone(h, ok));
    EXPECT_FALSE(gone(h, failed));
}

TEST(Retention, RetryBeforeTheEndCallsTheDeletionOff) {
    engine_harness h(retention_config(1 * second, 1 * second, 1 * second, 1 * second));
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto id = run(h, w, task("a.b"), "fail");
    const int64_t first_end = h.status(id).delete_at_ms;
    h.advance(500);
    tp::request rq;
    rq.id = id;
    ASSERT_TRUE(h.call(tp::cmd::retry, rq).ok);
    EXPECT_EQ(h.status(id).delete_at_ms, 0);
    EXPECT_EQ(expiry_entries(h), 0u);
    auto again = w.dispatched();
    ASSERT_EQ(again.size(), 1u);
    w.holding = {id};
    h.advance(first_end - h.now() + 1);
    EXPECT_EQ(h.status(id).state, "RUNNING") << "a running task is never deleted";
    w.result(again[0], "ok");
    EXPECT_EQ(h.status(id).delete_at_ms, h.now() + 1 * second) << "a new retention from the new end";
    h.advance(1 * second);
    EXPECT_TRUE(gone(h, id));
}

TEST(Retention, IdempotencyKeysExpireWithTheirTask) {
    engine_harness h(retention_config(1 * second, 1 * second, 1 * second, 1 * second));
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.key = "order-17";
    auto first = run(h, w, t, "ok");
    EXPECT_EQ(h.submit(t), first) << "the key names the task while it is kept";
    h.advance(1 * second);
    ASSERT_TRUE(gone(h, first));
    auto second_id = h.submit(t);
    EXPECT_NE(second_id, first) << "the key went with its task";
    EXPECT_EQ(h.status(second_id).state, "RUNNING");
}

TEST(Retention, NothingUnfinishedIsDeleted) {
    engine_harness h(retention_config(1, 1, 1, 1));
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto done = run(h, w, task("a.b"), "ok");
    auto running = h.submit(task("a.b"));
    auto queued = h.submit(task("a.b"));
    auto later = task("a.b");
    later.delay_ms = 100 * second;
    auto pending = h.submit(later);
    w.holding = {running};
    h.advance(50 * second);
    EXPECT_TRUE(gone(h, done));
    EXPECT_EQ(h.status(running).state, "RUNNING");
    EXPECT_EQ(h.status(queued).state, "QUEUED");
    EXPECT_EQ(h.status(pending).state, "PENDING");
}

TEST(Retention, SurvivesARestart) {
    engine_harness h(retention_config(10 * second, 1, 1, 1));
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto id = run(h, w, task("a.b"), "ok");
    h.restart(5 * second);
    EXPECT_FALSE(gone(h, id));
    h.advance(5 * second);  // the restarted engine woke for it on its own
    EXPECT_TRUE(gone(h, id));
}

// 5,000 tasks due at once: deleted over several turns, none deleting more than
// the cap, and every one of them in the end.
TEST(Retention, ASliceIsBounded) {
    engine_harness h(retention_config(1, 1, 1 * second, 1));
    constexpr std::size_t total = 2'500;
    for (std::size_t batch = 0; batch < total / 500; ++batch) {
        std::vector<tp::task_spec> tasks(500, task("a.b"));
        for (auto& t : tasks) {
            t.delay_ms = 3600 * second;
            t.tags = {"bulk"};
        }
        h.submit(tasks);
    }
    tp::request rq;
    rq.tag = "bulk";
    auto cancelled = h.call(tp::cmd::cancel, rq);
    ASSERT_TRUE(cancelled.ok);
    if (cancelled.job) {  // more than one slice: a job, one slice per turn
        tp::request jq;
        jq.job = cancelled.job->id;
        for (int turn = 0; turn < 100 && h.call(tp::cmd::job, jq).job->state != "done"; ++turn) {
        }
        ASSERT_EQ(h.call(tp::cmd::job, jq).job->state, "done");
    }
    h.jump(1 * second);  // all due at the next turn
    uint64_t before = 0;
    std::size_t turns = 0;
    while (before < total && turns < total) {
        const uint64_t now_deleted = deleted(h);  // one turn each
        EXPECT_LE(now_deleted - before, tb::max_sweep_deletes);
        before = now_deleted;
        ++turns;
    }
    EXPECT_EQ(before, total);
    EXPECT_GE(turns, total / tb::max_sweep_deletes);
    EXPECT_EQ(expiry_entries(h), 0u);
    auto stats = h.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(stats.stats->states["CANCELLED"], 0u);
}

// Under a sustained load the sweep keeps pace: a turn that finishes more
// tasks than a slice's cap deletes at least as many due ones, so the store
// does not grow while the loop's turns are long.
TEST(Retention, DeletionKeepsPaceWithFinishing) {
    engine_harness h(retention_config(1 * second, 1, 1, 1));
    auto& w = h.connect_worker(2'000, {handler("a.b")});
    auto run_batch = [&](std::size_t n, bool answer) {
        h.submit(std::vector<tp::task_spec>(n, task("a.b")));
        auto items = w.dispatched();
        EXPECT_EQ(items.size(), n);
        tp::results rs;
        for (const auto& it : items) {
            rs.items.push_back(
                tp::outcome{it.id, it.attempt, "ok", "", "", std::nullopt, "1.0.0", std::nullopt, std::nullopt});
        }
        if (answer) {
            w.send(rs);  // one RESULTS, so one turn finishes them all
        }
        return rs;
    };
    for (int i = 0; i < 10; ++i) {
        run_batch(500, true);
    }
    h.jump(1 * second);  // 5,000 due
    auto later = run_batch(1'500, false);
    const std::size_t backlog = succeeded(h);  // the due ones left
    ASSERT_GT(backlog, 1'500u + tb::max_sweep_deletes);
    w.send(later);  // 1,500 tasks finish in this turn
    const std::size_t deleted_in_turn = backlog + 1'500 - succeeded(h);
    EXPECT_GE(deleted_in_turn, 1'500u);
    EXPECT_GT(deleted_in_turn, tb::max_sweep_deletes);
}

namespace {

std::string mp(const json& j) {
    auto v = json::to_msgpack(j);
    return {v.begin(), v.end()};
}

}  // namespace

// A workflow's steps have no expiry of their own: they go with the
// workflow, when the retention of its final state ends.
TEST(Retention, AWorkflowGoesWithItsSteps) {
    engine_harness h(retention_config(1 * second, 1, 1, 1));
    auto& w = h.connect_worker(2, {handler("t.a"), handler("t.b")});
    json def = {{"steps",
                 {{{"name", "a"}, {"handler", "t.a"}, {"depends_on", json::array()}},
                  {{"name", "b"}, {"handler", "t.b"}, {"depends_on", {"a"}}}}}};
    tp::request rq;
    rq.data = mp(def);
    auto rep = h.call(tp::cmd::wf_submit, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    const auto wf = rep.ids.at(0);
    std::vector<std::string> steps;
    for (int i = 0; i < 2; ++i) {
        auto items = w.dispatched();
        ASSERT_EQ(items.size(), 1u);
        steps.push_back(items[0].id);
        w.result(items[0], "ok");
        EXPECT_EQ(h.status(items[0].id).delete_at_ms, 0) << "a step has no retention of its own";
    }
    EXPECT_EQ(expiry_entries(h), 1u) << "one entry: the workflow's";
    h.advance(1 * second - 1);
    EXPECT_FALSE(gone(h, steps[0]));
    h.advance(1);
    for (const auto& s : steps) {
        EXPECT_TRUE(gone(h, s));
    }
    tp::request st;
    st.id = wf;
    auto status = h.call(tp::cmd::wf_status, st);
    EXPECT_FALSE(status.ok);
    EXPECT_EQ(status.error_code, "not_found");
    EXPECT_EQ(expiry_entries(h), 0u);
}
