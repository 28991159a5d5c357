// One member of a broker cluster: libraft (with its libuv I/O) keeping a
// replicated log of write sets (replication/write_set.hpp), applied in order
// to the member's own store.
//
// Threading: none of its own. libuv's loop is driven by the broker's loop:
// poll poll_fd() for reading, wake after timeout_ms() at the latest, then
// call run_ready(). Every callback (apply, proposals' `done`) runs inside
// run_ready(), on the caller's thread. Snapshots are read in libuv's thread
// pool, from a read transaction begun on the loop's thread.
//
// Starting one makes the process ignore SIGPIPE: libuv writes to the other
// members' sockets without MSG_NOSIGNAL, and one that dies mid-write would
// otherwise end this process.
//
// The log and snapshots live in `dir`; the store holds the applied state
// and the index of the last entry applied (replication/apply.hpp), so a
// restart replays only what the store lacks.
//
// A leader's entries are applied to its store before they are proposed
// (the engine's turn commits, then its write set is proposed): the store
// runs ahead of the log by the proposals in flight. Its snapshots wait for
// none to be in flight, so an image never holds an uncommitted entry.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker::cluster {

struct member {
    uint64_t id = 0;
    std::string address;  // the Raft transport's host:port
};

struct raft_settings {
    uint64_t id = 0;
    std::string address;          // this member's Raft transport, host:port
    std::vector<member> members;  // the first configuration, this member too
    bool bootstrap = true;        // false: join a running cluster, which adds it
    std::string dir;              // the log and snapshots
    unsigned election_timeout_ms = 300;
    unsigned heartbeat_ms = 0;  // 0: a tenth of the election timeout
    // A snapshot after this many entries, keeping this many behind it for
    // followers that are a little late.
    unsigned snapshot_threshold = 1024;
    unsigned snapshot_trailing = 1024;
    // How long a leader waits for a member to install a snapshot it sent
    // before sending it again (a member busy with its own snapshot turns
    // one down, and libraft's 30-s default leaves it behind that long).
    unsigned install_snapshot_timeout_ms = 10000;
    // How long a member being added may take to catch up before it votes.
    unsigned catch_up_timeout_ms = 60000;
};

enum class role { unavailable, follower, candidate, leader };
const char* to_string(role r);

struct member_status {
    uint64_t id = 0;
    std::string address;
    std::string kind;          // voter, standby, spare
    uint64_t match_index = 0;  // leader only: what it knows the member holds
};

struct raft_status {
    uint64_t id = 0;
    role state = role::unavailable;
    uint64_t term = 0;
    uint64_t leader_id = 0;  // 0: none known
    std::string leader_address;
    uint64_t last_index = 0;
    uint64_t commit_index = 0;
    uint64_t applied_index = 0;
    uint64_t snapshots = 0;            // taken since start
    uint64_t snapshots_installed = 0;  // since start: sent by a leader, or its own at start
    std::vector<member_status> members;
};

class raft_node {
public:
    // Opens the log in settings.dir and starts the member. Throws
    // std::runtime_error saying what failed (a busy address, a bad folder).
    raft_node(raft_settings settings, store& st, spdlog::logger& log);
    // Closes the member, running the loop until libraft has let go.
    ~raft_node();
    raft_node(const raft_node&) = delete;
    raft_node& operator=(const raft_node&) = delete;

    int poll_fd() const;
    // Milliseconds until the loop must run again; -1: only when poll_fd().
    int timeout_ms() const;
    // Runs what is ready, without waiting.
    void run_ready();

    bool is_leader() const;
    // The leader this member knows of; 0 = none.
    uint64_t leader_id() const;
    uint64_t term() const;
    raft_status status() const;
    // The index the next proposal takes, if one is made now (leader only).
    uint64_t next_index() const;
    std::size_t in_flight() const;
    // True while a snapshot waits for the proposals in flight to end: a
    // leader should hold new ones back until then.
    bool snapshot_waiting() const;

    // Appends `entry` to the log. `done(true)` once it is committed and
    // applied here; `done(false)` if it will not be, from here (leadership
    // lost, the member closing): it may still be committed by the next
    // leader. errc::conflict when this member is not the leader.
    using done_fn = std::function<void(bool committed)>;
    result<void> propose(std::string_view entry, done_fn done);
    // `done(true)` once every entry before it has been applied here (a new
    // leader's first step before it serves).
    result<void> barrier(done_fn done);

    // Membership changes, on the leader, one at a time (docs/CLUSTER.md).
    // Each returns an error at once (errc::conflict while another change is
    // under way or for a member already there, not_found for an unknown
    // one, not_leader) or calls `done` later, inside run_ready(), with the
    // outcome: {} once the new configuration has committed (for a transfer:
    // once the target leads), or the error, with libraft's words. `done` is
    // not called when the member closes first.
    using change_fn = std::function<void(result<void>)>;
    // Adds `id` as a standby (it receives the log without voting), waits
    // until it holds what the leader held then, and makes it a voter. A
    // member that does not catch up within catch_up_timeout_ms stays a
    // standby: the change ends with errc::unavailable (start it, or remove it).
    // A member an earlier add left a spare or a standby, at `address`, is
    // taken on from there.
    result<void> add(uint64_t id, const std::string& address, change_fn done);
    // Removes a follower. The leader itself is refused (conflict): transfer
    // leadership first.
    result<void> remove(uint64_t id, change_fn done);
    // Hands leadership to voter `id` (0: libraft picks a voter, an
    // up-to-date one when there is one). New proposals are refused while
    // it is under way.
    result<void> transfer(uint64_t id, change_fn done);
    // A change or a transfer is under way: propose() would be refused
    // during a transfer.
    bool changing() const;
    // What the change under way is doing, for messages ("" when none).
    std::string change_text() const;

    // Fatal store errors met while applying (the member cannot go on).
    const std::optional<std::string>& failed() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace taskmill::broker::cluster
