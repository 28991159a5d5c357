// The figures of metrics, STATS and WORKERS on the simulated clock: slots
// apart from prefetch, running apart from dispatched, run time from the
// attempt's start, the oldest ready task's age; and the Prometheus text.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "metrics/metrics.hpp"

using namespace tmtest;

namespace {

tp::stats_info stats(engine_harness& h) {
    auto rep = h.call(tp::cmd::stats, {});
    return rep.stats.value_or(tp::stats_info{});
}

}  // namespace

// HELLO's slots are credit (slots + prefetch): WORKERS and STATS used to
// report that credit as slots (concurrency 4 + prefetch 1 showed 5).
TEST(EngineMetrics, SlotsAreTheConcurrencyAndPrefetchIsApart) {
    engine_harness h;
    h.connect_worker(5, {handler("a.b")}, {.prefetch = 1});
    h.connect_worker(5, {handler("a.b")}, {.prefetch = 1});
    auto rep = h.call(tp::cmd::workers, {});
    ASSERT_EQ(rep.workers.size(), 2u);
    EXPECT_EQ(rep.workers[0].slots, 4u);
    EXPECT_EQ(rep.workers[0].prefetch, 1u);
    auto s = stats(h);
    EXPECT_EQ(s.slots, 8u);
    EXPECT_EQ(s.prefetch, 2u);
    auto m = h.metrics();
    EXPECT_EQ(m->slots, 8u);
    EXPECT_EQ(m->prefetch, 2u);
}

// A dispatched task that waits in the worker's prefetch is not running.
TEST(EngineMetrics, RunningCountsStartedAttemptsApartFromDispatched) {
    engine_harness h;
    auto& w = h.connect_worker(3, {handler("a.b")}, {.prefetch = 2});
    for (int i = 0; i < 3; ++i) {
        h.submit(task("a.b"));
    }
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 3u);
    auto s = stats(h);
    EXPECT_EQ(s.busy, 3u);
    EXPECT_EQ(s.running, 0u);
    tp::results started;
    started.started = {items[0].id};
    w.send(started);
    s = stats(h);
    EXPECT_EQ(s.running, 1u);
    EXPECT_EQ(h.call(tp::cmd::workers, {}).workers.at(0).running, 1u);
    EXPECT_EQ(h.metrics()->running, 1u);
    w.result(items[0], "ok");
    s = stats(h);
    EXPECT_EQ(s.running, 0u);
    EXPECT_EQ(s.busy, 2u);
    w.result(items[1], "ok");  // an outcome implies the start: never counted running
    EXPECT_EQ(stats(h).running, 0u);
}

// The run-time histogram takes the worker's own measure: a task that
// waited 400 ms in the prefetch and ran 200 µs shows 200 µs, not 400 ms.
TEST(EngineMetrics, RunTimeIsTheWorkersMeasureNotTheTimeSinceDispatch) {
    engine_harness h;
    auto& w = h.connect_worker(2, {handler("a.b")}, {.prefetch = 1});
    h.submit(task("a.b"));
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    h.advance(400);
    tp::results rs;
    rs.items.push_back(
        tp::outcome{items[0].id, items[0].attempt, "ok", "", "", std::nullopt, "1.0.0", std::nullopt, 200});
    w.send(rs);
    auto m = h.metrics();
    const auto& run = m->handlers.at("a.b").run;
    ASSERT_EQ(run.count, 1u);
    EXPECT_EQ(run.buckets[1], 1u) << "in (100 µs, 250 µs]";
    EXPECT_NEAR(run.sum, 0.0002, 1e-9);
}

// Without the worker's measure (an older worker), the start it reported.
TEST(EngineMetrics, RunTimeCountsFromTheReportedStartWithoutTheWorkersMeasure) {
    engine_harness h;
    auto& w = h.connect_worker(2, {handler("a.b")}, {.prefetch = 1});
    h.submit(task("a.b"));
    auto items = w.dispatched();
    h.advance(400);
    tp::results started;
    started.started = {items[0].id};
    w.send(started);
    h.advance(30);
    w.result(items[0], "ok");
    EXPECT_NEAR(h.metrics()->handlers.at("a.b").run.sum, 0.030, 1e-9);
}

TEST(EngineMetrics, OldestReadyAgeIsPerQueueAndGrows) {
    engine_harness h;
    h.metrics();  // a broker with HTTP publishes every turn
    auto t = task("a.b");
    t.queue = "q1";
    h.submit(t);
    h.advance(1500);
    h.submit(t);
    h.advance(1500);  // the once-a-second refresh has run since
    auto m = h.metrics();
    ASSERT_EQ(m->oldest_ready_age_s.count("q1"), 1u);
    EXPECT_NEAR(m->oldest_ready_age_s.at("q1"), 3.0, 1.01);
    EXPECT_EQ(m->oldest_ready_age_s.count("default"), 0u);
}

// The once-a-second refresh serves /metrics alone: a broker that never
// published a snapshot (no HTTP) does not wake for it, one that did does.
TEST(EngineMetrics, OnlyABrokerThatPublishesMetricsWakesEachSecondForThem) {
    engine_harness h;
    auto t = task("a.b");
    t.queue = "nobody";
    h.submit(t);
    EXPECT_EQ(h.next_deadline(), std::nullopt) << "a waiting task alone needs no wake-up";
    h.metrics();
    auto wake = h.next_deadline();
    ASSERT_TRUE(wake.has_value());
    EXPECT_LE(*wake - h.now(), 1001);
    h.advance(1500);
    EXPECT_EQ(h.metrics()->oldest_ready_age_s.count("nobody"), 1u) << "refreshed in the turns that followed";
}

TEST(EngineMetrics, QuantilesAreEstimatedAsPrometheusDoes) {
    tb::seconds_histogram hist;
    EXPECT_FALSE(hist.quantile(0.5).has_value());
    for (int i = 0; i < 10; ++i) {
        hist.observe(0.003);  // (0.0025, 0.005]
    }
    auto p50 = hist.quantile(0.5);
    ASSERT_TRUE(p50.has_value());
    EXPECT_NEAR(*p50, 0.0025 + 0.0025 * 0.5, 1e-12);
    hist.observe(1000);  // past the last bound: +Inf
    EXPECT_EQ(*hist.quantile(1.0), 300.0);
}

// The le labels read as the documented bounds (docs/OPERATIONS.md), so a
// query on le="0.1" finds its bucket; sums print their shortest form.
TEST(EngineMetrics, BucketBoundsPrintAsDocumented) {
    tb::metrics_snapshot s;
    s.handlers["a.b"].run.observe(0.1);
    s.handlers["a.b"].run.observe(0.2);
    auto text = tb::render_prometheus(s);
    std::vector<std::string> les;
    const std::string key = R"(taskmill_task_run_seconds_bucket{handler="a.b",le=")";
    for (auto at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
        auto from = at + key.size();
        les.push_back(text.substr(from, text.find('"', from) - from));
    }
    EXPECT_EQ(les, (std::vector<std::string>{"0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01",
                                             "0.025",  "0.05",    "0.1",    "0.25",  "0.5",    "1",     "2.5",
                                             "5",      "10",      "30",     "60",    "120",    "300",   "+Inf"}));
    EXPECT_NE(text.find("taskmill_task_run_seconds_sum{handler=\"a.b\"} 0.30000000000000004\n"), std::string::npos)
        << "0.1 + 0.2 in its shortest exact form: " << text;
}

TEST(EngineMetrics, PrometheusTextHasSecondsBucketsFrom100MicrosecondsAndNoMilliseconds) {
    tb::metrics_snapshot s;
    s.handlers["a.b"].run.observe(0.00005);
    auto text = tb::render_prometheus(s);
    EXPECT_NE(text.find(R"(taskmill_task_run_seconds_bucket{handler="a.b",le="0.0001"} 1)"), std::string::npos) << text;
    EXPECT_NE(text.find(R"(taskmill_task_run_seconds_bucket{handler="a.b",le="300"} 1)"), std::string::npos);
    EXPECT_EQ(text.find("_ms"), std::string::npos);
    EXPECT_NE(text.find("# TYPE taskmill_build_info gauge"), std::string::npos);
    EXPECT_NE(text.find("# TYPE process_cpu_seconds_total counter"), std::string::npos);
}
