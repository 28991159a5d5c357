// taskmill/client/types.hpp -- the value types of the client library.
//
// What a caller fills in to submit a task (task_options) and what the broker
// reports back (task_info, worker_info, stats_info). These are our own types:
// no msgpack or ZeroMQ type appears here, so the wire codec can change
// without touching callers. Payloads and results are msgpack bytes; the
// nlohmann::json helpers convert at this edge. Plain values, no threading.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace taskmill::client {

using clock = std::chrono::system_clock;
using time_point = clock::time_point;
using std::chrono::milliseconds;

// A task payload as msgpack bytes. Built from JSON (converted with
// nlohmann::json::to_msgpack) or taken as raw msgpack.
struct payload {
    std::string msgpack;  // empty = nil

    payload() = default;
    payload(const nlohmann::json& value);  // NOLINT: implicit so `opts.payload = json` reads naturally
    static payload raw(std::string msgpack_bytes);
};

// Exponential backoff between retries: base * factor^n, capped.
struct backoff_policy {
    std::optional<milliseconds> base;
    std::optional<double> factor;
    std::optional<milliseconds> cap;
};

// One task to submit. Unset fields take the handler's default, then the
// broker's.
struct task_options {
    std::string handler;  // "ns.name", "ns.name@2" or "ns.name@2.1.0"
    taskmill::client::payload payload;
    std::string queue;                    // empty = handler default, else "default"
    std::optional<int> priority;          // 0..9, higher first
    std::optional<milliseconds> delay;    // not before now + delay
    std::optional<time_point> eta;        // not before this absolute time
    std::optional<int> retries;           // retries after the first attempt
    std::optional<milliseconds> timeout;  // per attempt
    std::optional<milliseconds> ttl;      // EXPIRED if not started within this
    backoff_policy backoff;
    std::vector<std::string> tags;
    std::string key;  // idempotency key: same key, same task id
    // How long the broker keeps the task once finished, then deletes it
    // (with its idempotency key); 0 = for ever. Unset = the retention of
    // its queue, else the broker's, for the state it ends in.
    std::optional<milliseconds> keep;
};

struct progress_info {
    double fraction = 0;
    std::string note;
};

// One attempt of a task (task_info::history). `outcome` is ok, retry,
// fail, timeout, cancelled or lost (worker died or went silent); empty
// while the attempt runs.
struct attempt_info {
    unsigned attempt = 0;
    std::string worker;
    std::optional<time_point> started;
    std::optional<time_point> finished;  // nullopt = still running
    std::string outcome;
    std::string error;
    std::optional<int64_t> error_code;
    std::string version;  // plugin version that ran it, when known
};

// The state of one task. `state` is the upper-case state name (PENDING
// QUEUED RUNNING RETRYING SUCCEEDED FAILED CANCELLED EXPIRED).
struct task_info {
    std::string id;
    std::string handler;
    std::string queue;
    int priority = 0;
    std::string state;
    unsigned attempts = 0;
    int max_retries = 0;
    std::string error;  // empty = none
    std::optional<progress_info> progress;
    std::optional<std::string> result;  // msgpack bytes once SUCCEEDED
    std::optional<time_point> created;
    std::optional<time_point> started;
    std::optional<time_point> finished;
    std::optional<time_point> eta;
    std::string parent;  // empty = none
    std::vector<std::string> tags;
    std::vector<std::string> children;
    std::string worker;  // last worker that ran it
    // The code the handler set with its error (tm_error.code); nullopt = none.
    std::optional<int64_t> error_code;
    // Inspection, filled by status() and wait() (STATUS), not by tasks()
    // or DONE: the input as msgpack bytes (nullopt when it would not fit
    // the reply; payload_size still tells its size), and the last attempts
    // (at most 10), oldest first.
    std::optional<std::string> payload;
    uint64_t payload_size = 0;
    std::vector<attempt_info> history;
    // When the finished task is to be deleted; nullopt = kept for ever.
    std::optional<time_point> delete_at;
    // Bytes of the last checkpoint the handler saved; 0 = none.
    uint64_t checkpoint_size = 0;

    // SUCCEEDED, FAILED, CANCELLED or EXPIRED: the state will not change
    // again (unless someone calls retry()).
    bool is_final() const noexcept;
    bool succeeded() const noexcept { return state == "SUCCEEDED"; }
    // The result decoded from msgpack; null when there is none. Throws
    // nlohmann::json::exception if the result bytes are not valid msgpack
    // or nest deeper than protocol::max_nesting (128) levels.
    nlohmann::json result_json() const;
};

bool is_final_state(const std::string& state) noexcept;

struct handler_info {
    std::string name;
    std::string version;
    std::string plugin;
};

struct worker_info {
    std::string id;
    std::string host;
    int64_t pid = 0;
    unsigned slots = 0;
    unsigned busy = 0;
    unsigned generation = 0;
    std::vector<std::string> queues;
    std::vector<handler_info> handlers;
    std::optional<time_point> last_seen;
    // `slots`: tasks it runs at once; `prefetch`: how many more it accepts
    // to wait for a free slot; `busy`: tasks it holds (running or waiting);
    // `running`: those a slot has started.
    unsigned prefetch = 0;
    unsigned running = 0;
    uint64_t rss_bytes = 0;  // resident memory, from its last heartbeat; 0 = not reported
};

// The flow limits of a queue or a handler; 0 = no limit.
struct flow_limits {
    double rate = 0;           // tasks started per second
    uint32_t burst = 0;        // starts at once above the rate (0 = max(1, rate))
    uint32_t max_running = 0;  // tasks running at once
};

struct queue_stats {
    std::string name;
    uint64_t ready = 0;
    uint64_t delayed = 0;
    uint64_t running = 0;
    bool paused = false;  // dispatches nothing until resumed
    flow_limits limits;
};

// A handler with flow limits of its own (stats_info::handlers).
struct handler_stats {
    std::string name;  // "ns.name"
    uint64_t running = 0;
    flow_limits limits;
};

// A change of flow limits (client::limit_queue, limit_handler): unset =
// unchanged, 0 = remove that limit.
struct limit_change {
    std::optional<double> rate;
    std::optional<uint32_t> burst;
    std::optional<uint32_t> max_running;
};

struct stats_info {
    std::vector<queue_stats> queues;
    std::map<std::string, uint64_t> states;
    std::map<std::string, uint64_t> counters;
    unsigned workers = 0;
    unsigned slots = 0;
    unsigned busy = 0;
    milliseconds uptime{0};
    std::vector<handler_stats> handlers;  // handlers with flow limits
    // `slots`: the workers' concurrency summed; `prefetch`: their local
    // queues; `busy`: tasks dispatched; `running`: those a slot started.
    unsigned prefetch = 0;
    unsigned running = 0;
};

// A member of a broker cluster, as the broker asked sees it.
struct cluster_member_info {
    uint64_t id = 0;
    std::string address;       // its Raft transport
    std::string kind;          // voter, standby, spare
    uint64_t match_index = 0;  // the leader's view only: the last entry it knows the member holds
};

// What a broker knows of its cluster (client::cluster_status; docs/CLUSTER.md).
struct cluster_info {
    uint64_t node_id = 0;  // 0: a single broker, in no cluster
    std::string role;      // leader, follower, candidate, unavailable; "single" for node-id 0
    bool serving = false;  // leading, with every earlier entry applied
    uint64_t term = 0;
    uint64_t leader_id = 0;       // 0: none known (an election is under way)
    std::string leader_frontend;  // empty until the member knows it
    uint64_t last_index = 0;      // in its log
    uint64_t commit_index = 0;
    uint64_t applied_index = 0;  // to its store
    uint64_t snapshots = 0;      // taken since it started
    std::vector<cluster_member_info> members;
};

// Filter for client::tasks(). Empty fields do not filter; limit 0 = the
// broker's default (100).
// What tasks() lists, newest first. The broker reads a bounded number of
// stored tasks per request; tasks() asks again from where it stopped until
// it has `limit` matches (0 = 100) or has read every task.
struct task_filter {
    std::string state;
    std::string queue;
    std::string tag;
    unsigned limit = 0;
    std::string handler;  // the name without @version
    // The time compared is the finish time when `state` is a final state,
    // the creation time otherwise; since is inclusive, until exclusive.
    std::optional<time_point> since;
    std::optional<time_point> until;
    // Where the page starts: the `next` of the previous page of the same
    // filter (or a task id: the tasks older than it). Empty = the newest.
    std::string before;
};

// One page of tasks_page(): the tasks, and the cursor of the next page
// (pass it back as task_filter::before), empty when nothing is left.
struct task_page {
    std::vector<task_info> tasks;
    std::string next;
};

// What cancel() and retry() did: the ids they touched and the broker's note
// (e.g. "already finished" for a no-op cancel).
struct change_info {
    std::vector<std::string> ids;
    std::string note;
};

// ---- operator verbs: bulk jobs ----

// Which tasks a bulk cancel, retry or delete applies to: those matching
// every field that is set. A filter with nothing set is refused by the
// broker unless `all` is true.
struct bulk_filter {
    std::string state;  // upper-case state name
    std::string queue;
    std::string handler;  // name without @version
    std::string tag;
    // Creation time, or the finish time when `state` is a final state.
    std::optional<time_point> since;  // at or after
    std::optional<time_point> until;  // before
    bool all = false;
};

// A bulk operation the broker carries out over several loop turns
// (client::job, client::wait_job).
struct job_info {
    uint64_t id = 0;       // 0: the broker did the change at once, without a job
    std::string kind;      // purge cancel retry delete
    std::string filter;    // what it applies to, in words
    std::string state;     // running done
    uint64_t matched = 0;  // tasks that matched
    uint64_t changed = 0;  // tasks cancelled, retried or deleted
    std::optional<time_point> started;
    std::optional<time_point> finished;
    // With a result that came at once: the ids changed (at most 1000).
    std::vector<std::string> ids;

    bool done() const noexcept { return state == "done"; }
    uint64_t skipped() const noexcept { return matched - changed; }
};

}  // namespace taskmill::client
