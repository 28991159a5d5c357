// A cluster's figures on every member's /metrics (docs/CLUSTER.md): which
// member leads, the term, leader changes, log indexes and, on the leader,
// each member's replication lag; a follower's HTTP API answers 421 naming
// the leader's. A real Prometheus server scraping the
// three sees exactly one leader, and a new one after the leader is killed.
#include "cluster_harness.hpp"

#include <cstdlib>
#include <fstream>

#include <gtest/gtest.h>
#include <httplib.h>

using namespace taskmill::testing;
using nlohmann::json;

namespace {

std::string metrics_of(const std::string& url) {
    httplib::Client h(url);
    auto r = h.Get("/metrics");
    return r && r->status == 200 ? r->body : std::string();
}

// The value of the first sample of `series` (name and labels as written).
double value_of(const std::string& text, const std::string& series) {
    auto at = text.find("\n" + series + " ");
    return at == std::string::npos ? -1.0 : std::stod(text.substr(at + series.size() + 2));
}

bool have_prometheus() { return fs::exists("/usr/bin/promtool") && fs::exists("/usr/bin/prometheus"); }

}  // namespace

TEST(ClusterMetrics, EveryMemberShowsTheClusterAndTheLeaderShowsLag) {
    cluster_of_three c({"--http", "127.0.0.1:0", "--http-anonymous", "read"});
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    const std::string me = std::to_string(*leader + 1);
    std::string text;
    ASSERT_TRUE(wait_until(
        [&] {
            text = metrics_of(c.http_url(*leader));
            return value_of(text, "taskmill_cluster_leader{node_id=\"" + me + "\"}") == 1.0 &&
                   text.find("taskmill_cluster_replication_lag_entries{member=") != std::string::npos;
        },
        10s))
        << text;
    const double term = value_of(text, "taskmill_cluster_term");
    EXPECT_GE(term, 1.0);
    EXPECT_GE(value_of(text, "taskmill_cluster_leader_changes_total"), 1.0);
    EXPECT_GE(value_of(text, "taskmill_cluster_commit_index"), 1.0);
    for (std::size_t i = 0; i < 3; ++i) {
        if (i == *leader) {
            continue;
        }
        const std::string id = std::to_string(i + 1);
        EXPECT_GE(value_of(text, "taskmill_cluster_replication_lag_entries{member=\"" + id + "\"}"), 0.0) << text;
        std::string other;
        ASSERT_TRUE(wait_until(
            [&] {
                other = metrics_of(c.http_url(i));
                return value_of(other, "taskmill_cluster_term") == term;
            },
            10s))
            << other;
        EXPECT_EQ(value_of(other, "taskmill_cluster_leader{node_id=\"" + id + "\"}"), 0.0) << other;
        EXPECT_EQ(other.find("taskmill_cluster_replication_lag_entries{"), std::string::npos)
            << "only the leader knows what others hold";
        // Its HTTP API sends clients to the leader's.
        httplib::Client h(c.http_url(i));
        auto r = h.Get("/api/v1/stats");
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 421) << r->body;
        auto body = json::parse(r->body, nullptr, false);
        EXPECT_EQ(body.value("error_code", ""), "not_leader") << r->body;
        EXPECT_EQ(body.value("leader", ""), c.http_url(*leader)) << r->body;
    }
    if (have_prometheus()) {
        auto in = c.dir() / "leader.prom";
        std::ofstream(in) << text;
        EXPECT_EQ(run_shell("/usr/bin/promtool check metrics < " + in.string() + " > /dev/null 2>&1"), 0) << text;
    }
}

TEST(ClusterMetrics, PrometheusSeesOneLeaderBeforeAndAfterAKill) {
    if (!have_prometheus()) {
        GTEST_SKIP() << "prometheus is not installed (scripts/install-deps.sh)";
    }
    cluster_of_three c({"--http", "127.0.0.1:0", "--http-anonymous", "read"});
    auto first = c.leader();
    ASSERT_TRUE(first);
    const int port = free_port();
    auto config = c.dir() / "prometheus.yml";
    {
        std::ofstream out(config);
        out << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            << "scrape_configs:\n  - job_name: taskmill\n    static_configs:\n      - targets: [";
        for (std::size_t i = 0; i < 3; ++i) {
            const auto url = c.http_url(i);
            out << (i > 0 ? ", " : "") << "'" << url.substr(url.find("://") + 3) << "'";
        }
        out << "]\n";
    }
    process prom({"/usr/bin/prometheus", "--config.file=" + config.string(),
                  "--storage.tsdb.path=" + (c.dir() / "tsdb").string(),
                  "--web.listen-address=127.0.0.1:" + std::to_string(port)},
                 c.dir() / "prometheus.log");
    httplib::Client api("127.0.0.1", port);
    // The one sample of a query that sums to one series, or -1.
    auto scalar = [&](const std::string& promql) {
        auto r = api.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
        auto j = r && r->status == 200 ? json::parse(r->body, nullptr, false) : json::object();
        if (j.value("status", "") != "success" || j["data"]["result"].size() != 1) {
            return -1.0;
        }
        return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
    };
    const std::string leaders = "sum(taskmill_cluster_leader)";
    const std::string first_leads = "sum(taskmill_cluster_leader{node_id=\"" + std::to_string(*first + 1) + "\"})";
    ASSERT_TRUE(wait_until([&] { return scalar("count(up == 1)") == 3 && scalar(first_leads) == 1; }, 20s))
        << prom.log_text();
    EXPECT_EQ(scalar(leaders), 1.0);

    c.kill(*first);
    auto next = c.leader();
    ASSERT_TRUE(next);
    const std::string next_leads = "sum(taskmill_cluster_leader{node_id=\"" + std::to_string(*next + 1) + "\"})";
    ASSERT_TRUE(wait_until([&] { return scalar("count(up == 1)") == 2 && scalar(next_leads) == 1; }, 20s))
        << prom.log_text();
    EXPECT_EQ(scalar(leaders), 1.0) << "the dead leader's series went stale; one member leads";
    EXPECT_GE(scalar("max(taskmill_cluster_leader_changes_total)"), 2.0) << "the survivors saw two leaders";
    prom.signal(SIGTERM);
    prom.wait_exit(10s);
}
