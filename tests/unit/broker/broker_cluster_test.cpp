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

// Three brokers started as one cluster, with room for two more that join
// it (join = true) once the leader adds them.
class three_brokers {
public:
    static constexpr std::size_t capacity = 5;

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

    // Starts broker i (3 or 4: member i + 1) to join the cluster, at
    // `address` or a free port: its peers list names itself only. Returns
    // its Raft address.
    std::string start_joiner(std::size_t i, std::string address = {}) {
        cfgs_[i] = test_config(dirs_[i].path.string());
        cfgs_[i].cluster.node_id = i + 1;
        cfgs_[i].cluster.raft_address = address.empty() ? "127.0.0.1:" + std::to_string(free_port()) : address;
        cfgs_[i].cluster.peers = {{i + 1, cfgs_[i].cluster.raft_address}};
        cfgs_[i].cluster.join = true;
        start(i);
        return cfgs_[i].cluster.raft_address;
    }

    void start(std::size_t i) { brokers_[i] = std::make_unique<running_broker>(ctx_, cfgs_[i]); }
    void stop(std::size_t i) { brokers_[i].reset(); }
    std::string frontend(std::size_t i) const { return cfgs_[i].frontend; }
    std::string raft_address(std::size_t i) const { return cfgs_[i].cluster.raft_address; }
    std::filesystem::path data_dir(std::size_t i) const { return dirs_[i].path; }
    zmq::context_t& ctx() { return ctx_; }

    // STATS at broker i: its reply (ok from the leader, not_leader elsewhere).
    tp::reply stats(std::size_t i) {
        client c(ctx_, frontend(i));
        return c.call(tp::cmd::stats, tp::request{});
    }

    // CLUSTER at broker i, decoded.
    nlohmann::json view(std::size_t i) {
        client c(ctx_, frontend(i));
        auto r = c.call(tp::cmd::cluster, tp::request{});
        EXPECT_TRUE(r.ok) << r.error;
        return r.ok ? nlohmann::json::from_msgpack(r.data) : nlohmann::json::object();
    }

    // A membership change asked of broker i.
    tp::reply change(std::size_t i, std::string_view command, uint64_t member, std::string address = {}) {
        client c(ctx_, frontend(i));
        tp::request rq;
        rq.member = member;
        rq.address = std::move(address);
        return c.call(command, rq, 15s);
    }

    // The broker that serves, once one does; nullopt at the deadline.
    std::optional<std::size_t> leader(std::chrono::milliseconds limit = 10s) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            for (std::size_t i = 0; i < capacity; ++i) {
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
    std::array<temp_dir, capacity> dirs_;
    std::array<tb::broker_config, capacity> cfgs_;
    std::array<std::unique_ptr<running_broker>, capacity> brokers_;  // last: stopped before the folders go
};

// The member with `id` in a CLUSTER view's list, or null.
nlohmann::json member_in(const nlohmann::json& view, uint64_t id) {
    for (const auto& m : view.value("members", nlohmann::json::array())) {
        if (m.value("id", uint64_t{0}) == id) {
            return m;
        }
    }
    return nullptr;
}

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

TEST(BrokerCluster, AJoiningMemberIsAddedAsAVoterOnceItHasCaughtUp) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    client cl(c.ctx(), c.frontend(*leader));
    std::vector<std::string> ids = cl.submit({task("a.b"), task("a.b"), task("a.b")});
    ASSERT_EQ(ids.size(), 3u);

    const auto address = c.start_joiner(3);
    auto joiner = c.view(3);
    EXPECT_EQ(joiner["node_id"], 4);
    EXPECT_EQ(joiner["members"].size(), 0u) << "a joining member writes no configuration of its own";

    auto r = c.change(*leader, tp::cmd::cluster_add, 4, address);
    ASSERT_TRUE(r.ok) << r.error_code << ": " << r.error;
    auto after = nlohmann::json::from_msgpack(r.data);
    ASSERT_EQ(after["members"].size(), 4u);
    EXPECT_EQ(member_in(after, 4)["kind"], "voter");
    EXPECT_EQ(member_in(after, 4)["address"], address);
    const uint64_t committed = after["commit_index"];

    // The new member holds the leader's entries, counts itself a voter and
    // names the leader (from the replicated leader record).
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    do {
        joiner = c.view(3);
    } while ((joiner["applied_index"].get<uint64_t>() < committed || member_in(joiner, 4).is_null() ||
              joiner["leader_frontend"] != c.frontend(*leader)) &&
             std::chrono::steady_clock::now() < deadline);
    EXPECT_GE(joiner["applied_index"].get<uint64_t>(), committed);
    EXPECT_EQ(joiner["role"], "follower");
    EXPECT_EQ(member_in(joiner, 4)["kind"], "voter");
    EXPECT_EQ(joiner["members"].size(), 4u);
    EXPECT_EQ(joiner["leader_frontend"], c.frontend(*leader));
    auto redirect = c.stats(3);
    EXPECT_EQ(redirect.error_code, "not_leader");
    EXPECT_EQ(redirect.leader, c.frontend(*leader));

    // Four voters: the cluster still serves with one of the first three gone.
    const std::size_t gone = (*leader + 1) % 3;
    c.stop(gone);
    EXPECT_EQ(cl.submit({task("a.b")}).size(), 1u);
    for (const auto& id : ids) {
        EXPECT_EQ(cl.status(id).state, "QUEUED") << id;
    }
}

TEST(BrokerCluster, ARemovedMemberLeavesTheListAndTheClusterServesOn) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    const std::size_t out = (*leader + 1) % 3;
    const std::size_t stays = (*leader + 2) % 3;
    auto r = c.change(*leader, tp::cmd::cluster_remove, out + 1);
    ASSERT_TRUE(r.ok) << r.error_code << ": " << r.error;
    auto after = nlohmann::json::from_msgpack(r.data);
    EXPECT_EQ(after["members"].size(), 2u);
    EXPECT_TRUE(member_in(after, out + 1).is_null());
    c.stop(out);

    client cl(c.ctx(), c.frontend(*leader));
    auto ids = cl.submit({task("a.b")});
    ASSERT_EQ(ids.size(), 1u);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    nlohmann::json v;
    do {  // the other member holds the new configuration too
        v = c.view(stays);
    } while (v["members"].size() != 2u && std::chrono::steady_clock::now() < deadline);
    EXPECT_EQ(v["members"].size(), 2u);
    EXPECT_TRUE(member_in(v, out + 1).is_null());
}

TEST(BrokerCluster, LeadershipGoesToTheNamedMemberAndAcknowledgedTasksSurvive) {
    three_brokers c;
    auto first = c.leader();
    ASSERT_TRUE(first);
    std::vector<std::string> ids;
    {
        client cl(c.ctx(), c.frontend(*first));
        ids = cl.submit({task("a.b"), task("a.b")});
        ASSERT_EQ(ids.size(), 2u);
    }
    const std::size_t target = (*first + 2) % 3;
    auto r = c.change(*first, tp::cmd::cluster_transfer, target + 1);
    ASSERT_TRUE(r.ok) << r.error_code << ": " << r.error;
    auto old_view = nlohmann::json::from_msgpack(r.data);
    EXPECT_EQ(old_view["leader_id"], target + 1);
    EXPECT_NE(old_view["role"], "leader");

    auto next = c.leader();
    ASSERT_TRUE(next);
    EXPECT_EQ(*next, target);
    client cl(c.ctx(), c.frontend(target));
    for (const auto& id : ids) {
        EXPECT_EQ(cl.status(id).state, "QUEUED") << id;
    }
    EXPECT_EQ(cl.submit({task("a.b")}).size(), 1u);
    EXPECT_EQ(c.stats(*first).error_code, "not_leader");

    // Without an id, the leader picks a voter.
    auto again = c.change(target, tp::cmd::cluster_transfer, 0);
    ASSERT_TRUE(again.ok) << again.error_code << ": " << again.error;
    auto third = c.leader();
    ASSERT_TRUE(third);
    EXPECT_NE(*third, target);
}

TEST(BrokerCluster, OneMembershipChangeAtATime) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    // Nothing listens at member 5's address: it never catches up, so its
    // addition stays under way (for the catch-up timeout, a minute).
    client first(c.ctx(), c.frontend(*leader));
    tp::request rq;
    rq.req = 1;
    rq.member = 5;
    rq.address = "127.0.0.1:" + std::to_string(free_port());
    first.send(tp::cmd::cluster_add, tp::encode(rq));
    nlohmann::json v;
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    do {  // under way once member 5 is in the configuration
        v = c.view(*leader);
    } while (member_in(v, 5).is_null() && std::chrono::steady_clock::now() < deadline);
    ASSERT_FALSE(member_in(v, 5).is_null()) << v.dump();
    auto r = c.change(*leader, tp::cmd::cluster_remove, (*leader + 1) % 3 + 1);
    EXPECT_EQ(r.error_code, "conflict") << r.error;
    EXPECT_NE(r.error.find("member 5"), std::string::npos) << r.error;
    auto t = c.change(*leader, tp::cmd::cluster_transfer, 0);
    EXPECT_EQ(t.error_code, "conflict") << t.error;
    client cl(c.ctx(), c.frontend(*leader));
    EXPECT_EQ(cl.submit({task("a.b")}).size(), 1u) << "the leader serves on meanwhile";
    const auto standby_by = std::chrono::steady_clock::now() + 5s;
    do {  // added as a spare, then made a standby to receive the log
        v = c.view(*leader);
    } while (member_in(v, 5)["kind"] != "standby" && std::chrono::steady_clock::now() < standby_by);
    EXPECT_EQ(member_in(v, 5)["kind"], "standby");
    EXPECT_EQ(v["members"].size(), 4u);
}

TEST(BrokerCluster, BadMembershipChangesAreRefusedSayingWhy) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    const std::size_t other = (*leader + 1) % 3;
    auto r = c.change(*leader, tp::cmd::cluster_remove, 9);
    EXPECT_EQ(r.error_code, "not_found") << r.error;
    r = c.change(*leader, tp::cmd::cluster_transfer, 9);
    EXPECT_EQ(r.error_code, "not_found") << r.error;
    r = c.change(*leader, tp::cmd::cluster_add, other + 1, "127.0.0.1:1");
    EXPECT_EQ(r.error_code, "conflict") << r.error;
    EXPECT_NE(r.error.find("already"), std::string::npos) << r.error;
    r = c.change(*leader, tp::cmd::cluster_add, 7, c.raft_address(other));
    EXPECT_EQ(r.error_code, "conflict") << r.error;
    r = c.change(*leader, tp::cmd::cluster_add, 7, "host.example:7000");
    EXPECT_EQ(r.error_code, "invalid_argument") << r.error;
    r = c.change(*leader, tp::cmd::cluster_add, 0, "127.0.0.1:1");
    EXPECT_EQ(r.error_code, "invalid_argument") << r.error;
    r = c.change(*leader, tp::cmd::cluster_transfer, *leader + 1);
    EXPECT_EQ(r.error_code, "invalid_argument") << r.error;
    r = c.change(*leader, tp::cmd::cluster_remove, *leader + 1);
    EXPECT_EQ(r.error_code, "conflict") << r.error;
    EXPECT_NE(r.error.find("transfer"), std::string::npos) << r.error;
    // A follower does nothing and names the leader.
    r = c.change(other, tp::cmd::cluster_remove, *leader + 1);
    EXPECT_EQ(r.error_code, "not_leader") << r.error;
    // Nothing changed.
    EXPECT_EQ(c.view(*leader)["members"].size(), 3u);
}

TEST(BrokerCluster, ASingleBrokerRefusesMembershipChanges) {
    zmq::context_t ctx;
    temp_dir dir;
    auto cfg = test_config(dir.path.string());
    running_broker b(ctx, cfg);
    client cl(ctx, cfg.frontend);
    tp::request rq;
    rq.member = 2;
    rq.address = "127.0.0.1:7000";
    auto r = cl.call(tp::cmd::cluster_add, rq);
    EXPECT_FALSE(r.ok);
    EXPECT_EQ(r.error_code, "invalid_argument") << r.error;
}

TEST(BrokerCluster, AnAddCutShortByTheLeadersDeathGoesOnAtTheNext) {
    three_brokers c;
    auto leader = c.leader();
    ASSERT_TRUE(leader);
    // Member 5 is not running yet: its add waits for it to catch up.
    const std::string address = "127.0.0.1:" + std::to_string(free_port());
    client first(c.ctx(), c.frontend(*leader));
    tp::request rq;
    rq.req = 1;
    rq.member = 5;
    rq.address = address;
    first.send(tp::cmd::cluster_add, tp::encode(rq));
    nlohmann::json v;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    do {
        v = c.view(*leader);
    } while (member_in(v, 5)["kind"] != "standby" && std::chrono::steady_clock::now() < deadline);
    ASSERT_EQ(member_in(v, 5)["kind"], "standby") << v.dump();

    c.stop(*leader);
    auto next = c.leader();
    ASSERT_TRUE(next);
    c.start_joiner(4, address);
    auto again = c.change(*next, tp::cmd::cluster_add, 5, "127.0.0.2:1");
    EXPECT_EQ(again.error_code, "conflict") << "another address: " << again.error;
    auto r = c.change(*next, tp::cmd::cluster_add, 5, address);
    ASSERT_TRUE(r.ok) << r.error_code << ": " << r.error;
    EXPECT_EQ(member_in(nlohmann::json::from_msgpack(r.data), 5)["kind"], "voter");
    r = c.change(*next, tp::cmd::cluster_add, 5, address);
    EXPECT_EQ(r.error_code, "conflict") << "a voter already: " << r.error;
}
