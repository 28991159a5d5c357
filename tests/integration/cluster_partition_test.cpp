// A broker cluster across network namespaces (docs/CLUSTER.md), under a
// steady load of submits from the C++ client and two hosts running them:
// - the leader's Raft link is cut while clients can still reach it: it
//   stops acknowledging at once and stops serving within the election
//   timeout, while the other two elect a leader and go on; the link heals
//   and it follows;
// - the leader is SIGKILLed 20 times, a follower once, then every member
//   at once.
// A checker then verifies that every acknowledged submit ends SUCCEEDED,
// that no acknowledged task is lost or made twice, that no two members led
// in the same term (the canonical/raft#386 symptom), and that no result
// changes across a later leader change.
//
// The members live in namespaces m1..m3, each with a Raft link and a
// client link to bridges in a switch namespace; this process (client and
// hosts) reaches the client bridge through a veth of its own. Needs root
// (CAP_SYS_ADMIN, CAP_NET_ADMIN); skips, saying why, elsewhere.
#include "cluster_harness.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cstdlib>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <taskmill/client/client.hpp>

using namespace taskmill::testing;
namespace tc = taskmill::client;
namespace tp = taskmill::protocol;

namespace {

const char* ip_bin() { return ::access("/usr/sbin/ip", X_OK) == 0 ? "/usr/sbin/ip" : "/sbin/ip"; }

int sh(const std::string& cmd) { return std::system((cmd + " >/dev/null 2>&1").c_str()); }

constexpr int election_timeout_ms = 300;

// The namespaces, bridges and links of one test, named after its PID and
// deleted with it (the veth in this namespace goes with its peer).
class split_net {
public:
    split_net() : p_("tmp" + std::to_string(::getpid())) {
        subnet_ = "172." + std::to_string(16 + ::getpid() % 16) + ".";
    }
    ~split_net() {
        for (const auto& ns : created_) {
            sh(std::string(ip_bin()) + " netns del " + ns);
        }
    }
    split_net(const split_net&) = delete;
    split_net& operator=(const split_net&) = delete;

    std::string ns(int member) const { return p_ + "m" + std::to_string(member); }
    std::string raft_address(int member) const { return subnet_ + "1." + std::to_string(member) + ":7000"; }
    std::string frontend(int member) const { return "tcp://" + subnet_ + "2." + std::to_string(member) + ":5555"; }
    std::string backend(int member) const { return "tcp://" + subnet_ + "2." + std::to_string(member) + ":5556"; }

    // Empty on success, else why the network cannot be built.
    std::string build() {
        if (::geteuid() != 0) {
            return "not root";
        }
        const std::string ip = ip_bin();
        const std::string sw = p_ + "sw";
        if (!add_ns(sw)) {
            return "cannot create network namespace " + sw;
        }
        for (const char* br : {"br", "bc"}) {
            if (sh(ip + " -n " + sw + " link add " + p_ + br + " type bridge") != 0 ||
                sh(ip + " -n " + sw + " link set " + p_ + br + " up") != 0) {
                return "cannot create a bridge in " + sw;
            }
        }
        for (int m = 1; m <= 3; ++m) {
            if (!add_ns(ns(m))) {
                return "cannot create network namespace " + ns(m);
            }
            const auto n = std::to_string(m);
            if (!link(ns(m), p_ + "r" + n, p_ + "sr" + n, p_ + "br", subnet_ + "1." + n) ||
                !link(ns(m), p_ + "c" + n, p_ + "sc" + n, p_ + "bc", subnet_ + "2." + n)) {
                return "cannot link member " + n;
            }
        }
        // This process's own way onto the client bridge.
        if (sh(ip + " link add " + p_ + "t type veth peer name " + p_ + "st netns " + sw) != 0 ||
            sh(ip + " addr add " + subnet_ + "2.200/24 dev " + p_ + "t") != 0 ||
            sh(ip + " link set " + p_ + "t up") != 0 ||
            sh(ip + " -n " + sw + " link set " + p_ + "st master " + p_ + "bc up") != 0) {
            return "cannot link this namespace to the client bridge";
        }
        return {};
    }

    // Takes member m's Raft link down (or up): clients still reach it.
    bool set_raft_link(int m, bool up) {
        return sh(std::string(ip_bin()) + " -n " + ns(m) + " link set " + p_ + "r" + std::to_string(m) +
                  (up ? " up" : " down")) == 0;
    }

private:
    bool add_ns(const std::string& ns) {
        if (sh(std::string(ip_bin()) + " netns add " + ns) != 0) {
            return false;
        }
        created_.push_back(ns);
        return sh(std::string(ip_bin()) + " -n " + ns + " link set lo up") == 0;
    }
    // A veth from `ns` (device `dev`, address `addr`/24) to bridge `br`.
    bool link(const std::string& ns, const std::string& dev, const std::string& peer, const std::string& br,
              const std::string& addr) {
        const std::string ip = ip_bin();
        const std::string sw = p_ + "sw";
        return sh(ip + " link add " + dev + " netns " + ns + " type veth peer name " + peer + " netns " + sw) == 0 &&
               sh(ip + " -n " + ns + " addr add " + addr + "/24 dev " + dev) == 0 &&
               sh(ip + " -n " + ns + " link set " + dev + " up") == 0 &&
               sh(ip + " -n " + sw + " link set " + peer + " master " + br + " up") == 0;
    }

    std::string p_;
    std::string subnet_;
    std::vector<std::string> created_;
};

class ClusterPartition : public ::testing::Test {
protected:
    temp_dir tmp;
    split_net net;
    std::array<std::unique_ptr<process>, 4> members;  // by node id; [0] unused
    std::array<int, 4> starts{};

    void SetUp() override {
        if (auto why = net.build(); !why.empty()) {
            GTEST_SKIP() << "network namespaces unavailable (" << why << "): partition test skipped";
        }
    }

    std::string peers() const {
        return "1=" + net.raft_address(1) + ",2=" + net.raft_address(2) + ",3=" + net.raft_address(3);
    }
    std::string frontends() const { return net.frontend(1) + "," + net.frontend(2) + "," + net.frontend(3); }
    std::string backends() const { return net.backend(1) + "," + net.backend(2) + "," + net.backend(3); }

    // Member m in its namespace; each start logs to a file of its own.
    void start(int m) {
        const auto n = std::to_string(m);
        members[static_cast<std::size_t>(m)] = std::make_unique<process>(
            std::vector<std::string>{ip_bin(),
                                     "netns",
                                     "exec",
                                     net.ns(m),
                                     build_paths::broker().string(),
                                     "--data-dir",
                                     (tmp.path() / ("m" + n)).string(),
                                     "--frontend",
                                     net.frontend(m),
                                     "--backend",
                                     net.backend(m),
                                     "--events",
                                     "",
                                     "--durability",
                                     "none",
                                     "--node-id",
                                     n,
                                     "--peers",
                                     peers(),
                                     "--election-timeout-ms",
                                     std::to_string(election_timeout_ms),
                                     "--heartbeat-ms",
                                     "300"},
            tmp.path() / ("m" + n + "-" + std::to_string(++starts[static_cast<std::size_t>(m)]) + ".log"));
    }
    void kill(int m) {
        auto& p = members[static_cast<std::size_t>(m)];
        p->signal(SIGKILL);
        p->wait_exit(10s);
        p.reset();
    }

    // STATS at member m: true when it serves.
    bool serves(int m, ms timeout = 500ms) {
        wire_client w(net.frontend(m));
        auto r = w.call(tp::cmd::stats, {}, timeout);
        return r && r->ok;
    }
    std::optional<int> leader(ms limit = 20s) {
        std::optional<int> found;
        wait_until(
            [&] {
                for (int m = 1; m <= 3; ++m) {
                    if (members[static_cast<std::size_t>(m)] && serves(m)) {
                        found = m;
                        return true;
                    }
                }
                return false;
            },
            limit);
        return found;
    }

    // Every "member X leads (term T)" of every member's logs: term -> members.
    std::map<uint64_t, std::set<int>> leaders_by_term() {
        static const std::regex leads(R"(cluster: member (\d+) leads \(term (\d+)\))");
        std::map<uint64_t, std::set<int>> out;
        for (const auto& f : fs::directory_iterator(tmp.path())) {
            if (f.path().extension() != ".log" || f.path().filename().string()[0] != 'm') {
                continue;
            }
            const auto text = read_file(f.path());
            for (std::sregex_iterator it(text.begin(), text.end(), leads), end; it != end; ++it) {
                out[std::stoull((*it)[2])].insert(std::stoi((*it)[1]));
            }
        }
        return out;
    }
};

}  // namespace

TEST_F(ClusterPartition, NothingAcknowledgedIsLostThroughPartitionsKillsAndAFullRestart) {
    for (int m = 1; m <= 3; ++m) {
        start(m);
    }
    auto first = leader();
    ASSERT_TRUE(first) << "no member leads";
    auto host = start_host(tmp.path(), {.backend = backends(), .concurrency = 2, .extra = {"--failover-ms", "200"}});
    auto host2 = start_host(tmp.path(), {.backend = backends(), .concurrency = 2, .extra = {"--failover-ms", "200"}},
                            "host2.log");
    tc::client_options o;
    o.endpoint = frontends();
    o.request_timeout = 30s;
    tc::client cl(o);
    ASSERT_TRUE(wait_until(
        [&] {
            auto w = cl.workers();
            return w && w->size() >= 2;
        },
        30s))
        << host->log_text() << host2->log_text();
    producer p(cl, 5, 2);
    auto grows = [&](std::size_t by) {
        const auto from = p.acked();
        return wait_until([&] { return p.acked() >= from + by; }, 60s);
    };
    ASSERT_TRUE(grows(50));

    // 1. The leader's Raft link goes down; its clients still reach it.
    std::map<std::string, std::string> acked_by_cut_leader;  // key -> id
    std::optional<std::chrono::steady_clock::time_point> cut_at, last_ack;
    int direct_sent = 0;  // keyed submits sent straight to the first leader
    {
        wire_client direct(net.frontend(*first));
        auto submit_one = [&] {
            auto t = task("demo.sleep", {{"ms", 2}});
            t.key = "direct-" + std::to_string(direct_sent++);
            tp::request r;
            r.tasks = {t};
            auto rep = direct.call(tp::cmd::submit, r, 300ms);
            if (rep && rep->ok && rep->ids.size() == 1) {
                acked_by_cut_leader[t.key] = rep->ids[0];
                last_ack = std::chrono::steady_clock::now();
            }
        };
        for (int i = 0; i < 10; ++i) {
            submit_one();
        }
        ASSERT_FALSE(acked_by_cut_leader.empty()) << "the leader acknowledged nothing before the cut";
        ASSERT_TRUE(net.set_raft_link(*first, false));
        cut_at = std::chrono::steady_clock::now();
        const auto before = acked_by_cut_leader.size();
        // It keeps being asked; what it acknowledged after the cut must have
        // committed before it, so acknowledgements stop at once.
        bool refused = false;
        wait_until(
            [&] {
                submit_one();
                refused = !serves(*first, 300ms);
                return refused;
            },
            10s);
        EXPECT_TRUE(refused) << "the cut-off leader still serves";
        const auto stopped_after = std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - *cut_at);
        std::cout << "cut-off leader stopped serving " << stopped_after.count() << " ms after the cut; "
                  << acked_by_cut_leader.size() - before << " acknowledgement(s) after the cut\n";
        EXPECT_LT(stopped_after, ms(election_timeout_ms * 2 + 2000))
            << "the minority side must stop within about the election timeout";
        if (acked_by_cut_leader.size() > before) {
            EXPECT_LT(*last_ack - *cut_at, ms(election_timeout_ms)) << "acknowledged after the election timeout";
        }
    }
    auto second = leader();
    ASSERT_TRUE(second) << "the majority did not elect a leader";
    ASSERT_NE(*second, *first);
    ASSERT_TRUE(grows(50)) << "the client did not follow the majority's leader";
    ASSERT_TRUE(net.set_raft_link(*first, true));
    ASSERT_TRUE(wait_until(
        [&] {
            wire_client w(net.frontend(*first));
            auto r = w.call(tp::cmd::stats, {}, 500ms);
            return r && !r->ok && r->leader == net.frontend(*second);
        },
        20s))
        << "the healed member does not follow";

    // 2. The leader dies 20 times, a follower once; each comes back.
    for (int kill_round = 0; kill_round < 20; ++kill_round) {
        auto l = leader();
        ASSERT_TRUE(l);
        kill(*l);
        ASSERT_TRUE(leader()) << "no leader after kill " << kill_round;
        ASSERT_TRUE(grows(20)) << "submits stalled after kill " << kill_round;
        start(*l);
    }
    {
        auto l = leader();
        ASSERT_TRUE(l);
        const int follower = *l % 3 + 1;
        kill(follower);
        ASSERT_TRUE(grows(50)) << "submits stalled with a follower down";
        start(follower);
    }

    // 3. Every member at once.
    for (int m = 1; m <= 3; ++m) {
        kill(m);
    }
    for (int m = 1; m <= 3; ++m) {
        start(m);
    }
    ASSERT_TRUE(leader()) << "no leader after a full restart";
    ASSERT_TRUE(grows(50)) << "submits stalled after a full restart";
    p.stop();

    // The checker.
    EXPECT_TRUE(p.failures().empty()) << p.failures().size() << " submits failed, the first: " << p.failures().front();
    std::map<std::string, std::string> results;  // id -> result bytes
    for (const auto& h : p.handles()) {
        auto t = h.get(60s);
        ASSERT_TRUE(t) << h.id() << ": " << t.error().message;
        ASSERT_EQ(t->state, "SUCCEEDED") << h.id();
        results[h.id()] = t->result.value_or("");
    }
    for (const auto& [key, id] : acked_by_cut_leader) {
        auto t = cl.wait(id, 60s);
        ASSERT_TRUE(t) << key << " " << id << ", acknowledged by the leader before its cut: " << t.error().message;
        EXPECT_EQ(t->state, "SUCCEEDED") << key;
        results[id] = t->result.value_or("");
    }
    auto stats = cl.stats();
    ASSERT_TRUE(stats) << stats.error().message;
    uint64_t tasks = 0;
    for (const auto& [state, n] : stats->states) {
        tasks += n;
    }
    std::set<std::string> distinct;
    for (const auto& h : p.handles()) {
        distinct.insert(h.id());
    }
    EXPECT_EQ(distinct.size(), p.handles().size()) << "two acknowledged submits returned one task";
    EXPECT_GE(tasks, results.size()) << "an acknowledged task is missing";
    // At most: the client's tasks, and every keyed submit sent to the cut
    // leader (one may have committed with its answer lost in the cut).
    EXPECT_LE(tasks, p.handles().size() + static_cast<std::size_t>(direct_sent))
        << "the client's resends made a task twice";
    for (const auto& [term, who] : leaders_by_term()) {
        EXPECT_EQ(who.size(), 1u) << "two members led term " << term;
    }

    // Results do not change across another leader change.
    auto l = leader();
    ASSERT_TRUE(l);
    kill(*l);
    ASSERT_TRUE(leader());
    for (const auto& [id, result] : results) {
        auto t = cl.status(id);
        ASSERT_TRUE(t) << id << ": " << t.error().message;
        EXPECT_EQ(t->state, "SUCCEEDED") << id;
        EXPECT_EQ(t->result.value_or(""), result) << id << ": its result changed";
    }
}
