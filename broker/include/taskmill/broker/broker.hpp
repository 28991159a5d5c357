// taskmill/broker/broker.hpp -- the broker: sockets, loop, task lifecycle.
//
// A broker binds a frontend ROUTER (clients), a backend ROUTER (workers and
// host supervisors) and an events PUB socket, then run() serves until stop().
// Each loop turn drains a bounded batch from each socket, applies it to one
// store write transaction, commits, and only then sends replies, DONEs and
// events (never an ack before its commit). WELCOMEs and DISPATCHes leave
// before the commit, since neither promises anything durable
// (docs/DESIGN.md, "What leaves before the commit").
// Threading: construct on any thread; run() on one thread; stop() from any
// thread or a signal handler (it only writes to a pipe).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <taskmill/broker/queue_config.hpp>
#include <taskmill/broker/schedule.hpp>
#include <taskmill/broker/store.hpp>

namespace spdlog {
class logger;
}
namespace zmq {
class context_t;
}

namespace taskmill::broker {

// A member of a broker cluster (docs/CLUSTER.md).
struct cluster_member {
    uint64_t id = 0;
    std::string address;  // its Raft transport, IPv4:port
};

struct cluster_config {
    uint64_t node_id = 0;  // 0 = a single broker, no cluster
    std::string raft_address;
    std::vector<cluster_member> peers;  // every member, this one too
    int64_t election_timeout_ms = 300;
    // This member joins a running cluster (whose leader adds it: taskmill
    // cluster add) instead of writing the first configuration from `peers`.
    bool join = false;
};

struct broker_config {
    std::string data_dir = "taskmill-data";
    std::string frontend = "tcp://*:5555";
    std::string backend = "tcp://*:5556";
    std::string events = "tcp://*:5557";  // empty = no events socket
    durability mode = durability::sync;
    int64_t heartbeat_ms = 1000;
    int64_t liveness_ms = 5000;
    uint64_t map_size_mb = 8192;
    std::size_t max_body_bytes = 16u << 20;
    int32_t default_retries = 3;
    uint32_t max_crashes = 3;
    int64_t backoff_base_ms = 1000;
    double backoff_factor = 2.0;
    int64_t backoff_cap_ms = 60000;
    int64_t lease_grace_ms = 2000;  // added to timeout + liveness for the lease
    std::size_t batch = 512;        // messages drained per socket per turn
    // TASKS reads at most this many stored tasks per request, so a filter
    // that matches little cannot hold the loop for long; the reply's `next`
    // lets the client go on (the client library does it for its caller).
    uint32_t list_scan_budget = 20000;
    bool write_endpoints_file = true;  // DATA_DIR/endpoints.json
    // HTTP (docs/HTTP.md): "ADDR:PORT" (port 0 = pick), empty = off.
    std::string http;
    std::vector<std::string> http_tokens;    // "NAME:ROLE:SECRET", ROLE = read | write
    std::string http_anonymous = "none";     // role without a token: none | read | write
    std::vector<schedule_config> schedules;  // [schedule.NAME] sections
    retention_config retention;              // retention-succeeded ... (queue_config.hpp)
    std::vector<queue_config> queues;        // [queue.NAME] sections
    std::vector<handler_config> handlers;    // [handler.NAME] sections
    // The submit guard: a SUBMIT naming a handler (or pinned version) that
    // no worker has offered for this long gets a warning, or is refused
    // when strict (handler-memory).
    int64_t handler_memory_ms = 7LL * 86'400'000;
    // CURVE on frontend and backend (empty secret key = plain TCP). Keys are
    // Z85 text; an allow entry "*" admits any key that completes CURVE.
    std::string curve_public_key;
    std::string curve_secret_key;
    std::vector<std::string> allow_clients;
    std::vector<std::string> allow_hosts;
    // ZMQ_MAXMSGSIZE on frontend/backend: a peer sending a larger frame is
    // disconnected before the frame is held. 0 = derived, see frame_limit().
    std::size_t max_frame_bytes = 0;
    // What one client can make the broker hold (docs/OPERATIONS.md, "What
    // one peer can take"). Replies to a client that does not read them
    // queue up to client_hwm, then are dropped; STATUS requests with
    // wait_ms past the caps are answered `unavailable`.
    int client_hwm = 10000;
    std::size_t max_waits_per_client = 10000;
    std::size_t max_waits = 100000;
    bool allow_empty_store = false;  // see lmdb_options::allow_empty
    cluster_config cluster;
};

// taskmill-broker --check-store: opens the store in cfg.data_dir as the
// broker would (lock, file size, every table read end to end; throws
// store_busy or store_damaged like open_lmdb_store) and decodes every task
// record. Returns a one-paragraph report; errc::corrupt with the report when
// some records do not decode.
result<std::string> check_store(const broker_config& cfg);

// The frame limit the broker applies: max_frame_bytes, or when that is 0,
// max_body_bytes plus room for a body a little over the limit to be read
// and refused with too_large (protocol::frame_limit: + 1 MiB).
std::size_t frame_limit(const broker_config& cfg) noexcept;

// The endpoints the broker is bound to, in connectable form
// (port 0 resolved, "*" / 0.0.0.0 shown as 127.0.0.1).
struct bound_endpoints {
    std::string frontend;
    std::string backend;
    std::string events;
    std::string http;  // "http://127.0.0.1:PORT" when HTTP is on
};

class broker {
public:
    // Opens the LMDB store in cfg.data_dir, recovers its tasks, binds the
    // sockets and writes endpoints.json. Throws std::runtime_error on any
    // failure (bad endpoint, store cannot open). `ctx` may be given so that
    // tests can use inproc:// endpoints; it must outlive the broker.
    broker(broker_config cfg, std::shared_ptr<spdlog::logger> log, zmq::context_t* ctx = nullptr);
    // Same, over a caller-provided store (e.g. make_memory_store()).
    broker(broker_config cfg, std::unique_ptr<store> st, std::shared_ptr<spdlog::logger> log,
           zmq::context_t* ctx = nullptr);
    ~broker();
    broker(const broker&) = delete;
    broker& operator=(const broker&) = delete;

    // Serves until stop(): finishes the current turn, commits, returns.
    // Throws std::runtime_error only on a fatal store failure.
    void run();
    // Asks run() to return. Thread-safe and async-signal-safe.
    void stop() noexcept;

    const bound_endpoints& endpoints() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace taskmill::broker
