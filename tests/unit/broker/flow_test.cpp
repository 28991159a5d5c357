// Queue control and flow limits on the engine harness: PAUSE / RESUME,
// LIMIT rate (token bucket) and max_running per queue and per handler,
// QUEUES and STATS. Time is simulated: advance() runs a turn at every
// moment the engine asked to be woken, so a queue held by its rate starts
// again only if the engine set its deadline.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

tp::task_spec in_queue(const std::string& handler, const std::string& queue, int priority = 0) {
    auto t = task(handler, priority);
    t.queue = queue;
    return t;
}

tp::reply queue_cmd(engine_harness& h, std::string_view command, const std::string& queue) {
    tp::request rq;
    rq.queue = queue;
    return h.call(command, rq);
}

tp::reply limit_queue(engine_harness& h, const std::string& queue, std::optional<double> rate,
                      std::optional<uint32_t> burst, std::optional<uint32_t> max_running) {
    tp::request rq;
    rq.queue = queue;
    rq.rate = rate;
    rq.burst = burst;
    rq.max_running = max_running;
    return h.call(tp::cmd::limit, rq);
}

std::vector<std::string> ids_of(const std::vector<tp::work_item>& items) {
    std::vector<std::string> out;
    for (const auto& w : items) {
        out.push_back(w.id);
    }
    return out;
}

}  // namespace

TEST(Flow, PauseStopsDispatchAndResumeKeepsPriorityThenFifo) {
    engine_harness h;
    h.subscribe("queue.");
    auto& w = h.connect_worker(10, {handler("a.b")});
    auto rep = queue_cmd(h, tp::cmd::pause, "q");
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_EQ(rep.queues.size(), 1u);
    EXPECT_TRUE(rep.queues[0].paused);
    auto low1 = h.submit(in_queue("a.b", "q", 1));
    auto high = h.submit(in_queue("a.b", "q", 5));
    auto low2 = h.submit(in_queue("a.b", "q", 1));
    h.advance(60'000);
    EXPECT_TRUE(w.dispatched().empty());  // accepted, never dispatched
    EXPECT_EQ(h.status(low1).state, "QUEUED");

    rep = queue_cmd(h, tp::cmd::resume, "q");
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_FALSE(rep.queues.at(0).paused);
    EXPECT_EQ(ids_of(w.dispatched()), (std::vector<std::string>{high, low1, low2}));
    auto events = h.events("queue.");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[0].topic, "queue.paused");
    EXPECT_EQ(events[0].body["queue"], "q");
    EXPECT_EQ(events[1].topic, "queue.resumed");
}

TEST(Flow, PauseSurvivesARestart) {
    engine_harness h;
    ASSERT_TRUE(queue_cmd(h, tp::cmd::pause, "q").ok);
    auto a = h.submit(in_queue("a.b", "q"));
    auto b = h.submit(in_queue("a.b", "q"));
    h.restart();
    auto& w = h.connect_worker(4, {handler("a.b")});
    h.advance(10'000);
    EXPECT_TRUE(w.dispatched().empty());
    auto queues = h.call(tp::cmd::queues, tp::request{});
    ASSERT_EQ(queues.queues.size(), 1u);
    EXPECT_TRUE(queues.queues[0].paused);
    EXPECT_EQ(queues.queues[0].ready, 2u);
    ASSERT_TRUE(queue_cmd(h, tp::cmd::resume, "q").ok);
    EXPECT_EQ(ids_of(w.dispatched()), (std::vector<std::string>{a, b}));
}

TEST(Flow, PausedQueueDoesNotHoldOthersBack) {
    engine_harness h;
    auto& w = h.connect_worker(4, {handler("a.b")});
    ASSERT_TRUE(queue_cmd(h, tp::cmd::pause, "held").ok);
    h.submit(in_queue("a.b", "held"));
    auto free_id = h.submit(in_queue("a.b", "free"));
    EXPECT_EQ(ids_of(w.dispatched()), (std::vector<std::string>{free_id}));
}

TEST(Flow, RateWithBurstStartsBurstPlusRateTimesTime) {
    engine_harness h;
    auto& w = h.connect_worker(1000, {handler("a.b")});
    auto rep = limit_queue(h, "q", 10, 5, std::nullopt);
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_EQ(rep.queues.at(0).limits.rate, 10);
    EXPECT_EQ(rep.queues.at(0).limits.burst, 5u);
    std::vector<tp::task_spec> batch(200, in_queue("a.b", "q"));
    h.submit(batch);
    std::size_t started = w.dispatched().size();
    EXPECT_EQ(started, 5u);  // the burst at once
    for (int second = 1; second <= 5; ++second) {
        h.advance(1000);  // only the engine's own deadlines bring turns
        started += w.dispatched().size();
        EXPECT_EQ(started, 5u + 10u * static_cast<std::size_t>(second)) << "after " << second << " s";
    }
    // Half a token's time later: nothing more.
    h.advance(50);
    EXPECT_TRUE(w.dispatched().empty());
}

// Each turn comes 1 ms after the token it waits for was due, as a busy
// loop's do: a bucket of one token would lose that ms every time (100/s
// would become 91/s); the time it was late is kept, and the rate holds.
TEST(Flow, LateTurnsKeepTheRateWithABurstOfOne) {
    engine_harness h;
    auto& w = h.connect_worker(1000, {handler("a.b")});
    ASSERT_TRUE(limit_queue(h, "q", 100, 1, std::nullopt).ok);
    std::vector<tp::task_spec> batch(400, in_queue("a.b", "q"));
    h.submit(batch);
    EXPECT_EQ(w.dispatched().size(), 1u);
    const int64_t start = h.now();
    std::size_t started = 0;
    while (h.now() - start < 3000) {
        auto due = h.next_deadline();
        ASSERT_TRUE(due);
        h.jump(std::max<int64_t>(*due - h.now(), 0) + 1);
        h.advance(0);
        const auto in_turn = w.dispatched().size();
        EXPECT_LE(in_turn, 1u) << "a burst of 1 starts one task at a time";
        started += in_turn;
    }
    EXPECT_GE(started, 298u);
    EXPECT_LE(started, 301u);
}

TEST(Flow, RateLimitedQueueDoesNotHoldOthersBack) {
    engine_harness h;
    auto& w = h.connect_worker(100, {handler("a.b")});
    ASSERT_TRUE(limit_queue(h, "slow", 1, 1, std::nullopt).ok);
    h.submit({in_queue("a.b", "slow"), in_queue("a.b", "slow"), in_queue("a.b", "slow")});
    EXPECT_EQ(w.dispatched().size(), 1u);
    h.submit({in_queue("a.b", "fast"), in_queue("a.b", "fast"), in_queue("a.b", "fast")});
    EXPECT_EQ(w.dispatched().size(), 3u);
    h.advance(1000);
    EXPECT_EQ(w.dispatched().size(), 1u);
}

TEST(Flow, MaxRunningHoldsWithManyFreeSlots) {
    engine_harness h;
    auto& w = h.connect_worker(20, {handler("a.b")});
    ASSERT_TRUE(limit_queue(h, "q", std::nullopt, std::nullopt, 3).ok);
    std::vector<tp::task_spec> batch(10, in_queue("a.b", "q"));
    h.submit(batch);
    auto first = w.dispatched();
    ASSERT_EQ(first.size(), 3u);
    w.holding = ids_of(first);  // named in its heartbeats: still running
    h.advance(10'000);
    EXPECT_TRUE(w.dispatched().empty());
    w.result(first[0], "ok");
    auto next = w.dispatched();
    ASSERT_EQ(next.size(), 1u);  // one place freed, one task started
    w.holding = {first[1].id, first[2].id, next[0].id};
    auto stats = h.call(tp::cmd::stats, tp::request{});
    ASSERT_EQ(stats.stats->queues.size(), 1u);
    EXPECT_EQ(stats.stats->queues[0].limits.max_running, 3u);
    EXPECT_EQ(stats.stats->queues[0].running, 3u);

    // 0 removes the cap: every task left starts.
    ASSERT_TRUE(limit_queue(h, "q", std::nullopt, std::nullopt, 0).ok);
    EXPECT_EQ(w.dispatched().size(), 6u);
}

TEST(Flow, CappedQueueDoesNotStarveOthers) {
    engine_harness h;
    auto& w = h.connect_worker(20, {handler("a.b")});
    ASSERT_TRUE(limit_queue(h, "capped", std::nullopt, std::nullopt, 1).ok);
    std::vector<tp::task_spec> batch(5, in_queue("a.b", "capped"));
    batch.insert(batch.end(), 5, in_queue("a.b", "other"));
    h.submit(batch);
    EXPECT_EQ(w.dispatched().size(), 6u);
}

TEST(Flow, HandlerCapAppliesAcrossQueues) {
    engine_harness h;
    auto& w = h.connect_worker(20, {handler("a.b"), handler("c.d")});
    tp::request rq;
    rq.handler = "a.b";
    rq.max_running = 2;
    auto rep = h.call(tp::cmd::limit, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    h.submit({in_queue("a.b", "q1"), in_queue("a.b", "q1"), in_queue("a.b@1", "q2"), in_queue("a.b", "q2"),
              in_queue("c.d", "q1")});
    auto got = w.dispatched();
    std::size_t ab = 0;
    for (const auto& item : got) {
        ab += item.handler.starts_with("a.b") ? 1 : 0;
    }
    EXPECT_EQ(ab, 2u);
    EXPECT_EQ(got.size(), 3u);  // c.d is not held back
    auto stats = h.call(tp::cmd::stats, tp::request{});
    ASSERT_EQ(stats.stats->handlers.size(), 1u);
    EXPECT_EQ(stats.stats->handlers[0].name, "a.b");
    EXPECT_EQ(stats.stats->handlers[0].running, 2u);
    EXPECT_EQ(stats.stats->handlers[0].limits.max_running, 2u);
}

TEST(Flow, HandlerRateWakesForTokens) {
    engine_harness h;
    auto& w = h.connect_worker(20, {handler("a.b")});
    tp::request rq;
    rq.handler = "a.b";
    rq.rate = 2;
    rq.burst = 1;
    ASSERT_TRUE(h.call(tp::cmd::limit, rq).ok);
    h.submit({in_queue("a.b", "q1"), in_queue("a.b", "q2"), in_queue("a.b", "q1")});
    EXPECT_EQ(w.dispatched().size(), 1u);
    h.advance(499);
    EXPECT_TRUE(w.dispatched().empty());
    h.advance(1);
    EXPECT_EQ(w.dispatched().size(), 1u);
    h.advance(500);
    EXPECT_EQ(w.dispatched().size(), 1u);
}

TEST(Flow, ConfigLimitsApplyAndRunTimeLimitsWin) {
    auto cfg = sim_config();
    tb::queue_config q;
    q.name = "configured";
    q.flow.max_running = 1;
    q.flow.rate = 50;
    cfg.queues.push_back(q);
    engine_harness h(cfg);
    auto& w = h.connect_worker(20, {handler("a.b")});
    auto queues = h.call(tp::cmd::queues, tp::request{});
    ASSERT_EQ(queues.queues.size(), 1u);  // known from the config alone
    EXPECT_EQ(queues.queues[0].name, "configured");
    EXPECT_EQ(queues.queues[0].limits.max_running, 1u);
    EXPECT_EQ(queues.queues[0].limits.rate, 50);
    h.submit({in_queue("a.b", "configured"), in_queue("a.b", "configured")});
    EXPECT_EQ(w.dispatched().size(), 1u);
    // rate 0 removes the file's rate; the cap stays.
    auto rep = limit_queue(h, "configured", 0, std::nullopt, 2);
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_EQ(rep.queues.at(0).limits.rate, 0);
    EXPECT_EQ(rep.queues.at(0).limits.max_running, 2u);
    EXPECT_EQ(w.dispatched().size(), 1u);
    h.restart();
    queues = h.call(tp::cmd::queues, tp::request{});
    EXPECT_EQ(queues.queues.at(0).limits.rate, 0);  // the run-time value, kept
    EXPECT_EQ(queues.queues.at(0).limits.max_running, 2u);
}

TEST(Flow, BadInputIsRefusedClearly) {
    engine_harness h;
    auto expect_invalid = [&](const tp::reply& rep, const std::string& words) {
        EXPECT_FALSE(rep.ok);
        EXPECT_EQ(rep.error_code, "invalid_argument");
        EXPECT_NE(rep.error.find(words), std::string::npos) << rep.error;
    };
    expect_invalid(queue_cmd(h, tp::cmd::pause, ""), "needs a queue");
    expect_invalid(queue_cmd(h, tp::cmd::resume, "bad queue!"), "bad queue name");
    expect_invalid(limit_queue(h, "q", -1, std::nullopt, std::nullopt), "rate");
    expect_invalid(limit_queue(h, "q", std::numeric_limits<double>::quiet_NaN(), std::nullopt, std::nullopt), "rate");
    expect_invalid(limit_queue(h, "q", std::nullopt, std::nullopt, std::nullopt), "changes nothing");
    expect_invalid(limit_queue(h, "no space", 1, std::nullopt, std::nullopt), "bad queue name");
    tp::request rq;
    rq.handler = "a.b@2";
    rq.rate = 1;
    expect_invalid(h.call(tp::cmd::limit, rq), "without a version");
    rq.handler = "nodot";
    expect_invalid(h.call(tp::cmd::limit, rq), "bad handler name");
    rq.queue = "q";
    rq.handler = "a.b";
    expect_invalid(h.call(tp::cmd::limit, rq), "one of them");
    EXPECT_TRUE(h.call(tp::cmd::queues, tp::request{}).queues.empty());  // nothing was kept
}
