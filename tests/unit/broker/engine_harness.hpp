// The engine alone, on a simulated clock, over the in-memory store (or one
// the test gives it, such as an old LMDB store): the test plays the loop
// (one turn = begin_turn, the messages read, on_timers, dispatch,
// take_early, end_turn, out()) and decides when time moves.
// Deterministic: no threads, no sockets, no wall clock. Peers are routing
// ids: a client or a worker is whatever name a message carries; what the
// engine sends is kept, decoded on request, with the time it left at.
// Uses only the engine's public API and the protocol's message types.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>
#include <spdlog/logger.h>
#include <nlohmann/json.hpp>

#include <taskmill/broker/broker.hpp>
#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/wire.hpp>

#include "engine/engine.hpp"

namespace tmtest {

namespace tp = taskmill::protocol;
namespace tb = taskmill::broker;

// 2026-01-01T00:00:00Z, a Thursday: cron fire times read plainly.
inline constexpr int64_t sim_epoch_ms = 1'767'225'600'000;

// The timers of test_config (broker_harness.hpp) without the endpoints: the
// engine never sees them.
tb::broker_config sim_config();

// One message the engine sent, and when.
struct sent {
    int64_t at_ms = 0;
    tb::target to = tb::target::frontend;
    std::string peer;
    std::string command;
    std::string body;
};

// One event the engine published, its msgpack body as JSON.
struct sim_event {
    int64_t at_ms = 0;
    std::string topic;
    nlohmann::json body;
};

class engine_harness;

// Every member has an initializer, so that a test names only what it sets:
// {.id = "node:1", .supervisor = "sup"}.
struct worker_options {
    std::string id{};                   // empty: w1, w2, ... in order of connection
    std::vector<std::string> queues{};  // empty: every queue
    std::string supervisor{};           // the peer whose DEAD counts
    uint32_t prefetch = 0;
    // Answers each broker HEARTBEAT at once with one naming `holding`, as a
    // host does; false: a worker that has gone silent.
    bool answers_heartbeats = true;
};

// A worker as the engine sees it: HELLO, then what it is sent and what it
// answers. Owned by the harness.
class sim_worker {
public:
    sim_worker(engine_harness& h, uint32_t slots, std::vector<tp::handler_info> handlers, worker_options o);

    const std::string& id() const { return hello_.worker; }
    // Sends HELLO (again, e.g. after a restart); WELCOME is expected back.
    void hello();
    // The tasks of the DISPATCHes it was sent since the last call.
    std::vector<tp::work_item> dispatched();
    // The control messages with `command` (CANCEL, ERROR, ...) it was sent
    // since the last call, with the time each left. Of its HEARTBEATs, only
    // the latest is kept.
    std::vector<std::pair<int64_t, tp::control>> received(std::string_view command);
    // One RESULTS carrying one outcome for `w`.
    void result(const tp::work_item& w, const std::string& status, const std::string& result = "",
                const std::string& error = "", std::optional<int64_t> retry_after_ms = std::nullopt);
    void send(std::string_view command, const tp::control& c);
    void send(const tp::results& rs);

    std::vector<std::string> holding;  // task ids named in its HEARTBEATs
    bool answers_heartbeats = true;

private:
    engine_harness& h_;
    tp::hello hello_;
};

class engine_harness {
public:
    explicit engine_harness(tb::broker_config cfg = sim_config());
    // Over `st` (e.g. an LMDB copy of a store an older release wrote), the
    // clock starting at `start_ms`.
    engine_harness(tb::broker_config cfg, std::unique_ptr<tb::store> st, int64_t start_ms);
    ~engine_harness();
    engine_harness(const engine_harness&) = delete;
    engine_harness& operator=(const engine_harness&) = delete;

    int64_t now() const { return now_; }
    // The store the engine runs on, for tests that read or age it between
    // turns (as an older release would have left it).
    tb::store& store() { return *store_; }

    // ---- time ----
    // Moves the clock `ms` on. On the way, runs a turn at every moment the
    // engine asked to be woken (next_deadline), as the loop does; the
    // workers answer its HEARTBEATs in a turn of their own at that moment.
    void advance(int64_t ms);
    // Moves the clock `ms` on without a turn, as a loop busy elsewhere finds
    // its timers late: the next turn (a message) sees them all due at once.
    void jump(int64_t ms) { now_ += ms; }
    // When the engine asks to be woken next (nullopt: not until a message).
    std::optional<int64_t> next_deadline() const { return engine_->next_deadline(); }

    // ---- messages in: each runs one turn at the current time ----
    void frontend(const std::string& peer, std::string_view command, const std::string& body);
    void backend(const std::string& peer, std::string_view command, const std::string& body);

    // ---- as a client ----
    // Sends the request (req numbered if 0) and returns its req.
    uint64_t request(std::string_view command, tp::request rq, const std::string& client = "client");
    // Takes the reply (or ERROR) to `req`, if one was sent.
    std::optional<tp::reply> reply(uint64_t req, const std::string& client = "client");
    // request() then reply(); fails the test if no reply came in that turn.
    tp::reply call(std::string_view command, tp::request rq, const std::string& client = "client");
    std::vector<std::string> submit(std::vector<tp::task_spec> tasks, const std::string& client = "client");
    std::string submit(const tp::task_spec& task, const std::string& client = "client");
    // Submits `task`, which `w` must be dispatched at once, and answers it
    // with `status` (ok, fail, retry...) and `error`; returns its id.
    std::string run_once(sim_worker& w, const tp::task_spec& task, const std::string& status,
                         const std::string& error = "");
    tp::task_info status(const std::string& id);
    // The DONE pushes to `client` since the last call.
    std::vector<tp::reply> done(const std::string& client = "client");

    // ---- workers ----
    // A worker that says HELLO now. One with the id of an earlier one is its
    // new process: the earlier object no longer answers HEARTBEATs.
    sim_worker& connect_worker(uint32_t slots, std::vector<tp::handler_info> handlers, worker_options o = {});
    // Messages to it are unroutable from now on (the loop tells the engine).
    void disconnect(const std::string& peer) { gone_.insert(peer); }

    // The engine refuses new work for `ms` from now (as after a failed
    // store write), saying `why`.
    void hold_new_work(int64_t ms, std::string why) { engine_->hold_new_work(now_ + ms, std::move(why)); }
    // The metrics snapshot the engine would publish now.
    std::shared_ptr<const tb::metrics_snapshot> metrics() {
        tb::metrics_hub hub;
        engine_->publish_metrics(hub);
        return hub.latest();
    }

    // ---- what the engine sent ----
    // Takes the messages to `peer` with `command` (any if empty), oldest first.
    std::vector<sent> take(const std::string& peer, std::string_view command = {});
    // Subscribes the events socket to `prefix` (kept across restart()).
    void subscribe(const std::string& prefix);
    // Takes the events whose topic starts with `prefix`, oldest first.
    std::vector<sim_event> events(std::string_view prefix = {});

    // A new engine recovering from the same store, as after a crash between
    // two turns, `down_ms` later: what the old one held in memory (workers,
    // parked STATUS requests) is gone; workers say HELLO again.
    void restart(int64_t down_ms = 0);
    // The same with another configuration (as an operator would edit broker.ini).
    void restart_with(tb::broker_config cfg, int64_t down_ms = 0);

private:
    friend class sim_worker;
    void turn();
    void keep(std::vector<tb::out_message> messages);
    void answer_heartbeats(std::size_t first);

    tb::broker_config cfg_;  // the engine holds a reference: declared before it
    std::shared_ptr<spdlog::logger> log_;
    std::unique_ptr<tb::store> store_;
    std::unique_ptr<tb::engine> engine_;
    int64_t now_ = sim_epoch_ms;
    uint64_t next_req_ = 1;
    std::vector<std::pair<tb::target, tp::incoming>> inbox_;
    std::vector<sent> sent_;
    std::vector<sim_event> events_;
    std::vector<std::string> subscriptions_;
    std::set<std::string> gone_;
    std::deque<sim_worker> workers_;  // stable addresses
};

}  // namespace tmtest
