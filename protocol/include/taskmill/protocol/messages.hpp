// taskmill/protocol/messages.hpp -- the bodies of wire protocol v1.
//
// Every ZeroMQ message is [signature, command, body] after the routing
// envelope (see frame.hpp); the body is one msgpack map with string keys.
// These structs are that map, field for field: docs/PROTOCOL.md is written
// from this file. Unset optionals and empty strings/vectors are left out of
// the encoded map; decoding ignores unknown keys, so fields can be added
// without breaking older peers. Plain value types; no threading concerns.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <taskmill/protocol/result.hpp>
#include <taskmill/protocol/wire.hpp>  // the command names, for users of these bodies

namespace taskmill::protocol {

// ---- client <-> broker (frontend) ----

// msgpack nil: the payload of a task submitted without one.
inline constexpr std::string_view msgpack_nil = "\xc0";

// One task as submitted. Unset fields take the handler's default, then the
// broker's. `payload` is msgpack bytes, carried as a msgpack bin.
struct task_spec {
    std::string handler;                // "ns.name", "ns.name@MAJOR" or "ns.name@X.Y.Z"
    std::string payload;                // msgpack (bin); empty = none: the broker stores nil (0xc0)
    std::string queue;                  // empty = handler default, else "default"
    std::optional<int32_t> priority;    // 0..9, higher first; default 0
    std::optional<int32_t> retries;     // retries after the first attempt
    std::optional<int64_t> timeout_ms;  // per attempt
    std::optional<int64_t> ttl_ms;      // EXPIRED if not started within this
    std::optional<int64_t> delay_ms;    // not before now + delay
    std::optional<int64_t> eta_ms;      // not before this unix time (ms)
    std::optional<int64_t> backoff_base_ms;
    std::optional<double> backoff_factor;
    std::optional<int64_t> backoff_cap_ms;
    std::vector<std::string> tags;
    std::string key;      // idempotency key
    std::string parent;   // parent task id (set by SPAWN)
    bool notify = false;  // push DONE to the submitter when finished
    // How long the task is kept once finished, then deleted; 0 = forever.
    // Unset = the queue's retention for its final state, else the broker's.
    std::optional<int64_t> keep_ms;
};

// A request from a client. Which fields a command reads is listed in
// docs/PROTOCOL.md; `req` is echoed in the reply to match them up.
struct request {
    uint64_t req = 0;
    std::vector<task_spec> tasks;  // SUBMIT
    std::string id;                // STATUS, CANCEL, RETRY
    std::string tag;               // CANCEL by tag, TASKS filter
    int64_t wait_ms = 0;           // STATUS: wait up to this long for a final state
    std::string state;             // TASKS filter (upper-case state name)
    std::string queue;             // TASKS filter
    uint32_t limit = 0;            // TASKS: at most this many (0 = 100)
    std::string before;            // TASKS: only tasks older than this id (a page's `next`)
    std::string data;              // WF_SUBMIT: the workflow as a msgpack map (bin)
    // Filters of TASKS and of the bulk verbs (CANCEL, RETRY, DELETE without
    // an id): with `state`, `queue` and `tag` above, a task matches when it
    // matches every filter that is set.
    std::string handler;   // handler name, without any @version
    int64_t since_ms = 0;  // unix ms, 0 = none: see docs/PROTOCOL.md for the time compared
    int64_t until_ms = 0;
    bool all = false;  // bulk verbs: no filter set means every task (refused otherwise)
    // SUBMIT: refuse (unknown_handler) instead of warning when no worker
    // has offered the handler (or the pinned version) recently.
    bool strict = false;
    std::vector<std::string> ids;  // DELETE: these tasks
    // LIMIT (of `queue` or `handler`): tasks started per second (0 = no
    // limit), the burst of starts allowed above it, and the cap on running
    // tasks (0 = none). Unset = leave as it is.
    std::optional<double> rate;
    std::optional<uint32_t> burst;
    std::optional<uint32_t> max_running;
    uint64_t job = 0;  // JOB: the job asked about
    // SCHEDULE_TRIGGER, SCHEDULE_PAUSE, SCHEDULE_RESUME: the schedule.
    std::string name;
    // CLUSTER_ADD, CLUSTER_REMOVE, CLUSTER_TRANSFER: the member's id (for
    // a transfer, 0 = an up-to-date voter) and, to add, its Raft
    // address (IPv4:PORT).
    uint64_t member = 0;
    std::string address;
};

struct progress_info {
    double fraction = 0;
    std::string note;
};

// One attempt of a task, as STATUS shows it (the last ones are kept).
struct attempt_info {
    uint32_t attempt = 0;
    std::string worker;
    int64_t started_ms = 0;
    int64_t finished_ms = 0;  // 0 = still running
    std::string outcome;      // ok retry fail cancelled timeout lost expired ...
    std::string error;
    std::optional<int64_t> error_code;
    std::string version;  // plugin version that ran it
};

// The state of one task, as STATUS, TASKS and DONE return it.
struct task_info {
    std::string id;
    std::string handler;
    std::string queue;
    int32_t priority = 0;
    std::string state;  // PENDING QUEUED RUNNING RETRYING SUCCEEDED ...
    uint32_t attempts = 0;
    int32_t max_retries = 0;
    std::string error;  // last error; empty = none
    std::optional<progress_info> progress;
    std::optional<std::string> result;  // msgpack (bin) once SUCCEEDED, if the handler set one
    int64_t created_ms = 0;             // unix ms; 0 = not yet
    int64_t started_ms = 0;
    int64_t finished_ms = 0;
    int64_t eta_ms = 0;
    std::string parent;
    std::vector<std::string> tags;
    std::vector<std::string> children;
    std::string worker;  // last worker that ran it
    // The code the handler set with its error (tm_error.code) on the last
    // attempt that ended with one; nullopt = none.
    std::optional<int64_t> error_code;
    // STATUS only (not TASKS or DONE): the input (msgpack, bin; absent when
    // it would not fit the reply) and its size in bytes.
    std::optional<std::string> payload;
    uint64_t payload_size = 0;
    std::vector<attempt_info> history;  // STATUS only: oldest first
    // When a finished task is to be deleted (unix ms); 0 = kept for ever,
    // or not finished.
    int64_t delete_at_ms = 0;
    // STATUS only: bytes of the last checkpoint the handler saved; 0 = none.
    uint64_t checkpoint_size = 0;
};

struct handler_info {
    handler_info() = default;
    handler_info(std::string n, std::string v, std::string p)
        : name(std::move(n)), version(std::move(v)), plugin(std::move(p)) {}

    std::string name;     // "ns.name"
    std::string version;  // the plugin's semantic version
    std::string plugin;   // the plugin's name
    // The handler's own defaults (tm_handler), applied by the broker to a
    // submit that leaves them unset. Empty / nullopt = no default of its own.
    std::string default_queue;
    std::optional<int64_t> default_timeout_ms;
    std::optional<int32_t> default_retries;
    uint32_t flags = 0;            // TM_HANDLER_* bits, for display
    uint32_t payload_version = 0;  // schema version of the payload it reads
};

struct worker_info {
    std::string id;
    std::string host;
    int64_t pid = 0;
    uint32_t slots = 0;
    uint32_t busy = 0;
    uint32_t generation = 0;
    std::vector<std::string> queues;
    std::vector<handler_info> handlers;
    int64_t last_seen_ms = 0;
    // Slots and prefetch apart: `slots` is the worker's concurrency (tasks
    // it runs at once), `prefetch` how many more it accepts to wait for a
    // free slot; `busy` counts the tasks it holds (running or waiting),
    // `running` those a slot has started.
    uint32_t prefetch = 0;
    uint32_t running = 0;
    // The worker process's resident memory, from its last HEARTBEAT; 0 when
    // it has not reported it (older workers).
    uint64_t rss_bytes = 0;
};

// The flow limits of a queue or a handler (LIMIT, broker.ini [queue.NAME]
// and [handler.NAME]). 0 = no limit.
struct flow_limits {
    double rate = 0;           // tasks started per second
    uint32_t burst = 0;        // starts allowed at once above the rate (0 = max(1, rate))
    uint32_t max_running = 0;  // tasks running at once
};

struct queue_stats {
    std::string name;
    uint64_t ready = 0;    // waiting to be dispatched
    uint64_t delayed = 0;  // waiting for their ETA
    uint64_t running = 0;
    bool paused = false;  // PAUSE: dispatches nothing until RESUME
    flow_limits limits;
};

// A handler with limits of its own, as STATS shows it.
struct handler_stats {
    std::string name;
    uint64_t running = 0;
    flow_limits limits;
};

// A bulk operation (purge, cancel/retry/delete by filter) that the broker
// carries out in bounded slices over several loop turns; JOB reports it.
struct job_info {
    uint64_t id = 0;
    std::string kind;      // purge cancel retry delete
    std::string filter;    // what it applies to, in words
    std::string state;     // running done
    uint64_t matched = 0;  // tasks it has looked at that matched
    uint64_t changed = 0;  // tasks it cancelled, retried or deleted
    int64_t started_ms = 0;
    int64_t finished_ms = 0;  // 0 = running
};

struct stats_info {
    std::vector<queue_stats> queues;
    std::map<std::string, uint64_t> states;    // state name -> tasks in it
    std::map<std::string, uint64_t> counters;  // submitted, succeeded, failed, retried, ...
    uint32_t workers = 0;
    uint32_t slots = 0;
    uint32_t busy = 0;
    int64_t uptime_ms = 0;
    std::vector<handler_stats> handlers;  // handlers with limits
    // `slots` sums the workers' concurrency; `prefetch` their local queues;
    // `busy` the tasks dispatched (state RUNNING), `running` those a slot
    // has started (the rest wait in a worker's prefetch).
    uint32_t prefetch = 0;
    uint32_t running = 0;
};

// The reply to any client request (and the DONE push). Only the parts the
// command produces are present.
struct reply {
    uint64_t req = 0;
    bool ok = true;
    std::string error_code;            // errc name when !ok
    std::string error;                 // human-readable, when !ok
    std::string note;                  // e.g. "already finished" for a no-op cancel
    std::vector<std::string> ids;      // SUBMIT, CANCEL, RETRY
    std::optional<task_info> task;     // STATUS, DONE
    std::vector<task_info> tasks;      // TASKS
    std::vector<worker_info> workers;  // WORKERS
    std::optional<stats_info> stats;   // STATS
    std::string data;                  // WF_STATUS, SCHEDULES: a msgpack map (bin)
    std::string next;                  // TASKS: more may follow; ask again with before = next
    // SUBMIT: what the submitter should know, e.g. that no worker has
    // offered the handler recently (the task is queued all the same).
    std::vector<std::string> warnings;
    std::vector<queue_stats> queues;  // QUEUES
    std::optional<job_info> job;      // bulk verbs, JOB
    // not_leader: the leader's frontend endpoint, when this member knows it.
    std::string leader;
    // not_leader: the leader's HTTP API URL, when it serves one.
    std::string leader_http;
};

// ---- worker / supervisor <-> broker (backend) ----

// A task a worker holds (queued in it or running), by attempt.
struct held_task {
    std::string id;
    uint32_t attempt = 0;
};

struct hello {
    std::string worker;  // routing id, unique per worker process
    std::string host;
    int64_t pid = 0;
    uint32_t slots = 0;  // tasks it accepts at once (its credit)
    uint32_t generation = 0;
    std::vector<std::string> queues;  // empty = every queue
    std::vector<handler_info> handlers;
    uint32_t prefetch = 0;  // of `slots`, how many wait for a free slot
    // The routing id of the supervisor that may report this worker dead
    // (DEAD); empty = nobody may.
    std::string supervisor;
    // The tasks this worker already holds: a HELLO to a cluster's new leader
    // re-announces them, and the leader gives each back to it, lease and
    // all, when the task still waits for that attempt's outcome.
    std::vector<held_task> held;
};

struct welcome {
    int64_t heartbeat_ms = 0;  // how often to heartbeat
    int64_t liveness_ms = 0;   // silence after which the broker drops you
};

// One task handed to a worker.
struct work_item {
    std::string id;
    std::string handler;  // as submitted (may carry @version)
    std::string payload;  // msgpack (bin)
    uint32_t attempt = 1;
    int64_t timeout_ms = 0;  // 0 = none
    std::string parent;
    std::optional<std::string> checkpoint;  // last saved checkpoint (bin)
};

struct dispatch {
    std::vector<work_item> tasks;
};

// How an attempt ended, as a worker reports it.
struct outcome {
    std::string id;
    uint32_t attempt = 0;
    std::string status;                     // ok retry fail cancelled timeout
    std::string result;                     // msgpack (bin), for ok; empty = none
    std::string error;                      // for everything but ok
    std::optional<int64_t> retry_after_ms;  // for retry: the handler's own delay
    std::string version;                    // plugin version that ran it
    std::optional<int64_t> error_code;      // the handler's own tm_error.code, if it set one
    // How long the handler ran (slot start to return), in microseconds, as
    // the worker measured it; absent from older workers.
    std::optional<int64_t> run_us;
};

// Worker -> broker. `started`: ids of tasks a slot began since the previous
// RESULTS and that have no outcome in `items` (an outcome implies the
// start). A RESULTS may carry only `started`. Older brokers ignore it.
// `seq` numbers the worker's RESULTS (1, 2, ...); the broker's HEARTBEAT
// echoes the last one it read (control `req`), so the worker knows which
// outcomes it may forget and resends the others after a new WELCOME.
struct results {
    std::vector<outcome> items;
    std::vector<std::string> started;
    uint64_t seq = 0;
};

// Small backend messages share one body: each command reads its fields.
//   PROGRESS   id, fraction, note
//   CHECKPOINT req, id, data        -> reply CHECKPOINT {req, ok, error}
//   SPAWN      req, id (parent), tasks -> reply SPAWN {req, ok, ids, error}
//   CANCEL     ids, attempt         (broker -> worker; attempt 0 = whichever runs)
//   HEARTBEAT  ids, rss_bytes       (worker -> broker: every task it holds,
//                                   and its resident memory)
//              req                  (broker -> worker: last RESULTS seq read)
//   CREDIT     slots                (worker -> broker: new capacity)
//   DEAD       ids (worker ids), note (reason), running (task ids the
//              worker's slots were running; absent = unknown)
//                                   (supervisor -> broker)
//   PLUGINS    id (host), note ("reloaded" | "refused"), ids (plugin files),
//              slots (the generation now serving), error (why refused)
//                                   (supervisor -> broker, published as an event)
//   BYE, UNKNOWN                    (no fields)
struct control {
    uint64_t req = 0;
    bool ok = true;
    std::string id;
    std::vector<std::string> ids;
    double fraction = 0;
    std::string note;
    std::string data;  // bin
    uint32_t slots = 0;
    std::vector<task_spec> tasks;
    std::string error;
    // DEAD: the tasks the dead worker's slots were running. Present (maybe
    // empty) when the supervisor knows; absent when it does not.
    std::optional<std::vector<std::string>> running;
    uint32_t attempt = 0;  // CANCEL: the attempt to stop
    // Replies with `ok: false`: the kind of error, as the frontend's
    // reply.error_code (e.g. "unknown_handler" for a SPAWN); may be empty.
    std::string error_code;
    // HEARTBEAT (worker -> broker): the worker's resident memory in bytes.
    std::optional<uint64_t> rss_bytes;
    // ERROR with error_code not_leader (a cluster member that does not
    // lead): the leader's backend endpoint, when this member knows it.
    std::string leader;
};

// ---- codecs ----
// encode() never fails. decode_*() returns errc::invalid_argument with a
// message naming the offending field for any malformed body; it never throws.

std::string encode(const request& m);
std::string encode(const reply& m);
std::string encode(const hello& m);
std::string encode(const welcome& m);
std::string encode(const dispatch& m);
std::string encode(const results& m);
std::string encode(const control& m);

// The `req` of a body that may not decode as a whole (a field of the wrong
// type, a body over the size limit), so that an error can still name the
// request it answers. nullopt when the body is not a map or has no `req`
// that reads as a uint. Reads the top-level map only, stepping over the
// other values without recursion; never throws.
std::optional<uint64_t> peek_req(std::string_view body) noexcept;

result<request> decode_request(std::string_view body);
result<reply> decode_reply(std::string_view body);
result<hello> decode_hello(std::string_view body);
result<welcome> decode_welcome(std::string_view body);
result<dispatch> decode_dispatch(std::string_view body);
result<results> decode_results(std::string_view body);
result<control> decode_control(std::string_view body);

}  // namespace taskmill::protocol
