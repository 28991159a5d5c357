// A cluster member (cluster/raft_node.hpp) for real: three members in this
// process, each with its own LMDB store and Raft log in a temporary folder,
// talking TCP on loopback. The test drives their loops by polling their
// descriptors, as the broker's loop does.
#include <poll.h>

#include <array>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "broker_harness.hpp"
#include "cluster/raft_node.hpp"
#include "replication/apply.hpp"
#include "replication/write_set.hpp"
#include "store/keys.hpp"

using namespace tmtest;
namespace tc = taskmill::broker::cluster;
namespace tr = taskmill::broker::replication;

namespace {

std::shared_ptr<spdlog::logger> quiet() {
    return std::make_shared<spdlog::logger>("raft", std::make_shared<spdlog::sinks::null_sink_mt>());
}

// Every table's entries but the applied index, which members reach at
// their own pace.
std::map<std::pair<int, std::string>, std::string> contents(tb::store& st) {
    std::map<std::pair<int, std::string>, std::string> out;
    auto txn = st.begin(false);
    for (int t = 0; t < tb::table_count; ++t) {
        EXPECT_TRUE(txn->scan(static_cast<tb::table>(t), "", false, [&](std::string_view k, std::string_view v) {
            out[{t, std::string(k)}] = std::string(v);
            return true;
        }));
    }
    out.erase({static_cast<int>(tb::table::meta), std::string(tb::keys::meta_applied_index)});
    return out;
}

std::string entry_putting(const std::string& key, const std::string& value) {
    tr::write_set ws;
    ws.put(tb::table::tasks, key, value);
    return ws.take();
}

// Three members started together, and room for a fourth (slot 3, member
// 4) that joins them once the leader adds it.
class three_members {
public:
    static constexpr std::size_t slots = 4;

    explicit three_members(unsigned snapshot_threshold = 1024, unsigned catch_up_timeout_ms = 60000)
        : threshold_(snapshot_threshold), catch_up_timeout_ms_(catch_up_timeout_ms) {
        for (uint64_t id = 1; id <= 4; ++id) {
            addresses_.push_back({id, "127.0.0.1:" + std::to_string(free_port())});
        }
        members_.assign(addresses_.begin(), addresses_.begin() + 3);
        for (std::size_t i = 0; i < slots; ++i) {
            slots_[i].store = tb::open_lmdb_store(
                tb::lmdb_options{(dirs_[i].path / "store").string(), 64ull << 20, tb::durability::none});
        }
        for (std::size_t i = 0; i < 3; ++i) {
            start(i);
        }
    }

    // Slot 3 joins: no first configuration of its own.
    void start(std::size_t i) {
        tc::raft_settings s;
        s.id = addresses_[i].id;
        s.address = addresses_[i].address;
        s.members = members_;
        s.bootstrap = i < 3;
        s.dir = (dirs_[i].path / "raft").string();
        s.election_timeout_ms = 300;
        s.snapshot_threshold = threshold_;
        s.snapshot_trailing = threshold_ / 2;
        s.install_snapshot_timeout_ms = 1000;
        s.catch_up_timeout_ms = catch_up_timeout_ms_;
        slots_[i].node = std::make_unique<tc::raft_node>(s, *slots_[i].store, *log_);
    }
    std::string address(std::size_t i) const { return addresses_[i].address; }
    void stop(std::size_t i) { slots_[i].node.reset(); }

    tc::raft_node* node(std::size_t i) { return slots_[i].node.get(); }
    tb::store& store(std::size_t i) { return *slots_[i].store; }

    // Runs the members' loops until `done` or the deadline; false at the deadline.
    bool run_until(const std::function<bool()>& done, std::chrono::milliseconds limit = std::chrono::seconds(15)) {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done()) {
            if (std::chrono::steady_clock::now() > deadline) {
                return false;
            }
            std::vector<pollfd> fds;
            int timeout = 50;
            for (auto& s : slots_) {
                if (s.node) {
                    fds.push_back({s.node->poll_fd(), POLLIN, 0});
                    int t = s.node->timeout_ms();
                    timeout = t >= 0 ? std::min(timeout, t) : timeout;
                }
            }
            ::poll(fds.data(), fds.size(), timeout);
            for (auto& s : slots_) {
                if (s.node) {
                    s.node->run_ready();
                    EXPECT_FALSE(s.node->failed()) << *s.node->failed();
                }
            }
        }
        return true;
    }

    // The one member that leads, once a leader is elected; -1 at the deadline.
    int leader() {
        int found = -1;
        run_until([&] {
            for (std::size_t i = 0; i < slots; ++i) {
                if (slots_[i].node && slots_[i].node->is_leader()) {
                    found = static_cast<int>(i);
                    return true;
                }
            }
            return false;
        });
        return found;
    }

    // Proposes `n` entries at the leader; true once every one is committed.
    bool propose(std::size_t at, int n, const std::string& prefix) {
        int committed = 0;
        int lost = 0;
        for (int i = 0; i < n; ++i) {
            auto rc = node(at)->propose(entry_putting(prefix + std::to_string(i), "v" + std::to_string(i)),
                                        [&](bool ok) { ++(ok ? committed : lost); });
            EXPECT_TRUE(rc.has_value()) << rc.error().message;
        }
        EXPECT_TRUE(run_until([&] { return committed + lost == n; }));
        return committed == n;
    }

    // True once every running member has applied what `at` has committed.
    bool caught_up(std::size_t at) {
        const uint64_t commit = node(at)->status().commit_index;
        return run_until([&] {
            for (auto& s : slots_) {
                if (s.node && s.node->status().applied_index < commit) {
                    return false;
                }
            }
            return true;
        });
    }

private:
    struct slot {
        std::unique_ptr<tb::store> store;
        std::unique_ptr<tc::raft_node> node;
    };
    unsigned threshold_;
    unsigned catch_up_timeout_ms_;
    std::shared_ptr<spdlog::logger> log_ = quiet();
    std::array<temp_dir, slots> dirs_;
    std::vector<tc::member> addresses_;  // of the four slots
    std::vector<tc::member> members_;    // the first configuration: the first three
    std::array<slot, slots> slots_;      // declared last: the nodes close before the folders go
};

}  // namespace

TEST(RaftNode, ThreeMembersElectOneLeaderAndApplyItsEntriesAlike) {
    three_members c;
    const int leader = c.leader();
    ASSERT_GE(leader, 0) << "no leader elected";
    const auto at = static_cast<std::size_t>(leader);
    auto st = c.node(at)->status();
    EXPECT_EQ(st.state, tc::role::leader);
    EXPECT_EQ(st.leader_id, st.id);
    EXPECT_EQ(st.members.size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(c.node(i)->is_leader(), i == at) << "member " << i;
    }
    ASSERT_TRUE(c.propose(at, 40, "task-"));
    ASSERT_TRUE(c.caught_up(at));
    const auto want = contents(c.store(at));
    EXPECT_EQ(want.size(), 40u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(contents(c.store(i)), want) << "member " << i;
        auto follower = c.node(i)->status();
        EXPECT_EQ(follower.leader_id, st.id) << "every member knows the leader";
        EXPECT_EQ(follower.term, st.term);
    }
}

TEST(RaftNode, AFollowerRefusesToProposeAndNamesTheLeader) {
    three_members c;
    const int leader = c.leader();
    ASSERT_GE(leader, 0);
    const std::size_t follower = (static_cast<std::size_t>(leader) + 1) % 3;
    ASSERT_TRUE(c.run_until([&] { return c.node(follower)->status().leader_id != 0; }));
    auto rc = c.node(follower)->propose(entry_putting("k", "v"), [](bool) { ADD_FAILURE() << "called back"; });
    ASSERT_FALSE(rc.has_value());
    EXPECT_EQ(rc.error().code, taskmill::errc::conflict);
    EXPECT_EQ(c.node(follower)->status().leader_address,
              c.node(static_cast<std::size_t>(leader))->status().members[static_cast<std::size_t>(leader)].address);
}

TEST(RaftNode, WhenTheLeaderStopsAnotherIsElectedAndTheOldOneCatchesUpAtRestart) {
    three_members c;
    const auto first = static_cast<std::size_t>(c.leader());
    ASSERT_TRUE(c.propose(first, 10, "before-"));
    c.stop(first);
    const int second = c.leader();
    ASSERT_GE(second, 0) << "no new leader";
    const auto next = static_cast<std::size_t>(second);
    ASSERT_NE(next, first);
    ASSERT_TRUE(c.propose(next, 10, "after-"));
    c.start(first);  // the same log and store: it replays only what it lacks
    ASSERT_TRUE(c.caught_up(next));
    EXPECT_EQ(contents(c.store(first)), contents(c.store(next)));
    EXPECT_EQ(contents(c.store(first)).size(), 20u);
}

TEST(RaftNode, AMemberFarBehindIsSentASnapshotAndEndsEqual) {
    three_members c(16);  // a snapshot every 16 entries, 8 kept behind it
    const auto leader = static_cast<std::size_t>(c.leader());
    const std::size_t behind = (leader + 1) % 3;
    c.stop(behind);
    const std::size_t other = (leader + 2) % 3;
    // Rounds, each committed before the next, until both running members
    // have compacted their logs twice: whichever leads when the third comes
    // back has only a snapshot for it. (A leader snapshots only between
    // proposals, after a commit.)
    int rounds = 0;
    while (c.node(leader)->status().snapshots < 2 || c.node(other)->status().snapshots < 2) {
        ASSERT_LT(rounds, 50) << "snapshots taken: " << c.node(leader)->status().snapshots << " and "
                              << c.node(other)->status().snapshots;
        ASSERT_TRUE(c.propose(leader, 20, "k" + std::to_string(rounds++) + "-"));
    }
    c.start(behind);
    ASSERT_TRUE(c.caught_up(leader));
    EXPECT_GE(c.node(behind)->status().snapshots_installed, 1u) << "the log it missed was compacted away";
    EXPECT_EQ(contents(c.store(behind)), contents(c.store(leader)));
    EXPECT_EQ(contents(c.store(behind)).size(), 20u * static_cast<std::size_t>(rounds));
}

// The kind of member `id` in `at`'s configuration; "" when absent.
std::string kind_of(tc::raft_node& at, uint64_t id) {
    for (const auto& m : at.status().members) {
        if (m.id == id) {
            return m.kind;
        }
    }
    return {};
}

TEST(RaftNode, AMemberAddedAfterTheLogWasCompactedCatchesUpFromASnapshotAndVotes) {
    three_members c(16);
    const auto leader = static_cast<std::size_t>(c.leader());
    int rounds = 0;
    while (c.node(leader)->status().snapshots < 2) {
        ASSERT_LT(rounds, 50);
        ASSERT_TRUE(c.propose(leader, 20, "k" + std::to_string(rounds++) + "-"));
    }
    c.start(3);
    std::optional<taskmill::result<void>> outcome;
    auto rc = c.node(leader)->add(4, c.address(3), [&](taskmill::result<void> r) { outcome = std::move(r); });
    ASSERT_TRUE(rc.has_value()) << rc.error().message;
    EXPECT_TRUE(c.node(leader)->changing());
    ASSERT_TRUE(c.run_until([&] { return outcome.has_value(); }));
    ASSERT_TRUE(outcome->has_value()) << outcome->error().message;
    EXPECT_FALSE(c.node(leader)->changing());
    EXPECT_EQ(kind_of(*c.node(leader), 4), "voter");
    EXPECT_GE(c.node(3)->status().snapshots_installed, 1u) << "the log it lacked was compacted away";
    ASSERT_TRUE(c.caught_up(leader));
    EXPECT_EQ(contents(c.store(3)), contents(c.store(leader)));

    // Four voters: with one of the first three gone, the new member's vote
    // makes the majority (three of four).
    const std::size_t gone = (leader + 1) % 3;
    c.stop(gone);
    ASSERT_TRUE(c.propose(leader, 5, "after-"));
    ASSERT_TRUE(c.caught_up(leader));
    EXPECT_EQ(contents(c.store(3)), contents(c.store(leader)));
}

TEST(RaftNode, AMemberThatNeverComesUpStaysAStandbyAndCanBeRemoved) {
    three_members c(1024, 500);  // a catch-up timeout of half a second
    const auto leader = static_cast<std::size_t>(c.leader());
    ASSERT_TRUE(c.propose(leader, 5, "k-"));
    std::optional<taskmill::result<void>> outcome;
    auto rc = c.node(leader)->add(4, c.address(3), [&](taskmill::result<void> r) { outcome = std::move(r); });
    ASSERT_TRUE(rc.has_value()) << rc.error().message;
    auto again = c.node(leader)->remove((leader + 1) % 3 + 1, [](taskmill::result<void>) { ADD_FAILURE(); });
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().code, taskmill::errc::conflict);
    ASSERT_TRUE(c.run_until([&] { return outcome.has_value(); }));
    ASSERT_FALSE(outcome->has_value());
    EXPECT_EQ(outcome->error().code, taskmill::errc::unavailable);
    EXPECT_NE(outcome->error().message.find("did not catch up"), std::string::npos) << outcome->error().message;
    EXPECT_EQ(kind_of(*c.node(leader), 4), "standby");
    ASSERT_TRUE(c.propose(leader, 5, "meanwhile-")) << "a standby counts towards no majority";

    outcome.reset();
    rc = c.node(leader)->remove(4, [&](taskmill::result<void> r) { outcome = std::move(r); });
    ASSERT_TRUE(rc.has_value()) << rc.error().message;
    ASSERT_TRUE(c.run_until([&] { return outcome.has_value(); }));
    ASSERT_TRUE(outcome->has_value()) << outcome->error().message;
    EXPECT_EQ(kind_of(*c.node(leader), 4), "");
    EXPECT_EQ(c.node(leader)->status().members.size(), 3u);
}

TEST(RaftNode, LeadershipGoesToTheMemberNamed) {
    three_members c;
    const auto leader = static_cast<std::size_t>(c.leader());
    ASSERT_TRUE(c.propose(leader, 5, "k-"));
    const std::size_t target = (leader + 2) % 3;
    std::optional<taskmill::result<void>> outcome;
    auto rc = c.node(leader)->transfer(target + 1, [&](taskmill::result<void> r) { outcome = std::move(r); });
    ASSERT_TRUE(rc.has_value()) << rc.error().message;
    auto refused = c.node(leader)->propose(entry_putting("k", "v"), [](bool) {});
    EXPECT_FALSE(refused.has_value()) << "libraft 0.15 takes no entry during a transfer";
    ASSERT_TRUE(c.run_until([&] { return outcome.has_value(); }));
    ASSERT_TRUE(outcome->has_value()) << outcome->error().message;
    EXPECT_TRUE(c.node(target)->is_leader());
    EXPECT_FALSE(c.node(leader)->is_leader());
    ASSERT_TRUE(c.propose(target, 5, "after-"));
}
