// The engine behind taskmill::client: the I/O thread that owns the DEALER
// socket, the table of requests awaiting replies, and the shared state of
// task handles.
//
// Threads: callers hand requests over with send() (any thread): the request
// goes into inbox_ under mu_ and a byte goes down an inproc PAIR to wake the
// I/O thread, which alone touches the DEALER, pending_ and watched_.
// Completions run on the I/O thread and must be short and must not block on
// the client; user callbacks go through callbacks_ instead.
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
#include <thread>
#include <unordered_map>
#include <vector>

#include <zmq.hpp>

#include <taskmill/client/client.hpp>
#include <taskmill/protocol/messages.hpp>

#include "callback_thread.hpp"

namespace taskmill::client::detail {

using steady = std::chrono::steady_clock;
using completion = std::function<void(result<protocol::reply>)>;

// What a task_handle shares with the I/O thread and with other copies.
struct handle_state {
    std::string id;
    std::weak_ptr<core> owner;
    std::mutex mu;
    std::condition_variable cv;
    std::optional<task_info> final;  // set once, by whoever sees it first
    std::vector<std::pair<task_handle::callback, task_handle::callback>> callbacks;

    // Records `t` if it is final and nothing was recorded yet; wakes waiters
    // and queues the callbacks.
    void complete(const task_info& t);
    // Queues one callback pair for the final state `t`.
    void fire(const task_info& t, task_handle::callback ok, task_handle::callback ko);
};

// Builds task_handles from their state (the constructor is private).
struct handle_access {
    static task_handle make(std::shared_ptr<handle_state> s) { return task_handle(std::move(s)); }
    static const std::shared_ptr<handle_state>& state(const task_handle& h) { return h.state_; }
};

class core : public std::enable_shared_from_this<core> {
public:
    core(std::string endpoint, const client_options& options);
    // A handle with then() callbacks waiting is kept alive here until its
    // task is final, so dropping every copy of it loses no callback.
    void pin(const std::shared_ptr<handle_state>& s);
    void unpin(const std::string& id);
    ~core();
    core(const core&) = delete;
    core& operator=(const core&) = delete;

    const client_options& options() const { return options_; }

    // Sends `command` with body `r` (its req is assigned here); `done` runs
    // on the I/O thread with the reply, or unavailable after `timeout`.
    void send(std::string command, protocol::request r, milliseconds timeout, completion done);
    // send() and wait for the outcome.
    result<protocol::reply> call(std::string command, protocol::request r, std::optional<milliseconds> timeout = {});
    // I/O thread only (from a completion): route DONE for s->id to `s`.
    void watch(const std::shared_ptr<handle_state>& s);
    // Runs `fn` on the callback thread (inline if the client is closing).
    void post_callback(std::function<void()> fn);
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
        completion done;
    };

    void run();
    void take_inbox();
    void read_replies();
    void on_reply(const std::string& command, const std::string& body);
    void on_done(const protocol::reply& r);
    void expire(steady::time_point now);
    int poll_timeout_ms(steady::time_point now) const;
    void prune_watched();

    client_options options_;
    zmq::context_t ctx_{1};
    zmq::socket_t dealer_;    // I/O thread only
    zmq::socket_t wake_rx_;   // I/O thread only
    zmq::socket_t wake_tx_;   // guarded by mu_

    std::mutex mu_;
    std::vector<outgoing> inbox_;  // guarded by mu_
    bool stopping_ = false;        // guarded by mu_

    uint64_t next_req_ = 1;                            // I/O thread only
    std::map<uint64_t, pending_request> pending_;      // I/O thread only
    std::unordered_map<std::string, std::weak_ptr<handle_state>> watched_;  // I/O thread only
    std::mutex pin_mu_;
    std::unordered_map<std::string, std::shared_ptr<handle_state>> pinned_;  // under pin_mu_
    std::size_t prune_at_ = 1024;

    callback_thread callbacks_;
    std::thread io_;
};

// The failure for a request whose reply did not come in time.
failure timed_out(const std::string& command, milliseconds timeout);

}  // namespace taskmill::client::detail
