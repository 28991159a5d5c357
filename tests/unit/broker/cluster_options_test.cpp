// The cluster's options (docs/CLUSTER.md): node-id, peers, raft-address,
// election-timeout-ms, read from an INI file and checked together.
#include <string>

#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "options_harness.hpp"

using namespace tmtest;

namespace {

const std::string three = "peers = 1=10.0.0.1:7000,2=10.0.0.2:7000,3=10.0.0.3:7000\n";

}  // namespace

TEST(ClusterOptions, ASingleBrokerIsTheDefault) {
    temp_dir d;
    auto o = load(d, "");
    EXPECT_EQ(o.cfg.cluster.node_id, 0u);
    EXPECT_TRUE(o.cfg.cluster.peers.empty());
}

TEST(ClusterOptions, PeersAreReadAndTheRaftAddressComesFromThem) {
    temp_dir d;
    auto o = load(d, "node-id = 2\nelection-timeout-ms = 500\n" + three);
    const auto& c = o.cfg.cluster;
    EXPECT_EQ(c.node_id, 2u);
    ASSERT_EQ(c.peers.size(), 3u);
    EXPECT_EQ(c.peers[2].id, 3u);
    EXPECT_EQ(c.peers[2].address, "10.0.0.3:7000");
    EXPECT_EQ(c.raft_address, "10.0.0.2:7000");
    EXPECT_EQ(c.election_timeout_ms, 500);
}

TEST(ClusterOptions, BadClusterSettingsAreRefusedSayingWhy) {
    temp_dir d;
    EXPECT_NE(load_error(d, three).find("need node-id"), std::string::npos);
    EXPECT_NE(load_error(d, "node-id = 4\n" + three).find("must list node-id 4"), std::string::npos);
    EXPECT_NE(load_error(d, "node-id = 1\n" + three + "raft-address = 10.0.0.9:7000\n").find("is not node 1"),
              std::string::npos);
    for (const std::string bad : {"1=host.example:7000", "1=10.0.0.1", "0=10.0.0.1:7000", "x=10.0.0.1:7000",
                                  "1=10.0.0.1:70000", "1=10.0.0.1:7000,1=10.0.0.2:7000"}) {
        EXPECT_NE(load_error(d, "node-id = 1\npeers = " + bad + "\n").find("peers"), std::string::npos) << bad;
    }
    EXPECT_NE(load_error(d, "node-id = 1\nelection-timeout-ms = 10\n" + three).find("election-timeout-ms"),
              std::string::npos);
}

TEST(ClusterOptions, AJoiningMemberNeedsOnlyItsOwnEntryInPeers) {
    temp_dir d;
    EXPECT_FALSE(load(d, "node-id = 2\n" + three).cfg.cluster.join) << "a first member by default";
    auto o = load(d, "node-id = 4\njoin = true\npeers = 4=10.0.0.4:7000\n");
    const auto& c = o.cfg.cluster;
    EXPECT_TRUE(c.join);
    EXPECT_EQ(c.raft_address, "10.0.0.4:7000");
    ASSERT_EQ(c.peers.size(), 1u);
    EXPECT_NE(load_error(d, "join = true\n").find("join need node-id"), std::string::npos);
    EXPECT_NE(load_error(d, "node-id = 4\njoin = true\n" + three).find("must list node-id 4"), std::string::npos);
    EXPECT_NE(load_error(d, "node-id = 4\njoin = maybe\npeers = 4=10.0.0.4:7000\n").find("join"), std::string::npos);
}
