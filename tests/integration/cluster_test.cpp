// A cluster on one machine: Linux network namespaces joined by veth links,
// the broker in one, two hosts in two others, the client (the taskmill CLI)
// in a fourth. Cutting a host's link makes the broker requeue its tasks
// after the liveness window; the host rejoins when the link comes back.
// Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); skips, saying why, elsewhere.
#include "harness.hpp"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

using namespace taskmill::testing;

namespace {

const char* ip_bin() { return ::access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip"; }

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

// The namespaces and links of one test; names carry the test's PID so that
// parallel runs never touch each other's, and only they are deleted.
class netns_cluster {
public:
    netns_cluster() : prefix_("tmc" + std::to_string(::getpid())) {
        // A private /16 per PID, so concurrent runs never share a subnet.
        subnet_ = "10." + std::to_string(100 + ::getpid() % 100) + ".";
    }
    ~netns_cluster() {
        for (const auto& ns : created_) {
            sh(std::string(ip_bin()) + " netns del " + ns);
        }
    }
    netns_cluster(const netns_cluster&) = delete;
    netns_cluster& operator=(const netns_cluster&) = delete;

    std::string ns(const std::string& role) const { return prefix_ + role; }
    // Device in `role`'s namespace of the link to the broker.
    std::string dev(const std::string& role) const { return prefix_ + role + "0"; }
    std::string broker_ip(int link) const { return subnet_ + std::to_string(link) + ".1"; }

    // Empty on success, else why the cluster cannot be built.
    std::string build() {
        std::string ip = ip_bin();
        if (::geteuid() != 0) return "not root";
        for (const auto* role : {"b", "h1", "h2", "c"}) {
            if (sh(ip + " netns add " + ns(role)) != 0) return "cannot create network namespace " + ns(role);
            created_.push_back(ns(role));
            if (sh(ip + " -n " + ns(role) + " link set lo up") != 0) return "cannot bring up lo in " + ns(role);
        }
        int link = 1;
        for (const auto* role : {"h1", "h2", "c"}) {
            auto peer = prefix_ + "b" + std::to_string(link);
            auto mine = dev(role);
            auto net = subnet_ + std::to_string(link);
            if (sh(ip + " link add " + peer + " netns " + ns("b") + " type veth peer name " + mine + " netns " +
                   ns(role)) != 0) {
                return "cannot create veth pair " + peer + "/" + mine;
            }
            if (sh(ip + " -n " + ns("b") + " addr add " + net + ".1/24 dev " + peer) != 0 ||
                sh(ip + " -n " + ns(role) + " addr add " + net + ".2/24 dev " + mine) != 0 ||
                sh(ip + " -n " + ns("b") + " link set " + peer + " up") != 0 ||
                sh(ip + " -n " + ns(role) + " link set " + mine + " up") != 0) {
                return "cannot configure link " + net + ".0/24";
            }
            ++link;
        }
        return {};
    }

    bool set_link(const std::string& role, bool up) {
        return sh(std::string(ip_bin()) + " -n " + ns(role) + " link set " + dev(role) + (up ? " up" : " down")) == 0;
    }

private:
    std::string prefix_;
    std::string subnet_;
    std::vector<std::string> created_;
};

std::vector<std::string> in_ns(const std::string& ns, std::vector<std::string> argv) {
    std::vector<std::string> all{ip_bin(), "netns", "exec", ns};
    all.insert(all.end(), argv.begin(), argv.end());
    return all;
}

int parent_of(int64_t pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
    std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    auto close = stat.rfind(')');
    if (close == std::string::npos) return -1;
    std::istringstream rest(stat.substr(close + 2));
    std::string state;
    int ppid = -1;
    rest >> state >> ppid;
    return ppid;
}

class Cluster : public ::testing::Test {
protected:
    temp_dir tmp;
    netns_cluster net;
    std::unique_ptr<process> broker;
    std::unique_ptr<process> host1;
    std::unique_ptr<process> host2;
    int cli_runs = 0;

    void SetUp() override {
        if (auto why = net.build(); !why.empty()) {
            GTEST_SKIP() << "network namespaces unavailable (" << why << "): cluster test skipped";
        }
    }

    std::unique_ptr<process> start_host_in(const std::string& role, int link) {
        auto run_dir = tmp.path() / (role + ".run");
        fs::create_directories(run_dir);
        return std::make_unique<process>(
            in_ns(net.ns(role), {build_paths::host().string(), "--broker", "tcp://" + net.broker_ip(link) + ":5556",
                                 "--plugins", build_paths::plugins().string(), "--processes", "1", "--concurrency", "2",
                                 "--run-dir", run_dir.string(), "--watch=false"}),
            tmp.path() / (role + ".log"));
    }

    // The CLI in the client namespace; JSON output parsed (null on failure).
    nlohmann::json cli(std::vector<std::string> args) {
        std::vector<std::string> argv{
            build_paths::cli().string(), "--broker", "tcp://" + net.broker_ip(3) + ":5555", "--timeout", "3", "--json"};
        argv.insert(argv.end(), args.begin(), args.end());
        auto log = tmp.path() / ("cli-" + std::to_string(cli_runs++) + ".out");
        process p(in_ns(net.ns("c"), argv), log);
        auto st = p.wait_exit(30s);
        if (!st || !WIFEXITED(*st) || WEXITSTATUS(*st) != 0) return nullptr;
        std::istringstream lines(p.log_text());
        nlohmann::json last;
        for (std::string line; std::getline(lines, line);) {
            auto j = nlohmann::json::parse(line, nullptr, false);
            if (!j.is_discarded()) last = j;
        }
        return last;
    }

    std::size_t worker_count() {
        auto w = cli({"workers"});
        return w.is_array() ? w.size() : 0;
    }

    std::string submit(const std::string& handler, const nlohmann::json& payload) {
        auto r = cli({"submit", handler, "--payload", payload.dump()});
        if (r.is_object() && r.contains("id")) return r["id"];
        if (r.is_string()) return r;
        return {};
    }

    nlohmann::json status(const std::string& id) { return cli({"status", id}); }
};

TEST_F(Cluster, TasksFlowAcrossAndACutHostIsRequeuedThenRejoins) {
    broker = std::make_unique<process>(
        in_ns(net.ns("b"), {build_paths::broker().string(), "--data-dir", (tmp.path() / "data").string(), "--frontend",
                            "tcp://*:5555", "--backend", "tcp://*:5556", "--events", "", "--durability", "none",
                            "--heartbeat-ms", "200", "--liveness-ms", "1500"}),
        tmp.path() / "broker.log");
    host1 = start_host_in("h1", 1);
    host2 = start_host_in("h2", 2);
    ASSERT_TRUE(wait_until([&] { return worker_count() == 2; }, 30s))
        << broker->log_text() << host1->log_text() << host2->log_text();

    // Tasks flow from the client namespace through the broker to both hosts.
    std::vector<std::string> ids;
    for (int i = 0; i < 8; ++i) {
        ids.push_back(submit("demo.sleep", {{"ms", 150}}));
        ASSERT_FALSE(ids.back().empty()) << "submit failed";
    }
    std::set<std::string> ran_on;
    for (const auto& id : ids) {
        nlohmann::json t;
        ASSERT_TRUE(wait_until(
            [&] {
                t = status(id);
                return t.is_object() && t["state"] == "SUCCEEDED";
            },
            30s))
            << id << " " << t.dump();
        ran_on.insert(t["worker"].get<std::string>());
    }
    EXPECT_EQ(ran_on.size(), 2u) << "every task ran on one host";

    // Long tasks fill both hosts; then host 1's link goes down.
    std::vector<std::string> slow;
    for (int i = 0; i < 4; ++i) {
        // Long enough that none ends before the cut, even on a slow (sanitized) build.
        slow.push_back(submit("demo.sleep", {{"ms", 8000}}));
        ASSERT_FALSE(slow.back().empty());
    }
    std::map<std::string, std::string> first_worker;
    ASSERT_TRUE(wait_until(
        [&] {
            for (const auto& id : slow) {
                auto t = status(id);
                if (!t.is_object() || t["state"] != "RUNNING") return false;
                first_worker[id] = t["worker"].get<std::string>();
            }
            return true;
        },
        20s));
    std::set<std::string> on_host1;
    for (const auto& [id, w] : first_worker) {
        auto pid = std::stoll(w.substr(w.rfind(':') + 1));
        if (parent_of(pid) == host1->pid()) on_host1.insert(id);
    }
    ASSERT_EQ(on_host1.size(), 2u) << "credit should put two tasks on each host";
    ASSERT_TRUE(net.set_link("h1", false));
    // After the liveness window the broker drops host 1's worker...
    EXPECT_TRUE(wait_until([&] { return worker_count() == 1; }, 15s)) << broker->log_text();
    // ... and its tasks finish on host 2 instead.
    for (const auto& id : slow) {
        nlohmann::json t;
        ASSERT_TRUE(wait_until(
            [&] {
                t = status(id);
                return t.is_object() && t["state"] == "SUCCEEDED";
            },
            40s))
            << id << " " << t.dump() << broker->log_text();
        if (on_host1.count(id) != 0) {
            EXPECT_NE(t["worker"], first_worker[id]) << "task " << id << " was not requeued";
            EXPECT_EQ(t["attempts"], 2);
        }
    }
    EXPECT_NE(broker->log_text().find("requeued=2"), std::string::npos) << broker->log_text();

    // The link comes back: host 1 rejoins and takes work again.
    ASSERT_TRUE(net.set_link("h1", true));
    EXPECT_TRUE(wait_until([&] { return worker_count() == 2; }, 60s)) << host1->log_text();
    auto after = submit("echo.echo", {{"back", true}});
    ASSERT_TRUE(wait_until(
        [&] {
            auto t = status(after);
            return t.is_object() && t["state"] == "SUCCEEDED";
        },
        30s));

    for (auto* p : {host1.get(), host2.get(), broker.get()}) {
        p->signal(SIGTERM);
        EXPECT_TRUE(p->wait_exit(30s).has_value());
    }
}

}  // namespace
