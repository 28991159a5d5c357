// taskmill/client/client.hpp -- the C++ client of a taskmill broker.
//
// A `client` talks to the broker's frontend (ROUTER) through one DEALER
// socket owned by a background I/O thread: ZeroMQ sockets belong to one
// thread, so every public call hands its request to that thread through a
// queue and an inproc wakeup, and waits for the reply matched by its `req`.
// All member functions of `client` and `task_handle` are thread-safe.
//
// Failures are values (taskmill::result): a broker that does not answer
// within `request_timeout` gives errc::unavailable; the broker's own error
// replies come back with the broker's errc (invalid_argument, not_found, ...).
//
// Broker restarts: the DEALER reconnects by itself. A request in flight when
// the broker went away is NOT resent (a resent SUBMIT without a key could run
// a task twice); it fails with errc::unavailable at its deadline, and the
// next call goes to the restarted broker. DONE pushes are best effort, so a
// handle that missed its DONE finds out through STATUS (see task_handle::get).
//
// A broker cluster (docs/CLUSTER.md): give every member, comma-separated
// ("tcp://a:5555,tcp://b:5555,tcp://c:5555"). The client talks to one at a
// time and follows the leader: a member's not_leader answer sends it to the
// leader that member names; silence (a PING unanswered for failover_after)
// or an `unavailable` answer sends it to the next member. Requests still
// waiting are then sent again, within their deadline, so a call made during
// a failover succeeds once a leader serves. With several endpoints every
// submitted task without a key gets one ("auto:" and 32 hex digits), so a
// SUBMIT sent twice makes one task. Requests other than SUBMIT may take
// effect twice: a RETRY repeated after it took effect answers conflict, and
// a bulk verb may start a second job that finds nothing left to do. With one
// endpoint only not_leader is followed (a member that answers it did nothing).
#pragma once

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <taskmill/client/types.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::client {

namespace detail {
class core;
struct handle_state;
struct handle_access;
}  // namespace detail

inline constexpr const char* default_endpoint = "tcp://127.0.0.1:5555";

struct client_options {
    // One endpoint, or a cluster's members comma-separated (see the top of
    // this file). Empty = $TASKMILL_BROKER, else default_endpoint.
    std::string endpoint;
    // How long a request waits for its reply before failing with unavailable.
    milliseconds request_timeout{5000};
    // Tasks per SUBMIT frame; larger batches are split.
    std::size_t max_batch = 1000;
    // Longest STATUS long-poll (wait_ms) a waiting handle asks for at once.
    milliseconds max_long_poll{10000};
    // CURVE (all three Z85, 40 characters): the broker's public key and
    // this client's key pair. Empty = plain TCP.
    std::string curve_server_key = {};
    std::string curve_public_key = {};
    std::string curve_secret_key = {};
    // Submits are refused (errc::unknown_handler) instead of accepted with
    // a warning (task_handle::warnings) when no worker has offered a task's
    // handler, or its pinned version, recently (the broker's
    // handler-memory). The whole frame of a batch is refused.
    bool strict = false;
    // Several endpoints: how long the member in use may leave a PING
    // unanswered, while requests or watched tasks wait, before the client
    // moves to the next member. A PING goes after a quarter of it without
    // a word from the member.
    milliseconds failover_after{500};
};

// The endpoint a client_options resolves to (explicit, env, default).
std::string resolve_endpoint(const std::string& explicit_endpoint);

// A submitted task. Cheap to copy (shared state). Tasks are submitted with
// notify=true, so the broker pushes DONE when they finish; the handle
// records it. Valid after the client is destroyed, but then only ready(),
// id() and a final state already received work; the rest give unavailable.
class task_handle {
public:
    using callback = std::function<void(const task_info&)>;

    task_handle() = default;

    const std::string& id() const;
    // What the broker warned about when it accepted the task (the SUBMIT
    // frame that carried it), e.g. that no worker has offered its handler
    // recently, so it may wait for good. Empty = nothing.
    const std::vector<std::string>& warnings() const;
    // True once a final state (SUCCEEDED FAILED CANCELLED EXPIRED) is known.
    bool ready() const;
    // Waits for the final state, at most `timeout` (nullopt = no limit).
    // Returns the task whatever final state it reached (check state /
    // succeeded()). Errors: conflict when the timeout passes first,
    // unavailable when the broker stops answering, not_found if the broker
    // does not know the task. Waits for DONE and, at the same time, long-polls
    // STATUS (wait_ms), which covers a DONE lost to a broker restart.
    result<task_info> get(std::optional<milliseconds> timeout = std::nullopt) const;
    // Registers callbacks for the final state: on_success for SUCCEEDED,
    // on_failure for FAILED, CANCELLED or EXPIRED. They run once, on the
    // client's callback thread (never the I/O thread, so they may call the
    // client), also when the task had already finished. They fire on DONE or
    // on any STATUS reply showing a final state (get(), status()).
    // Exceptions they throw are swallowed. The client keeps the handle's
    // state until the callbacks have run, so the caller may drop the handle.
    void then(callback on_success, callback on_failure = {}) const;
    // Asks the broker for the current state now (one STATUS).
    result<task_info> status() const;

private:
    friend struct detail::handle_access;
    explicit task_handle(std::shared_ptr<detail::handle_state> s) : state_(std::move(s)) {}
    std::shared_ptr<detail::handle_state> state_;
};

class client {
public:
    // Starts the I/O thread and connects (ZeroMQ connects lazily: an absent
    // broker is only noticed when a request times out). Throws
    // std::runtime_error if the endpoint is malformed.
    explicit client(client_options options = {});
    explicit client(const std::string& endpoint);
    ~client();
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    const std::string& endpoint() const { return endpoint_; }

    // Submits and waits for the broker's durable ack: the returned handle's
    // task is committed. A batch goes out as one SUBMIT per max_batch tasks,
    // all sent before the first ack is awaited. If a frame fails, the result
    // is that error; tasks of frames already acked stay submitted (the
    // message says how many).
    result<task_handle> submit(const task_options& task);
    result<std::vector<task_handle>> submit(const std::vector<task_options>& tasks);
    // The same without blocking, for pipelined producers. The future becomes
    // ready on the I/O thread when every frame of the batch is acked.
    std::future<result<std::vector<task_handle>>> submit_async(std::vector<task_options> tasks);

    // A handle for a task submitted elsewhere; it will not see DONE (the
    // broker notifies the submitter), so get() relies on STATUS.
    task_handle handle(const std::string& id);

    result<task_info> status(const std::string& id);
    // Waits until the task reaches a final state; errors as task_handle::get.
    result<task_info> wait(const std::string& id, std::optional<milliseconds> timeout = std::nullopt);
    result<change_info> cancel(const std::string& id);
    result<change_info> cancel_tag(const std::string& tag);
    result<change_info> retry(const std::string& id);
    result<std::vector<task_info>> tasks(const task_filter& filter = {});
    // tasks(), with the cursor of the page that follows.
    result<task_page> tasks_page(const task_filter& filter = {});
    result<stats_info> stats();
    result<std::vector<worker_info>> workers();
    // What the broker connected to knows of its cluster; any member answers.
    result<cluster_info> cluster_status();
    // Membership changes, made by the cluster's leader one at a time
    // (docs/CLUSTER.md); each answers once the change is done, with the
    // leader's view then. errc::conflict while another is under way.
    // Adds member `id` (its Raft transport, IPv4:PORT, started with
    // join = true) as a voter once it has caught up with the leader's log.
    result<cluster_info> cluster_add(uint64_t id, const std::string& address);
    // Removes a member that does not lead (transfer leadership first).
    result<cluster_info> cluster_remove(uint64_t id);
    // Hands leadership to voter `id`; 0: an up-to-date voter. The
    // view is the old leader's, now following.
    result<cluster_info> cluster_transfer(uint64_t id = 0);

    // ---- queue control and flow limits ----
    // Every queue the broker knows (from its tasks, broker.ini and run-time
    // settings) with its counts, pause and limits.
    result<std::vector<queue_stats>> queues();
    // A paused queue accepts submits and dispatches nothing until resumed;
    // the pause is kept across broker restarts.
    result<queue_stats> pause(const std::string& queue);
    result<queue_stats> resume(const std::string& queue);
    // Changes the flow limits of a queue, or of a handler ("ns.name") in
    // every queue; kept across restarts, and wins over broker.ini.
    result<queue_stats> limit_queue(const std::string& queue, const limit_change& change);
    result<handler_stats> limit_handler(const std::string& handler, const limit_change& change);
    // ---- operator verbs (docs/PROTOCOL.md, "Operating queues") ----
    // Each starts a bulk job in the broker and returns it as the broker's
    // first slice left it (often done already); wait_job() follows it.
    // Cancels every QUEUED, PENDING and RETRYING task of `queue`.
    result<job_info> purge(const std::string& queue);
    // Cancels the unfinished tasks matching `filter` (running ones are
    // asked to stop).
    result<job_info> cancel(const bulk_filter& filter);
    // Retries the FAILED, CANCELLED and EXPIRED tasks matching `filter`.
    result<job_info> retry(const bulk_filter& filter);
    // Deletes finished tasks: one id (not_found, or conflict when it is
    // unfinished or a workflow's step), several ids, or a filter; a job
    // skips the unfinished ones and workflow steps.
    result<job_info> remove(const std::vector<std::string>& ids);
    result<job_info> remove(const bulk_filter& filter);
    // Queues a PENDING or RETRYING task now (conflict otherwise).
    result<change_info> run_now(const std::string& id);
    result<job_info> job(uint64_t id);
    // Polls the job until it is done, at most `timeout` (then conflict).
    result<job_info> wait_job(uint64_t id, std::optional<milliseconds> timeout = std::nullopt);

    // Round trip time of a PING; `timeout` overrides request_timeout.
    result<milliseconds> ping(std::optional<milliseconds> timeout = std::nullopt);

private:
    std::string endpoint_;
    std::shared_ptr<detail::core> core_;
};

}  // namespace taskmill::client
