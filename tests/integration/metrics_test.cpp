// Metrics against real processes: the broker's /metrics passes Debian's
// promtool and is scraped by a real Prometheus server that answers a
// histogram query; worker slots, prefetch and memory are reported apart; the
// run-time histogram counts from the attempt's start; GET /api/v1/handlers.
#include "http_fixture.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <httplib.h>

#include <taskmill/protocol/wire.hpp>

using namespace taskmill::testing;
using nlohmann::json;
namespace tp = taskmill::protocol;

namespace {

class Metrics : public http_test {
protected:
    std::vector<std::unique_ptr<process>> hosts;
    std::unique_ptr<wire_client> client;

    void start_broker() {
        start_http_broker();
        client = std::make_unique<wire_client>(broker->ep().frontend);
    }
    // One more host of one worker process with `concurrency` slots and a
    // fixed `prefetch`; waits until the broker counts `workers` in all.
    void add_host(int concurrency, int prefetch, std::size_t workers, std::vector<std::string> extra = {}) {
        extra.insert(extra.end(), {"--prefetch", std::to_string(prefetch)});
        auto dir = tmp.path() / ("host" + std::to_string(hosts.size()));
        fs::create_directories(dir);
        hosts.push_back(start_host(
            dir, {.backend = broker->ep().backend, .processes = 1, .concurrency = concurrency, .extra = extra}));
        ASSERT_TRUE(wait_until([&] { return client->workers().size() == workers; }, 30s)) << hosts.back()->log_text();
    }
    std::string metrics_text() {
        auto r = http->Get("/metrics", auth(reader));
        return r && r->status == 200 ? r->body : std::string();
    }
    void run_tasks(const std::string& handler, const json& payload, int n) {
        std::vector<std::string> ids;
        for (int i = 0; i < n; ++i) {
            auto id = client->submit({task(handler, payload)});
            ASSERT_EQ(id.size(), 1u);
            ids.push_back(id[0]);
        }
        for (const auto& id : ids) {
            auto t = client->wait_final(id, 30s);
            ASSERT_TRUE(t.has_value());
            EXPECT_EQ(t->state, "SUCCEEDED");
        }
    }
    // `promtool check metrics` on `text`: its exit code and what it said.
    std::pair<int, std::string> promtool(const std::string& text, const std::string& name) {
        auto in = tmp.path() / (name + ".prom");
        auto out = tmp.path() / (name + ".promtool");
        { std::ofstream(in) << text; }
        int rc = run_shell("/usr/bin/promtool check metrics < " + in.string() + " > " + out.string() + " 2>&1");
        return {rc, read_file(out)};
    }
};

bool have_prometheus() { return fs::exists("/usr/bin/promtool") && fs::exists("/usr/bin/prometheus"); }

TEST_F(Metrics, BrokerMetricsPassPromtoolAfterRealTraffic) {
    if (!have_prometheus()) {
        GTEST_SKIP() << "prometheus is not installed (scripts/install-deps.sh)";
    }
    start_broker();
    add_host(2, 1, 1);
    run_tasks("echo.echo", {{"x", 1}}, 5);
    client->submit({task("demo.fail", {{"times", 5}})});  // a failure and a retry in the counters
    std::string text;
    ASSERT_TRUE(wait_until(
        [&] {
            text = metrics_text();
            return text.find(R"(taskmill_tasks_succeeded_total{handler="echo.echo"} 5)") != std::string::npos;
        },
        10s))
        << text;
    auto [rc, said] = promtool(text, "broker");
    EXPECT_EQ(rc, 0) << said << "\n" << text;
    EXPECT_EQ(said, "") << "lint warnings:\n" << said;
    EXPECT_EQ(text.find("_ms"), std::string::npos) << "no metric in milliseconds is left";
    EXPECT_NE(text.find("taskmill_build_info{version=\"" TASKMILL_TEST_VERSION "\"} 1"), std::string::npos);
    for (const char* name :
         {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_virtual_memory_bytes",
          "process_open_fds", "process_max_fds", "process_start_time_seconds"}) {
        EXPECT_NE(text.find(std::string("\n") + name + " "), std::string::npos) << name;
    }
    EXPECT_NE(text.find(R"(taskmill_task_run_seconds_bucket{handler="echo.echo",le="0.0001"})"), std::string::npos)
        << "buckets start at 100 µs";
    // The store's room as LMDB measures it: used pages within the map in
    // force (the test broker's map is the default 8 GiB).
    auto value_of = [&](const std::string& name) {
        auto at = text.find("\n" + name + " ");
        return at == std::string::npos ? -1.0 : std::stod(text.substr(at + name.size() + 2));
    };
    const double used = value_of("taskmill_store_used_bytes");
    const double map = value_of("taskmill_store_map_bytes");
    EXPECT_GT(used, 0) << text;
    EXPECT_LT(used, 64.0 * 1024 * 1024) << "a few tasks use pages, not the map";
    EXPECT_GE(map, used);
}

TEST_F(Metrics, OldestReadyAgeIsReportedPerQueue) {
    start_broker();
    add_host(1, 1, 1, {"--queues", "default"});
    client->submit({[] {
        auto t = task("echo.echo");
        t.queue = "parked";  // no worker serves it: stays ready
        return t;
    }()});
    std::string text;
    // The age grows with the wait: past a second, the figure says so.
    ASSERT_TRUE(wait_until(
        [&] {
            text = metrics_text();
            auto at = text.find(R"(taskmill_queue_oldest_ready_age_seconds{queue="parked"} )");
            return at != std::string::npos && std::stod(text.substr(text.find(' ', at) + 1)) >= 1.0;
        },
        10s))
        << text;
    EXPECT_EQ(text.find(R"(taskmill_queue_oldest_ready_age_seconds{queue="default"})"), std::string::npos)
        << "a queue with nothing ready has no age";
}

// Slots are the workers' concurrency; the prefetch (credit for tasks that
// wait for a free slot) is reported apart: 2 hosts x 4 slots = 8, not 10.
TEST_F(Metrics, SlotsAndPrefetchAreReportedApart) {
    start_broker();
    add_host(4, 1, 1);
    add_host(4, 1, 2);
    for (const auto& w : client->workers()) {
        EXPECT_EQ(w.slots, 4u);
        EXPECT_EQ(w.prefetch, 1u);
        EXPECT_EQ(w.running, 0u);
    }
    tp::request rq;
    auto rep = client->call(tp::cmd::stats, rq);
    ASSERT_TRUE(rep && rep->stats);
    EXPECT_EQ(rep->stats->slots, 8u);
    EXPECT_EQ(rep->stats->prefetch, 2u);
    // Each worker's memory comes with its heartbeats (one a second).
    json workers;
    ASSERT_TRUE(wait_until(
        [&] {
            workers = get("/api/v1/workers")["workers"];
            return workers.size() == 2 && workers[0]["rss_bytes"].is_number() && workers[1]["rss_bytes"].is_number();
        },
        10s))
        << workers.dump();
    for (const auto& w : workers) {
        EXPECT_GT(w["rss_bytes"].get<uint64_t>(), 1u << 20) << "a worker process holds more than 1 MiB";
        EXPECT_LT(w["rss_bytes"].get<uint64_t>(), uint64_t{4} << 30) << w.dump();
    }
    auto table = run_cli(tmp.path(), {"--broker", broker->ep().frontend, "workers"});
    EXPECT_NE(table.out.find(" MiB"), std::string::npos) << "MEM column: " << table.out;
    EXPECT_EQ(workers[0]["slots"], 4);
    EXPECT_EQ(workers[0]["prefetch"], 1);
    EXPECT_EQ(workers[0]["running"], 0);
    auto stats = get("/api/v1/stats");
    EXPECT_EQ(stats["slots"], 8) << stats.dump();
    EXPECT_EQ(stats["prefetch"], 2) << stats.dump();
    auto text = metrics_text();
    EXPECT_NE(text.find("\ntaskmill_worker_slots 8\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\ntaskmill_worker_prefetch 2\n"), std::string::npos) << text;
    auto cli = run_cli(tmp.path(), {"--broker", broker->ep().frontend, "stats"});
    EXPECT_NE(cli.out.find("slots: 8"), std::string::npos) << cli.out;
    EXPECT_NE(cli.out.find("prefetch: 2"), std::string::npos) << cli.out;
}

// Tasks waiting in a worker's prefetch are dispatched, not running: with
// one slot busy for a while and more tasks queued behind it on the worker,
// STATS running is 1 while busy (dispatched) is higher.
TEST_F(Metrics, RunningCountsStartedAttemptsOnly) {
    start_broker();
    add_host(1, 4, 1);
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) {
        ids.push_back(client->submit({task("demo.sleep", {{"ms", 1500}})}).at(0));
    }
    tp::request rq;
    std::optional<tp::reply> rep;
    ASSERT_TRUE(wait_until(
        [&] {
            rep = client->call(tp::cmd::stats, rq);
            return rep && rep->stats && rep->stats->busy == 4 && rep->stats->running == 1;
        },
        10s))
        << (rep && rep->stats
                ? std::to_string(rep->stats->busy) + " busy, " + std::to_string(rep->stats->running) + " running"
                : "no STATS");
    auto w = client->workers();
    ASSERT_EQ(w.size(), 1u);
    EXPECT_EQ(w[0].running, 1u);
    EXPECT_EQ(w[0].busy, 4u);
    std::string text;
    ASSERT_TRUE(wait_until(
        [&] {
            text = metrics_text();
            return text.find("\ntaskmill_tasks_running 1\n") != std::string::npos &&
                   text.find("\ntaskmill_tasks_dispatched 4\n") != std::string::npos;
        },
        5s))
        << text;
    tp::request cancel;
    cancel.ids = ids;
    client->call(tp::cmd::cancel, cancel);
}

// Run time counts from the attempt's start in a slot, not from its
// DISPATCH: no-op tasks that waited in the prefetch behind 50 ms sleepers
// still show a run time well under a millisecond or so, while their time
// from dispatch to result is over 50 ms.
TEST_F(Metrics, RunTimeCountsFromTheAttemptStartNotTheDispatch) {
    start_broker();
    add_host(1, 8, 1);
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        ids.push_back(client->submit({task("demo.sleep", {{"ms", 50}})}).at(0));
    }
    for (int i = 0; i < 6; ++i) {
        ids.push_back(client->submit({task("echo.echo", {{"i", i}})}).at(0));
    }
    for (const auto& id : ids) {
        auto t = client->wait_final(id, 30s);
        ASSERT_TRUE(t && t->state == "SUCCEEDED");
    }
    json handlers;
    ASSERT_TRUE(wait_until(
        [&] {
            handlers = get("/api/v1/handlers");
            return handlers.contains("handlers") && handlers["handlers"].size() == 2 &&
                   handlers["handlers"][1].value("succeeded", 0) == 6;
        },
        5s))
        << handlers.dump();
    const auto& echo = handlers["handlers"][1];
    const auto& sleep = handlers["handlers"][0];
    ASSERT_EQ(echo["name"], "echo.echo") << handlers.dump();
    ASSERT_EQ(sleep["name"], "demo.sleep") << handlers.dump();
    EXPECT_LT(echo["run_p95_s"].get<double>(), 0.01) << "a no-op's run time, not its wait in the prefetch";
    EXPECT_GE(sleep["run_p50_s"].get<double>(), 0.05);
    EXPECT_LT(sleep["run_p50_s"].get<double>(), 0.25);
    EXPECT_EQ(echo["submitted"], 6);
    EXPECT_EQ(echo["failed"], 0);
    EXPECT_EQ(echo["retried"], 0);
    EXPECT_EQ(echo["failure_rate"], 0.0);
    EXPECT_EQ(echo["running"], 0);
    EXPECT_GT(echo["rate_per_s"].get<double>(), 0.0);
    EXPECT_TRUE(echo["wait_p50_s"].is_number());
    auto text = metrics_text();
    EXPECT_NE(text.find(R"(taskmill_task_run_seconds_bucket{handler="echo.echo",le="0.01"} 6)"), std::string::npos)
        << text;
}

// The host's own /metrics (--metrics): its workers' figures, read from the
// files they keep, pass promtool, and survive a worker's crash.
TEST_F(Metrics, HostServesMetricsThatPassPromtoolAndSurviveAWorkerCrash) {
    start_broker();
    add_host(2, 1, 1, {"--metrics", "127.0.0.1:0"});
    std::string host_url;
    ASSERT_TRUE(wait_until(
        [&] {
            auto log = hosts[0]->log_text();
            auto at = log.find("metrics on http://");
            if (at == std::string::npos) {
                return false;
            }
            host_url = log.substr(at + 11, log.find('\n', at) - at - 11);
            return true;
        },
        10s))
        << hosts[0]->log_text();
    auto scheme_end = host_url.find("://") + 3;
    auto path_at = host_url.find('/', scheme_end);
    httplib::Client h("http://" + host_url.substr(scheme_end, path_at - scheme_end));
    auto scrape = [&] {
        auto r = h.Get("/metrics");
        return r && r->status == 200 ? r->body : std::string();
    };
    run_tasks("echo.echo", {{"x", 1}}, 4);
    auto text = scrape();
    EXPECT_NE(text.find(R"(taskmill_host_tasks_total{handler="echo.echo",outcome="succeeded"} 4)"), std::string::npos)
        << text;
    EXPECT_NE(text.find(R"(taskmill_host_task_run_seconds_count{handler="echo.echo"} 4)"), std::string::npos) << text;
    EXPECT_NE(text.find("\ntaskmill_host_slots 2\n"), std::string::npos) << text;
    EXPECT_NE(text.find("\ntaskmill_host_worker_starts_total 1\n"), std::string::npos) << text;
    EXPECT_NE(text.find("taskmill_host_worker_resident_memory_bytes{worker="), std::string::npos) << text;
    EXPECT_NE(text.find("\nprocess_resident_memory_bytes "), std::string::npos) << text;
    if (have_prometheus()) {
        auto [rc, said] = promtool(text, "host");
        EXPECT_EQ(rc, 0) << said << "\n" << text;
        EXPECT_EQ(said, "") << "lint warnings:\n" << said;
    }
    // A crash takes the worker's process, not its figures.
    auto before = client->workers();
    ASSERT_EQ(before.size(), 1u);
    ASSERT_EQ(::kill(static_cast<pid_t>(before[0].pid), SIGKILL), 0);
    ASSERT_TRUE(wait_until(
        [&] {
            text = scrape();
            return text.find("\ntaskmill_host_worker_crashes_total 1\n") != std::string::npos &&
                   text.find("\ntaskmill_host_worker_restarts_total 1\n") != std::string::npos;
        },
        20s))
        << text;
    EXPECT_NE(text.find(R"(taskmill_host_tasks_total{handler="echo.echo",outcome="succeeded"} 4)"), std::string::npos)
        << text;
}

TEST_F(Metrics, PrometheusServerScrapesTheBrokerAndAnswersAHistogramQuery) {
    if (!have_prometheus()) {
        GTEST_SKIP() << "prometheus is not installed (scripts/install-deps.sh)";
    }
    start_broker();
    add_host(2, 2, 1);
    const int port = free_port();
    ASSERT_GT(port, 0);
    auto target = url.substr(url.find("://") + 3);
    auto config = tmp.path() / "prometheus.yml";
    std::ofstream(config) << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                          << "scrape_configs:\n  - job_name: taskmill\n    authorization:\n      credentials: "
                          << reader << "\n    static_configs:\n      - targets: ['" << target << "']\n";
    process prom({"/usr/bin/prometheus", "--config.file=" + config.string(),
                  "--storage.tsdb.path=" + (tmp.path() / "tsdb").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                 tmp.path() / "prometheus.log");
    httplib::Client api("127.0.0.1", port);
    auto query = [&](const std::string& promql) {
        auto r = api.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
        return r && r->status == 200 ? json::parse(r->body, nullptr, false) : json::object();
    };
    ASSERT_TRUE(wait_until(
        [&] {
            auto up = query("up");
            return up.value("status", "") == "success" && !up["data"]["result"].empty() &&
                   up["data"]["result"][0]["value"][1] == "1";
        },
        15s))
        << prom.log_text();
    // rate() needs the series before the increase: one task, a scrape that
    // sees it, then the rest.
    run_tasks("echo.echo", {{"x", 1}}, 1);
    ASSERT_TRUE(wait_until(
        [&] {
            auto r = query("taskmill_task_run_seconds_count");
            return r.value("status", "") == "success" && !r["data"]["result"].empty();
        },
        15s))
        << prom.log_text();
    run_tasks("echo.echo", {{"x", 1}}, 10);
    const std::string q =
        "histogram_quantile(0.95, sum by (le) (rate(taskmill_task_run_seconds_bucket{job=\"taskmill\"}[1m])))";
    double p95 = NAN;
    ASSERT_TRUE(wait_until(
        [&] {
            auto r = query(q);
            if (r.value("status", "") != "success" || r["data"]["result"].empty()) {
                return false;
            }
            p95 = std::stod(r["data"]["result"][0]["value"][1].get<std::string>());
            return std::isfinite(p95);
        },
        15s))
        << prom.log_text();
    EXPECT_GT(p95, 0.0);
    EXPECT_LT(p95, 1.0);
    prom.signal(SIGTERM);
    EXPECT_TRUE(prom.wait_exit(10s).has_value());
}

}  // namespace
