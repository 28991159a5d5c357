// The broker's loop as a member of a cluster (docs/CLUSTER.md).
//
// Drives the Raft member (cluster/raft_node.hpp) from the loop's thread.
// While this member leads, and only once every earlier entry has been
// applied to its store, the engine runs over engine_store(): each turn
// commits to the local store, its write set becomes one log entry, and the
// turn's replies and events wait in order until that entry has committed.
// Turns whose transaction changed nothing wait behind the entries in flight.
//
// A member that stops leading drops what it held (each waiting reply
// becomes an `unavailable` error: the client asks the new leader). If any
// of its entries had not committed, its store may hold turns the cluster
// never agreed on: it empties the store and rebuilds it from its log and
// snapshots, as a member that starts with a leader's mark left in its data
// folder does (a leader killed mid-turn).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include <taskmill/broker/broker.hpp>
#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/result.hpp>

#include "cluster/raft_node.hpp"
#include "engine/engine.hpp"
#include "metrics/metrics.hpp"

namespace taskmill::broker {

class membership {
public:
    // Sends a turn's output whose entry has committed.
    using send_fn = std::function<void(outbox&)>;
    // Refuses a turn's output that will not be confirmed (leadership lost).
    using refuse_fn = std::function<void(outbox&, const std::string& why)>;

    membership(const broker_config& cfg, store& st, spdlog::logger& log, send_fn send, refuse_fn refuse);
    ~membership();
    membership(const membership&) = delete;
    membership& operator=(const membership&) = delete;

    // What the broker tells followers' clients the leader serves on.
    void set_endpoints(const bound_endpoints& eps) { eps_ = eps; }

    int poll_fd() const { return node_->poll_fd(); }
    int timeout_ms() const { return node_->timeout_ms(); }
    // Runs the member's ready work and follows its role. Throws
    // std::runtime_error when the member cannot go on (its store failed).
    void run_ready();

    enum class change { none, lead, follow };
    // What changed since the last call: lead = make an engine and serve;
    // follow = drop the engine.
    change take_change();
    bool leading() const { return state_ == state::leading; }
    // Leading, with room for one more entry in flight and no snapshot
    // waiting for the entries in flight to end.
    bool can_take_turn() const;

    // The store the engine runs on while leading.
    store& engine_store() { return *recording_; }
    // After the engine's end_turn (whose commit proposed the turn's entry,
    // if it wrote one): holds `out` until the entries proposed so far have
    // committed, or sends it now if they have.
    void after_turn(outbox& out);

    // An operator's membership change (CLUSTER_ADD, CLUSTER_REMOVE,
    // CLUSTER_TRANSFER), started between turns, never inside one; a
    // transfer waits for the entries in flight to commit first (no turn is
    // taken meanwhile), so the member hands over with nothing unconfirmed.
    // `done` gets the outcome (cluster::raft_node's errors), on the loop's
    // thread, from run_ready().
    enum class change_kind { add, remove, transfer };
    using change_fn = std::function<void(result<void>)>;
    void request_change(change_kind kind, uint64_t id, std::string address, change_fn done);

    // For NOT_LEADER: the leader's frontend endpoint, if known.
    std::string leader_frontend() const;
    // For a host's messages: the leader's backend endpoint, if known.
    std::string leader_backend() const;
    // For HTTP clients: the leader's HTTP API URL, if it serves one.
    std::string leader_http() const;
    std::string leader_text() const;
    cluster::raft_status status() const { return node_->status(); }
    // This member's figures for /metrics.
    cluster_figures figures() const;
    // CLUSTER's answer: this member's view, a msgpack map (PROTOCOL.md).
    std::string describe() const;

private:
    enum class state { following, catching_up, leading };
    struct held {
        uint64_t after = 0;  // sent once the entry with this number commits
        outbox out;
    };

    std::unique_ptr<cluster::raft_node> make_node();
    std::string leader_endpoint(const char* which) const;
    void start_leading();
    void announce_leader();
    void stop_leading(const std::string& why);
    void rebuild(const std::string& why);
    void committed(uint64_t seq);
    void propose(std::string entry);
    void mark_led(bool led);
    void start_change();
    void end_change(result<void> outcome);

    const broker_config& cfg_;
    store& st_;
    spdlog::logger& log_;
    send_fn send_;
    refuse_fn refuse_;
    bound_endpoints eps_;
    std::unique_ptr<cluster::raft_node> node_;
    std::unique_ptr<store> recording_;
    state state_ = state::following;
    change change_ = change::none;
    uint64_t generation_ = 0;  // callbacks of an earlier leadership are ignored
    uint64_t proposed_ = 0;    // entries proposed in this leadership
    uint64_t confirmed_ = 0;   // of which, committed in order
    bool lost_entry_ = false;  // an entry of ours will not be confirmed
    std::deque<held> held_;
    bool barrier_passed_ = false;  // set by the barrier's callback, acted on in run_ready
    uint64_t leader_term_ = 0;     // the term of the last leader counted in leader_changes_
    uint64_t leader_changes_ = 0;
    struct change_request {
        change_kind kind = change_kind::add;
        uint64_t id = 0;
        std::string address;
        change_fn done;
        uint64_t seq = 0;                     // the Raft member's answer names it
        bool started = false;                 // handed to the Raft member
        std::optional<result<void>> outcome;  // its answer, passed on once the role is followed
    };
    uint64_t asked_seq_ = 0;
    std::optional<change_request> asked_;  // one at a time
};

}  // namespace taskmill::broker
