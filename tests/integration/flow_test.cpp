// Queue control and flow limits against real processes: a pause kept
// through a broker SIGKILL, a rate limit measured on the start times the
// broker records, a cap on running tasks with many slots free, and the CLI.
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>

#include "harness.hpp"

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

tp::task_spec in_queue(const std::string& handler, const std::string& queue, const nlohmann::json& payload = nullptr,
                       int priority = 0) {
    auto t = task(handler, payload);
    t.queue = queue;
    t.priority = priority;
    return t;
}

bool call_ok(wire_client& c, std::string_view command, tp::request rq) {
    auto rep = c.call(command, std::move(rq));
    return rep && rep->ok;
}

tp::request for_queue(const std::string& queue) {
    tp::request rq;
    rq.queue = queue;
    return rq;
}

// The final task_info of each id, in the order given.
std::vector<tp::task_info> finals(wire_client& c, const std::vector<std::string>& ids, ms timeout) {
    std::vector<tp::task_info> out;
    for (const auto& id : ids) {
        auto t = c.wait_final(id, timeout);
        EXPECT_TRUE(t.has_value()) << "task " << id << " did not finish";
        out.push_back(t.value_or(tp::task_info{}));
    }
    return out;
}

class Flow : public ::testing::Test {
protected:
    temp_dir tmp;
    fs::path data() const { return tmp.path() / "data"; }
    bool wait_workers(wire_client& c, std::size_t n) {
        return wait_until([&] { return c.workers().size() >= n; }, 30s);
    }
};

}  // namespace

TEST_F(Flow, PauseSurvivesABrokerKillAndResumeRunsInOrder) {
    broker_process first(data());
    auto ep = first.ep();
    wire_client c(ep.frontend);
    ASSERT_TRUE(call_ok(c, tp::cmd::pause, for_queue("held")));
    auto ids = c.submit({in_queue("echo.echo", "held", 1, 1), in_queue("echo.echo", "held", 2, 5),
                         in_queue("echo.echo", "held", 3, 1), in_queue("echo.echo", "held", 4, 5)});
    ASSERT_EQ(ids.size(), 4u);
    first.proc().signal(SIGKILL);
    ASSERT_TRUE(first.proc().wait_exit(10s).has_value());

    broker_process second(data(), {}, "broker2.log", &ep);
    wire_client c2(ep.frontend);
    // One slot and no prefetch: the broker starts one task at a time.
    auto host =
        start_host(tmp.path(), {.backend = ep.backend, .processes = 1, .concurrency = 1, .extra = {"--prefetch", "0"}});
    ASSERT_TRUE(wait_workers(c2, 1)) << host->log_text();
    // The host runs work (another queue), yet the paused one dispatches nothing.
    auto other = c2.submit({in_queue("echo.echo", "other", 0)});
    ASSERT_EQ(finals(c2, other, 30s).at(0).state, "SUCCEEDED") << host->log_text();
    auto queues = c2.call(tp::cmd::queues, {});
    ASSERT_TRUE(queues.has_value());
    auto held = std::find_if(queues->queues.begin(), queues->queues.end(), [](auto& q) { return q.name == "held"; });
    ASSERT_NE(held, queues->queues.end());
    EXPECT_TRUE(held->paused);
    EXPECT_EQ(held->ready, 4u);
    for (const auto& id : ids) {
        EXPECT_EQ(c2.status(id)->state, "QUEUED");
    }
    EXPECT_NE(read_file(tmp.path() / "broker2.log").find("queue=held is paused"), std::string::npos);

    ASSERT_TRUE(call_ok(c2, tp::cmd::resume, for_queue("held")));
    auto done = finals(c2, ids, 30s);
    // One slot: priority 5 first (2, then 4), then priority 1 (1, then 3).
    std::vector<std::size_t> order = {1, 3, 0, 2};
    for (std::size_t i = 1; i < order.size(); ++i) {
        EXPECT_LE(done[order[i - 1]].started_ms, done[order[i]].started_ms) << "position " << i;
        EXPECT_LE(done[order[i - 1]].finished_ms, done[order[i]].started_ms) << "position " << i;
    }
}

// 100/s with 10 idle slots: the starts the broker recorded keep the rate
// within 5% once the burst is spent.
TEST_F(Flow, RateLimitHoldsWithIdleWorkers) {
    broker_process broker(data());
    wire_client c(broker.ep().frontend);
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 10});
    ASSERT_TRUE(wait_workers(c, 1)) << host->log_text();
    tp::request rq = for_queue("paced");
    rq.rate = 100;
    rq.burst = 5;
    ASSERT_TRUE(call_ok(c, tp::cmd::limit, rq));
    std::vector<tp::task_spec> batch(400, in_queue("echo.echo", "paced", 1));
    auto ids = c.submit(batch);
    ASSERT_EQ(ids.size(), batch.size());
    auto done = finals(c, ids, 60s);
    std::vector<int64_t> starts;
    for (const auto& t : done) {
        ASSERT_EQ(t.state, "SUCCEEDED");
        starts.push_back(t.started_ms);
    }
    std::sort(starts.begin(), starts.end());
    // After the burst: 395 starts over what must be ~3.95 s.
    const auto after_burst = std::vector<int64_t>(starts.begin() + 5, starts.end());
    const double span_s = static_cast<double>(after_burst.back() - starts.front()) / 1000.0;
    const double rate = static_cast<double>(after_burst.size()) / span_s;
    EXPECT_NEAR(rate, 100.0, 5.0) << "span " << span_s << " s";
    // No second anywhere holds more than the rate plus the burst.
    for (std::size_t i = 0; i < starts.size(); ++i) {
        auto end = std::upper_bound(starts.begin(), starts.end(), starts[i] + 999);
        EXPECT_LE(end - (starts.begin() + static_cast<std::ptrdiff_t>(i)), 105) << "from start " << i;
    }
}

TEST_F(Flow, CapOfThreeRunningHoldsWithTwentySlotsFree) {
    broker_process broker(data());
    wire_client c(broker.ep().frontend);
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 20});
    ASSERT_TRUE(wait_workers(c, 1)) << host->log_text();
    tp::request rq = for_queue("capped");
    rq.max_running = 3;
    ASSERT_TRUE(call_ok(c, tp::cmd::limit, rq));
    std::vector<tp::task_spec> batch(12, in_queue("demo.sleep", "capped", {{"ms", 200}}));
    auto done = finals(c, c.submit(batch), 60s);
    // Sweep the [start, finish) intervals: an end at a moment counts before
    // a start at the same moment (the broker starts the next in that turn).
    std::vector<std::pair<int64_t, int>> edges;
    for (const auto& t : done) {
        ASSERT_EQ(t.state, "SUCCEEDED");
        edges.emplace_back(t.started_ms, +1);
        edges.emplace_back(t.finished_ms, -1);
    }
    std::sort(edges.begin(), edges.end());
    int running = 0;
    int most = 0;
    for (const auto& [at, d] : edges) {
        running += d;
        most = std::max(most, running);
    }
    EXPECT_EQ(most, 3);
}

TEST_F(Flow, CliShowsAndChangesQueues) {
    broker_process broker(data());
    const auto& fe = broker.ep().frontend;
    auto limit =
        run_cli(tmp.path(), {"--broker", fe, "queue", "limit", "emails", "--rate", "100/s", "--max-running", "3"});
    ASSERT_EQ(limit.exit_code, 0) << limit.err;
    EXPECT_NE(limit.out.find("100/s"), std::string::npos) << limit.out;
    auto pause = run_cli(tmp.path(), {"--broker", fe, "queue", "pause", "emails"});
    ASSERT_EQ(pause.exit_code, 0) << pause.err;
    EXPECT_EQ(pause.out, "queue emails paused\n");
    auto handler = run_cli(tmp.path(), {"--broker", fe, "handler", "limit", "img.resize", "--max-running", "4"});
    ASSERT_EQ(handler.exit_code, 0) << handler.err;

    auto queues = run_cli(tmp.path(), {"--broker", fe, "queues"});
    ASSERT_EQ(queues.exit_code, 0) << queues.err;
    EXPECT_NE(queues.out.find("PAUSED"), std::string::npos) << queues.out;
    EXPECT_NE(queues.out.find("MAX-RUNNING"), std::string::npos) << queues.out;
    EXPECT_NE(queues.out.find("emails"), std::string::npos) << queues.out;
    auto json = run_cli(tmp.path(), {"--broker", fe, "--json", "queues"});
    auto parsed = nlohmann::json::parse(json.out);
    ASSERT_EQ(parsed.size(), 1u) << json.out;
    EXPECT_EQ(parsed[0]["paused"], true);
    EXPECT_EQ(parsed[0]["limits"], (nlohmann::json{{"rate", 100.0}, {"burst", 100}, {"max_running", 3}}));
    auto stats = run_cli(tmp.path(), {"--broker", fe, "--json", "stats"});
    EXPECT_EQ(nlohmann::json::parse(stats.out)["handlers"][0]["name"], "img.resize") << stats.out;

    // Bad input: exit 2 with a clear message, nothing changed.
    auto bad_rate = run_cli(tmp.path(), {"--broker", fe, "queue", "limit", "emails", "--rate", "fast"});
    EXPECT_EQ(bad_rate.exit_code, 2);
    EXPECT_NE(bad_rate.err.find("rate"), std::string::npos) << bad_rate.err;
    auto nothing = run_cli(tmp.path(), {"--broker", fe, "queue", "limit", "emails"});
    EXPECT_EQ(nothing.exit_code, 2);
    auto bad_name = run_cli(tmp.path(), {"--broker", fe, "queue", "pause", "no such"});
    EXPECT_EQ(bad_name.exit_code, 2);
    EXPECT_NE(bad_name.err.find("bad queue name"), std::string::npos) << bad_name.err;
    auto unknown = run_cli(tmp.path(), {"--broker", fe, "queue", "explode", "emails"});
    EXPECT_EQ(unknown.exit_code, 2);
    auto resume = run_cli(tmp.path(), {"--broker", fe, "queue", "resume", "emails"});
    ASSERT_EQ(resume.exit_code, 0) << resume.err;
    EXPECT_EQ(resume.out, "queue emails resumed\n");
}
