// Clients and hosts given every member of a cluster (docs/CLUSTER.md)
// follow its leader by themselves: the leader is SIGKILLed under a steady
// stream of submits from the C++ client and not one call fails, no task is
// made twice, and every task ends SUCCEEDED on a host that moved with the
// leader. A task running on a host when its leader dies stays with that
// host: the new leader takes it back from the host's HELLO, lease and all,
// rather than running it a second time.
#include "cluster_harness.hpp"

#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>
#include <taskmill/client/client.hpp>

using namespace taskmill::testing;
namespace tc = taskmill::client;

namespace {

tc::client_options cluster_client(const cluster_of_three& c) {
    tc::client_options o;
    o.endpoint = c.frontends();
    o.request_timeout = 30s;  // a failover takes about a second; the call waits through it
    return o;
}

host_options cluster_host(const cluster_of_three& c) {
    host_options h;
    h.backend = c.backends();
    h.concurrency = 4;
    h.extra = {"--failover-ms", "200"};
    return h;
}

// Every handle's task SUCCEEDED, and the broker holds those tasks and no
// others: none lost, none made twice by a resent SUBMIT.
void expect_each_succeeded_once(tc::client& cl, const std::vector<tc::task_handle>& handles) {
    for (const auto& h : handles) {
        auto t = h.get(60s);
        ASSERT_TRUE(t) << h.id() << ": " << t.error().message;
        EXPECT_EQ(t->state, "SUCCEEDED") << h.id();
    }
    auto stats = cl.stats();
    ASSERT_TRUE(stats) << stats.error().message;
    uint64_t tasks = 0;
    for (const auto& [state, n] : stats->states) {
        tasks += n;
    }
    EXPECT_EQ(tasks, handles.size()) << "a task was lost or made twice";
}

}  // namespace

TEST(ClusterFailover, ClientsAndHostsFollowTheLeaderAndNothingIsLostOrMadeTwice) {
    cluster_of_three c;
    ASSERT_TRUE(c.leader()) << "no member leads";
    auto host = start_host(c.dir(), cluster_host(c));
    tc::client cl(cluster_client(c));
    ASSERT_TRUE(some_worker(cl)) << host->log_text();

    producer p(cl, 10, 5);
    for (int kill = 0; kill < 3; ++kill) {
        const auto before = p.acked();
        ASSERT_TRUE(wait_until([&] { return p.acked() >= before + 100; }, 60s))
            << "submits stalled before kill " << kill;
        auto leader = c.leader();
        ASSERT_TRUE(leader) << "no member leads before kill " << kill;
        c.kill(*leader);
        auto next = c.leader();
        ASSERT_TRUE(next) << "no member leads after kill " << kill;
        const auto at_failover = p.acked();
        ASSERT_TRUE(wait_until([&] { return p.acked() >= at_failover + 100; }, 60s))
            << "the client did not follow the new leader after kill " << kill;
        c.start(*leader);
    }
    p.stop();
    EXPECT_TRUE(p.failures().empty()) << p.failures().size() << " submits failed, the first: " << p.failures().front();

    expect_each_succeeded_once(cl, p.handles());

    // The CLI takes the same list and finds the leader.
    auto cli = run_cli(c.dir(), {"--broker", c.frontends(), "--json", "stats"});
    EXPECT_EQ(cli.exit_code, 0) << cli.out << cli.err;
}

TEST(ClusterFailover, ATaskRunningWhenItsLeaderDiesStaysWithItsHost) {
    cluster_of_three c;
    ASSERT_TRUE(c.leader()) << "no member leads";
    auto host = start_host(c.dir(), cluster_host(c));
    tc::client cl(cluster_client(c));
    ASSERT_TRUE(some_worker(cl)) << host->log_text();

    tc::task_options slow;
    slow.handler = "demo.sleep";
    slow.payload = nlohmann::json{{"ms", 4000}};
    auto h = cl.submit(slow);
    ASSERT_TRUE(h) << h.error().message;
    ASSERT_TRUE(wait_until(
        [&] {
            auto t = h->status();
            return t && t->state == "RUNNING";
        },
        30s));
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    c.kill(*leader);

    auto t = h->get(60s);
    ASSERT_TRUE(t) << t.error().message << "\n" << host->log_text();
    EXPECT_EQ(t->state, "SUCCEEDED");
    EXPECT_EQ(t->attempts, 1u) << "the task ran again elsewhere instead of staying with its host\n" << host->log_text();
    auto stats = cl.stats();
    ASSERT_TRUE(stats) << stats.error().message;
    EXPECT_GE(stats->counters["kept_on_rejoin"], 1u);
}

TEST(ClusterFailover, EventsFollowTheLeaderWhenEveryMemberIsSubscribed) {
    cluster_of_three c;
    auto first = c.leader();
    ASSERT_TRUE(first) << "no member leads";
    const std::string all = c.ep(0).events + "," + c.ep(1).events + "," + c.ep(2).events;
    process events({build_paths::cli().string(), "--events", all, "events", "--type", "task.queued", "--count", "2"},
                   c.dir() / "events.out");
    tc::client cl(cluster_client(c));
    auto queued_lines = [&] {
        auto text = events.log_text();
        return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
    };
    tc::task_options t;
    t.handler = "nobody.runs";
    // Until the subscriptions are up, events go nowhere: submit until one is seen.
    ASSERT_TRUE(wait_until(
        [&] {
            auto h = cl.submit(t);
            return h && wait_until([&] { return queued_lines() >= 1; }, 200ms);
        },
        20s))
        << events.log_text();
    c.kill(*first);
    auto after = cl.submit(t);  // waits through the failover
    ASSERT_TRUE(after) << after.error().message;
    auto st = events.wait_exit(20s);
    ASSERT_TRUE(st) << "the second event never came: " << events.log_text();
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 0) << events.log_text();
    EXPECT_NE(events.log_text().find(after->id()), std::string::npos)
        << "the new leader's event did not reach the subscriber: " << events.log_text();
}

TEST(ClusterFailover, ASlowDiskOnOneMemberLosesNothing) {
    const char* asan = std::getenv("ASAN_OPTIONS");
    const std::string asan_options = (asan != nullptr && *asan != '\0' ? std::string(asan) + ":" : std::string()) +
                                     "verify_asan_link_order=0";  // the preload comes before ASan's runtime
    cluster_of_three c({}, {std::vector<std::string>{"LD_PRELOAD=" TASKMILL_SLOW_DISK_LIB, "TASKMILL_SLOW_DISK_MS=100",
                                                     "ASAN_OPTIONS=" + asan_options},
                            {},
                            {}});
    ASSERT_TRUE(c.leader()) << "no member leads";
    EXPECT_NE(read_file(c.dir() / "member1.log").find("slow-disk: writes of pid"), std::string::npos)
        << "member 1's disk is not slowed: " << read_file(c.dir() / "member1.log");
    auto host = start_host(c.dir(), cluster_host(c));
    tc::client cl(cluster_client(c));
    ASSERT_TRUE(some_worker(cl)) << host->log_text();
    producer p(cl, 10, 2);
    auto grows = [&](std::size_t by) {
        const auto from = p.acked();
        return wait_until([&] { return p.acked() >= from + by; }, 60s);
    };
    ASSERT_TRUE(grows(100)) << "submits stalled with one slow disk";
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    c.kill(*leader);  // the slow member leads now, or follows a leader that must not wait for it
    ASSERT_TRUE(c.leader()) << "no member leads after the kill";
    ASSERT_TRUE(grows(100)) << "submits stalled after the kill";
    c.start(*leader);
    ASSERT_TRUE(grows(100)) << "submits stalled after the member came back";
    p.stop();

    EXPECT_TRUE(p.failures().empty()) << p.failures().size() << " submits failed, the first: " << p.failures().front();
    expect_each_succeeded_once(cl, p.handles());
}
