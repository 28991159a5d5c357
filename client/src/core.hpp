// The engine behind taskmill::client: the I/O thread that owns the DEALER
// socket, the table of requests awaiting replies, and the shared state of
// task handles.
//
// Threads: callers hand requests over with send() (any thread): the request
// goes into inbox_ under mu_ and a byte goes down an inproc PAIR to wake the
// I/O thread, which alone touches the DEALER, pending_ and watched_.
// Completions run on the I/O thread and must be short and must not block on
// the client; user callbacks go through callbacks_ instead.
//
// Following a cluster's leader (docs/CLUSTER.md): the DEALER is connected to
// one endpoint at a time. A `not_leader` answer moves it to the leader the
// member named (or to the next endpoint of the list); with several
// endpoints, so does silence (a PING unanswered for failover_after) and an
// `unavailable` answer. Every request still waiting is then sent again, as
// it was, to the new endpoint: its req is unchanged and its deadline too.
// SUBMITs of a client with several endpoints carry keys (client.cpp), so a
// resent SUBMIT that had been committed returns the same task. The DEALER
// keeps one routing id across moves, the one the broker keeps with each task
// for DONE, so the new leader pushes DONE to this client; tasks watched at a
// move are asked about once (STATUS) in case their DONE was lost with it.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include <taskmill/client/client.hpp>
#include <taskmill/protocol/endpoints.hpp>
#include <taskmill/protocol/messages.hpp>

#include "callback_thread.hpp"

namespace taskmill::client::detail {

using steady = std::chrono::steady_clock;
using completion = std::function<void(result<protocol::reply>)>;

// What a task_handle shares with the I/O thread and with other copies.
//
// Ownership: the I/O thread's table of watched tasks holds a state until its
// DONE arrives; the handles given to the caller share a second, outer
// reference (see make_watched_handle) whose release tells the I/O thread to
// forget a task nobody waits for any more. So no table is ever scanned and
// nothing needs a weak_ptr.
struct handle_state {
    std::string id;
    std::weak_ptr<core> owner;
    std::mutex mu;
    std::condition_variable cv;
    std::optional<task_info> final;  // set once, by whoever sees it first; never changed after
    std::vector<std::pair<task_handle::callback, task_handle::callback>> callbacks;  // under mu
    std::atomic<bool> watched{false};   // in the I/O thread's table (set and cleared by that thread)
    std::vector<std::string> warnings;  // the SUBMIT reply's; set before the handle is handed out
};

// Records `t` in `s` if it is final and nothing was recorded yet; wakes
// waiters and queues the callbacks: into `out` when given (the caller posts
// them), else straight to the callback thread.
void complete(const std::shared_ptr<handle_state>& s, task_info t, std::vector<callback_job>* out = nullptr);
// Queues one callback pair for the final state already in `s`.
void fire(const std::shared_ptr<handle_state>& s, task_handle::callback ok, task_handle::callback ko);

// Builds task_handles from their state (the constructor is private).
struct handle_access {
    static task_handle make(std::shared_ptr<handle_state> s) { return task_handle(std::move(s)); }
    static const std::shared_ptr<handle_state>& state(const task_handle& h) { return h.state_; }
};

class core : public std::enable_shared_from_this<core> {
public:
    // `endpoints`: one, or a comma-separated list of a cluster's members.
    core(const std::string& endpoints, const client_options& options);
    ~core();
    core(const core&) = delete;
    core& operator=(const core&) = delete;

    const client_options& options() const { return options_; }
    // Requests may be sent twice (several endpoints): SUBMITs need keys.
    bool resends() const { return resends_; }

    // Sends `command` with body `r` (its req is assigned here); `done` runs
    // on the I/O thread with the reply, or unavailable after `timeout`.
    void send(std::string command, protocol::request r, milliseconds timeout, completion done);
    // send() and wait for the outcome.
    result<protocol::reply> call(std::string command, protocol::request r, std::optional<milliseconds> timeout = {});
    // I/O thread only (from a completion): route DONE for s->id to `s`,
    // which the table keeps until then. `expected` more are coming (reserve).
    void watch(std::shared_ptr<handle_state> s, std::size_t expected = 0);
    // Any thread: the last handle of a watched state is gone and no then()
    // waits on it, so the I/O thread may forget it (it does so on its next turn).
    void forget(std::shared_ptr<handle_state> s);
    // Runs `jobs` on the callback thread (inline if the client is closing).
    void post_callbacks(std::vector<callback_job>& jobs);
    // Fails everything outstanding and joins the threads. Idempotent.
    void stop();

private:
    struct outgoing {
        std::string command;
        protocol::request req;
        milliseconds timeout;
        completion done;
    };
    struct pending_request {
        steady::time_point deadline;
        std::string command;  // named in the timeout error
        std::string body;     // as sent, req included: sent again after a move
        milliseconds timeout;
        completion done;
    };

    void run();
    void connect(const std::string& endpoint);
    void send_now(std::string command, protocol::request r, milliseconds timeout, completion done);
    void take_inbox();
    void read_replies();
    void on_reply(const std::string& command, const std::string& body);
    void on_done(protocol::reply& r);
    void on_done_task(protocol::task_info&& t);
    void take_forgotten();
    void expire(steady::time_point now);
    int poll_timeout_ms(steady::time_point now) const;
    // Following the leader (see the top of this file).
    void move_soon(const std::string& leader);
    void move_now(const std::string& leader);
    void check_liveness(steady::time_point now);
    void recheck_watched();

    // When check_liveness or a paced move has something to do next.
    std::optional<steady::time_point> next_liveness_check() const;

    client_options options_;
    bool resends_;
    zmq::context_t ctx_{1};
    zmq::socket_t dealer_;   // I/O thread only
    zmq::socket_t wake_rx_;  // I/O thread only
    zmq::socket_t wake_tx_;  // guarded by mu_

    std::mutex mu_;
    std::vector<outgoing> inbox_;  // guarded by mu_
    bool stopping_ = false;        // guarded by mu_

    // The rest: I/O thread only.
    protocol::endpoint_ring ring_;
    std::string routing_id_;          // kept across moves: DONE finds us
    steady::time_point quiet_since_;  // last message heard, or when requests began waiting
    uint64_t probe_req_ = 0;          // the PING asking a silent endpoint, 0 = none
    steady::time_point probe_sent_;
    steady::time_point last_move_;
    std::optional<steady::time_point> move_at_;  // a move put off (moves are paced)
    std::string move_to_;                        // its target ("" = the next endpoint)
    bool recheck_due_ = false;                   // ask about watched tasks once the new endpoint answers
    std::vector<std::string> recheck_;           // ids still to ask about

    uint64_t next_req_ = 1;                        // I/O thread only
    std::map<uint64_t, pending_request> pending_;  // I/O thread only
    // Keyed by a view of the state's own id, which the value keeps alive.
    std::unordered_map<std::string_view, std::shared_ptr<handle_state>> watched_;  // I/O thread only
    std::vector<callback_job> ready_callbacks_;  // I/O thread only: filled by one read, posted at once
    std::mutex forget_mu_;
    std::vector<std::shared_ptr<handle_state>> forgotten_;  // under forget_mu_

    callback_thread callbacks_;
    std::thread io_;
};

// A handle for a state the I/O thread watches: when its last copy goes and
// no then() callback waits, the state is handed to core::forget.
task_handle make_watched_handle(std::shared_ptr<handle_state> s);

// The failure for a request whose reply did not come in time.
failure timed_out(const std::string& command, milliseconds timeout);

}  // namespace taskmill::client::detail
