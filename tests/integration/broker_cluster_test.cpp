// Three taskmill-broker processes as one cluster on loopback
// (docs/CLUSTER.md): the leader is SIGKILLed again and again under
// submits with keys; after each kill another member leads within seconds,
// holds every task the dead one acknowledged, and a resubmit of the same
// keys makes no second task. The killed member comes back, rebuilds its
// store from the others, and follows. And an operator changes the members
// with the CLI: add, transfer, remove.
#include "cluster_harness.hpp"

#include <iostream>
#include <map>
#include <optional>

#include <gtest/gtest.h>

using namespace taskmill::testing;

TEST(BrokerCluster, LeaderKillsLoseNoAcknowledgedTaskAndKeysMakeResendsSafe) {
    cluster_of_three c;
    std::map<std::string, std::string> acked;  // key -> id
    int next_key = 0;
    for (int kill = 0; kill < 5; ++kill) {
        auto leader = c.leader();
        ASSERT_TRUE(leader) << "no member leads before kill " << kill;
        wire_client w(c.ep(*leader).frontend);
        for (int batch = 0; batch < 10; ++batch) {
            std::vector<taskmill::protocol::task_spec> tasks;
            std::vector<std::string> keys;
            for (int i = 0; i < 20; ++i) {
                auto t = task("nobody.runs");
                t.key = "k" + std::to_string(next_key++);
                keys.push_back(t.key);
                tasks.push_back(t);
            }
            auto ids = w.submit(tasks);
            ASSERT_EQ(ids.size(), keys.size());
            for (std::size_t i = 0; i < ids.size(); ++i) {
                acked[keys[i]] = ids[i];
            }
        }
        const auto t0 = std::chrono::steady_clock::now();
        c.kill(*leader);
        auto next = c.leader();
        ASSERT_TRUE(next) << "no member leads after kill " << kill;
        ASSERT_NE(*next, *leader);
        const auto failover = std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t0);
        EXPECT_LT(failover, 10s) << "kill " << kill;
        std::cout << "kill " << kill << ": member " << *next + 1 << " serves " << failover.count() << " ms later\n";

        wire_client n(c.ep(*next).frontend);
        for (const auto& [key, id] : acked) {
            auto st = n.status(id);
            ASSERT_TRUE(st) << "no reply about " << id;
            EXPECT_EQ(st->state, "QUEUED") << key << " " << id << " after kill " << kill;
        }
        // The same keys again: the tasks they made, not new ones.
        std::vector<taskmill::protocol::task_spec> again;
        for (int i = next_key - 20; i < next_key; ++i) {
            auto t = task("nobody.runs");
            t.key = "k" + std::to_string(i);
            again.push_back(t);
        }
        auto ids = n.submit(again);
        ASSERT_EQ(ids.size(), 20u);
        for (int i = 0; i < 20; ++i) {
            EXPECT_EQ(ids[static_cast<std::size_t>(i)], acked["k" + std::to_string(next_key - 20 + i)]);
        }
        c.start(*leader);  // back, rebuilt from the others; the next round may kill it again
    }
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    wire_client w(c.ep(*leader).frontend);
    auto stats = w.call(taskmill::protocol::cmd::stats, {});
    ASSERT_TRUE(stats && stats->stats);
    EXPECT_EQ(stats->stats->states["QUEUED"], acked.size()) << "one task per key, none twice";

    // What an operator sees of it.
    auto led = run_cli(c.dir(), {"--broker", c.ep(*leader).frontend, "--json", "cluster", "status"});
    ASSERT_EQ(led.exit_code, 0) << led.out << led.err;
    auto j = nlohmann::json::parse(led.out);
    EXPECT_EQ(j["role"], "leader");
    EXPECT_EQ(j["node_id"], *leader + 1);
    EXPECT_EQ(j["members"].size(), 3u);
    const std::size_t other = (*leader + 1) % 3;
    cli_result text;
    wait_until(  // the member last restarted may not have heard from the leader yet
        [&] {
            text = run_cli(c.dir(), {"--broker", c.ep(other).frontend, "cluster", "status"});
            return text.exit_code != 0 || text.out.find("leader: member") != std::string::npos;
        },
        10s);
    ASSERT_EQ(text.exit_code, 0) << text.out << text.err;
    EXPECT_NE(text.out.find("member " + std::to_string(other + 1) + ": follower"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("leader: member " + std::to_string(*leader + 1)), std::string::npos) << text.out;
}

// A rolling change as an operator makes it with the CLI: a fourth member
// joins, leadership moves to it, and the old leader is removed.
TEST(BrokerCluster, OperatorsChangeTheMembersWithTheCli) {
    cluster_of_three c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    wire_client w(c.ep(*leader).frontend);
    auto acked = w.submit({task("nobody.runs"), task("nobody.runs")});
    ASSERT_EQ(acked.size(), 2u);

    const std::string address = "127.0.0.1:" + std::to_string(free_port());
    broker_process fourth(c.dir() / "member4",
                          {"--node-id", "4", "--peers", "4=" + address, "--join", "true", "--durability", "none"},
                          "member4.log");
    const auto at = [&](const std::string& frontend, std::vector<std::string> args) {
        args.insert(args.begin(), {"--broker", frontend, "--timeout", "30"});
        return run_cli(c.dir(), args);
    };

    auto add = at(c.ep(*leader).frontend, {"--json", "cluster", "add", "4=" + address});
    ASSERT_EQ(add.exit_code, 0) << add.out << add.err;
    auto j = nlohmann::json::parse(add.out);
    ASSERT_EQ(j["members"].size(), 4u) << add.out;
    EXPECT_EQ(j["members"][3]["id"], 4);
    EXPECT_EQ(j["members"][3]["kind"], "voter");

    const auto t0 = std::chrono::steady_clock::now();
    auto transfer = at(c.ep(*leader).frontend, {"cluster", "transfer", "4"});
    ASSERT_EQ(transfer.exit_code, 0) << transfer.out << transfer.err;
    std::cout << "transfer to member 4: the CLI answered in "
              << std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t0).count() << " ms\n";
    EXPECT_NE(transfer.out.find("leader: member 4"), std::string::npos) << transfer.out;
    bool serves = false;
    wait_until(
        [&] {
            wire_client f(fourth.ep().frontend);
            auto r = f.call(taskmill::protocol::cmd::stats, {}, 500ms);
            serves = r && r->ok;
            return serves;
        },
        10s);
    ASSERT_TRUE(serves) << "member 4 does not serve after the transfer";

    auto refused = at(fourth.ep().frontend, {"cluster", "remove", "4"});
    EXPECT_NE(refused.exit_code, 0);
    EXPECT_NE(refused.err.find("transfer"), std::string::npos) << refused.err;
    auto unknown = at(fourth.ep().frontend, {"cluster", "remove", "9"});
    EXPECT_NE(unknown.exit_code, 0);
    EXPECT_NE(unknown.err.find("not in the cluster"), std::string::npos) << unknown.err;

    auto remove = at(fourth.ep().frontend, {"--json", "cluster", "remove", std::to_string(*leader + 1)});
    ASSERT_EQ(remove.exit_code, 0) << remove.out << remove.err;
    j = nlohmann::json::parse(remove.out);
    EXPECT_EQ(j["members"].size(), 3u) << remove.out;
    EXPECT_EQ(j["leader_id"], 4);
    c.kill(*leader);

    wire_client n(fourth.ep().frontend);
    for (const auto& id : acked) {
        auto st = n.status(id);
        ASSERT_TRUE(st) << "no reply about " << id;
        EXPECT_EQ(st->state, "QUEUED") << id;
    }
    EXPECT_EQ(n.submit({task("nobody.runs")}).size(), 1u);
}
