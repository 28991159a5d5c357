// Three brokers as one cluster (docs/CLUSTER.md), in this process: each
// with its own store, their Raft members talking TCP on loopback, their
// clients on inproc endpoints. Only the leader serves; the others answer
// not_leader naming it; what the leader acknowledged outlives it.

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "broker_harness.hpp"

using namespace tmtest;
using namespace std::chrono_literals;

namespace {

class three_brokers {
public:
    three_brokers() {
        std::vector<tb::cluster_member> peers;
        for (uint64_t id = 1; id <= 3; ++id) {
            peers.push_back({id, "127.0.0.1:" + std::to_string(free_port())});
        }
        for (std::size_t i = 0; i < 3; ++i) {
            cfgs_[i] = test_config(dirs_[i].path.string());
            cfgs_[i].cluster.node_id = i + 1;
            cfgs_[i].cluster.raft_address = peers[i].address;
            cfgs_[i].cluster.peers = peers;
            start(i);
        }
    }

    void start(std::size_t i) { brokers_[i] = std::make_unique<running_broker>(ctx_, cfgs_[i]); }
    void stop(std::size_t i) { brokers_[i].reset(); }
    std::string frontend(std::size_t i) const { return cfgs_[i].frontend; }
    std::filesystem::path data_dir(std::size_t i) const { return dirs_[i].path; }
    zmq::context_t& ctx() { return ctx_; }

    // STATS at broker i: its reply (ok from the leader, not_leader elsewhere).
    tp::reply stats(std::size_t i) {
        client c(ctx_, frontend(i));
        return c.call(tp::cmd::stats, tp::request{});
    }

    // The broker that serves, once one does; nullopt at the deadline.
    std::optional<std::size_t> leader(std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            for (std::size_t i = 0; i < 3; ++i) {
                if (brokers_[i] && stats(i).ok) {
                    return i;
                }
            }
            std::this_thread::sleep_for(20ms);  // polling a condition with a deadline
        }
        return std::nullopt;
    }

private:
    zmq::context_t ctx_;
    std::array<temp_dir, 3> dirs_;
    std::array<tb::broker_config, 3> cfgs_;
    std::array<std::unique_ptr<running_broker>, 3> brokers_;  // last: stopped before the folders go
};

}  // namespace

TEST(BrokerCluster, OnlyTheLeaderServesAndTheOthersNameIt) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader) << "no broker served within the deadline";
    for (std::size_t i = 0; i < 3; ++i) {
        if (i == *leader) {
            continue;
        }
        tp::reply r;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        do {  // a follower names the leader once the leader's first entry reached it
            r = c.stats(i);
        } while (r.leader.empty() && std::chrono::steady_clock::now() < deadline);
        EXPECT_FALSE(r.ok);
        EXPECT_EQ(r.error_code, "not_leader");
        EXPECT_EQ(r.leader, c.frontend(*leader)) << r.error;
        EXPECT_NE(r.error.find("the leader is member " + std::to_string(*leader + 1)), std::string::npos) << r.error;
    }
}

TEST(BrokerCluster, WhatTheLeaderAcknowledgedOutlivesIt) {
    three_brokers c;
    auto first = c.leader();
    ASSERT_TRUE(first);
    std::vector<std::string> ids;
    {
        client cl(c.ctx(), c.frontend(*first));
        for (int i = 0; i < 5; ++i) {
            auto got = cl.submit({task("a.b"), task("a.b")});
            ASSERT_EQ(got.size(), 2u);
            ids.insert(ids.end(), got.begin(), got.end());
        }
    }
    c.stop(*first);
    auto second = c.leader();
    ASSERT_TRUE(second) << "no new leader";
    ASSERT_NE(*second, *first);
    client cl(c.ctx(), c.frontend(*second));
    for (const auto& id : ids) {
        EXPECT_EQ(cl.status(id).state, "QUEUED") << id;
    }
    auto more = cl.submit({task("a.b")});
    ASSERT_EQ(more.size(), 1u);

    // As if it had been killed while leading: it must empty its store and
    // rebuild it from its log and the others before it follows.
    std::ofstream(c.data_dir(*first) / "cluster-led") << *first + 1 << "\n";
    c.start(*first);
    tp::reply r;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    do {
        r = c.stats(*first);
    } while (r.leader != c.frontend(*second) && std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(r.error_code, "not_leader");
    EXPECT_EQ(r.leader, c.frontend(*second));
    EXPECT_FALSE(std::filesystem::exists(c.data_dir(*first) / "cluster-led")) << "the mark goes with the rebuild";
}

TEST(BrokerCluster, EveryMemberDescribesTheClusterAsItSeesIt) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    for (std::size_t i = 0; i < 3; ++i) {
        nlohmann::json j;
        const auto deadline = std::chrono::steady_clock::now() + 5s;
        do {  // a follower learns the leader's endpoint from its first entry
            client cl(c.ctx(), c.frontend(i));
            auto r = cl.call(tp::cmd::cluster, tp::request{});
            ASSERT_TRUE(r.ok) << r.error;
            j = nlohmann::json::from_msgpack(r.data);
        } while (j["leader_frontend"] == "" && std::chrono::steady_clock::now() < deadline);
        EXPECT_EQ(j["node_id"], i + 1);
        EXPECT_EQ(j["role"], i == *leader ? "leader" : "follower");
        EXPECT_EQ(j["serving"], i == *leader);
        EXPECT_EQ(j["leader_id"], *leader + 1);
        EXPECT_EQ(j["leader_frontend"], c.frontend(*leader));
        EXPECT_EQ(j["members"].size(), 3u);
        EXPECT_GE(j["commit_index"].get<uint64_t>(), 2u) << "the first configuration and the leader's entry";
    }
}

TEST(BrokerCluster, ASingleBrokerSaysItIsInNoCluster) {
    zmq::context_t ctx;
    temp_dir dir;
    auto cfg = test_config(dir.path.string());
    running_broker b(ctx, cfg);
    client cl(ctx, cfg.frontend);
    auto r = cl.call(tp::cmd::cluster, tp::request{});
    ASSERT_TRUE(r.ok) << r.error;
    auto j = nlohmann::json::from_msgpack(r.data);
    EXPECT_EQ(j["node_id"], 0);
    EXPECT_EQ(j["role"], "single");
}

TEST(BrokerCluster, ALeaderCutOffFromTheOthersRefusesWhatItCannotCommitAndRejoins) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    const std::size_t a = (*leader + 1) % 3;
    const std::size_t b = (*leader + 2) % 3;
    c.stop(a);
    c.stop(b);
    // Alone, the leader cannot commit the turn of this submit: the reply
    // waits for it, then is refused when the leader steps down (within
    // about an election timeout of losing its majority).
    client cl(c.ctx(), c.frontend(*leader));
    tp::request rq;
    rq.tasks = {task("a.b")};
    const auto t0 = std::chrono::steady_clock::now();
    auto r = cl.call(tp::cmd::submit, rq, 10s);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error_code, "unavailable") << r.error;
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);
    EXPECT_EQ(c.stats(*leader).error_code, "not_leader") << "it serves no more";

    c.start(a);
    c.start(b);
    auto next = c.leader();
    ASSERT_TRUE(next) << "the three did not elect a leader again";
    client again(c.ctx(), c.frontend(*next));
    EXPECT_EQ(again.submit({task("a.b")}).size(), 1u);
}
