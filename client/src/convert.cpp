// Public value types <-> wire structs.
#include "convert.hpp"

namespace taskmill::client::detail {

std::optional<time_point> from_unix_ms(int64_t ms) {
    if (ms <= 0) {
        return std::nullopt;
    }
    return time_point(std::chrono::duration_cast<clock::duration>(milliseconds(ms)));
}

int64_t to_unix_ms(time_point t) { return std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count(); }

namespace {

int64_t unix_ms_or_zero(const std::optional<time_point>& t) { return t ? to_unix_ms(*t) : 0; }

// One body for the copying and the moving conversion: `fwd` copies or moves.
template <typename Options, typename Fwd> protocol::task_spec to_wire_impl(Options& o, Fwd fwd) {
    protocol::task_spec s;
    s.handler = fwd(o.handler);
    s.payload = fwd(o.payload.msgpack);
    s.queue = fwd(o.queue);
    s.priority = o.priority;
    s.retries = o.retries;
    if (o.timeout) {
        s.timeout_ms = o.timeout->count();
    }
    if (o.ttl) {
        s.ttl_ms = o.ttl->count();
    }
    if (o.delay) {
        s.delay_ms = o.delay->count();
    }
    if (o.eta) {
        s.eta_ms = to_unix_ms(*o.eta);
    }
    if (o.backoff.base) {
        s.backoff_base_ms = o.backoff.base->count();
    }
    s.backoff_factor = o.backoff.factor;
    if (o.backoff.cap) {
        s.backoff_cap_ms = o.backoff.cap->count();
    }
    s.tags = fwd(o.tags);
    s.key = fwd(o.key);
    if (o.keep) {
        s.keep_ms = o.keep->count();
    }
    // Every task asks for DONE: handles complete without polling.
    s.notify = true;
    return s;
}

template <typename Info, typename Fwd> task_info from_wire_impl(Info& t, Fwd fwd) {
    task_info out;
    out.id = fwd(t.id);
    out.handler = fwd(t.handler);
    out.queue = fwd(t.queue);
    out.priority = t.priority;
    out.state = fwd(t.state);
    out.attempts = t.attempts;
    out.max_retries = t.max_retries;
    out.error = fwd(t.error);
    if (t.progress) {
        out.progress = progress_info{t.progress->fraction, fwd(t.progress->note)};
    }
    out.result = fwd(t.result);
    out.created = from_unix_ms(t.created_ms);
    out.started = from_unix_ms(t.started_ms);
    out.finished = from_unix_ms(t.finished_ms);
    out.eta = from_unix_ms(t.eta_ms);
    out.parent = fwd(t.parent);
    out.tags = fwd(t.tags);
    out.children = fwd(t.children);
    out.worker = fwd(t.worker);
    out.error_code = t.error_code;
    out.payload = fwd(t.payload);
    out.payload_size = t.payload_size;
    out.checkpoint_size = t.checkpoint_size;
    out.history.reserve(t.history.size());
    for (auto& a : t.history) {
        out.history.push_back(attempt_info{a.attempt, fwd(a.worker), from_unix_ms(a.started_ms),
                                           from_unix_ms(a.finished_ms), fwd(a.outcome), fwd(a.error), a.error_code,
                                           fwd(a.version)});
    }
    out.delete_at = from_unix_ms(t.delete_at_ms);
    return out;
}

constexpr auto copy = [](const auto& v) -> const auto& { return v; };
constexpr auto move = [](auto& v) -> auto&& { return std::move(v); };

}  // namespace

protocol::task_spec to_wire(const task_options& o) { return to_wire_impl(o, copy); }
protocol::task_spec to_wire(task_options&& o) { return to_wire_impl(o, move); }
task_info from_wire(const protocol::task_info& t) { return from_wire_impl(t, copy); }
task_info from_wire(protocol::task_info&& t) { return from_wire_impl(t, move); }

worker_info from_wire(const protocol::worker_info& w) {
    worker_info out;
    out.id = w.id;
    out.host = w.host;
    out.pid = w.pid;
    out.slots = w.slots;
    out.busy = w.busy;
    out.prefetch = w.prefetch;
    out.running = w.running;
    out.generation = w.generation;
    out.queues = w.queues;
    for (const auto& h : w.handlers) {
        out.handlers.push_back(handler_info{.name = h.name, .version = h.version, .plugin = h.plugin});
    }
    out.last_seen = from_unix_ms(w.last_seen_ms);
    out.rss_bytes = w.rss_bytes;
    return out;
}

// ---- queue control and flow limits ----
flow_limits from_wire(const protocol::flow_limits& l) { return flow_limits{l.rate, l.burst, l.max_running}; }

protocol::flow_limits to_wire(const flow_limits& l) { return protocol::flow_limits{l.rate, l.burst, l.max_running}; }

protocol::queue_stats to_wire(const queue_stats& q) {
    return protocol::queue_stats{q.name, q.ready, q.delayed, q.running, q.paused, to_wire(q.limits)};
}

queue_stats from_wire(const protocol::queue_stats& q) {
    return queue_stats{q.name, q.ready, q.delayed, q.running, q.paused, from_wire(q.limits)};
}

stats_info from_wire(const protocol::stats_info& s) {
    stats_info out;
    for (const auto& q : s.queues) {
        out.queues.push_back(from_wire(q));
    }
    for (const auto& h : s.handlers) {
        out.handlers.push_back(handler_stats{h.name, h.running, from_wire(h.limits)});
    }
    out.states = s.states;
    out.counters = s.counters;
    out.workers = s.workers;
    out.slots = s.slots;
    out.busy = s.busy;
    out.prefetch = s.prefetch;
    out.running = s.running;
    out.uptime = milliseconds(s.uptime_ms);
    return out;
}

protocol::task_info to_wire(const task_info& t) {
    protocol::task_info out;
    out.id = t.id;
    out.handler = t.handler;
    out.queue = t.queue;
    out.priority = t.priority;
    out.state = t.state;
    out.attempts = t.attempts;
    out.max_retries = t.max_retries;
    out.error = t.error;
    if (t.progress) {
        out.progress = protocol::progress_info{t.progress->fraction, t.progress->note};
    }
    out.result = t.result;
    out.created_ms = unix_ms_or_zero(t.created);
    out.started_ms = unix_ms_or_zero(t.started);
    out.finished_ms = unix_ms_or_zero(t.finished);
    out.eta_ms = unix_ms_or_zero(t.eta);
    out.parent = t.parent;
    out.tags = t.tags;
    out.children = t.children;
    out.worker = t.worker;
    out.error_code = t.error_code;
    out.payload = t.payload;
    out.payload_size = t.payload_size;
    out.checkpoint_size = t.checkpoint_size;
    for (const auto& a : t.history) {
        out.history.push_back(protocol::attempt_info{a.attempt, a.worker, unix_ms_or_zero(a.started),
                                                     unix_ms_or_zero(a.finished), a.outcome, a.error, a.error_code,
                                                     a.version});
    }
    out.delete_at_ms = unix_ms_or_zero(t.delete_at);
    return out;
}

protocol::worker_info to_wire(const worker_info& w) {
    protocol::worker_info out;
    out.id = w.id;
    out.host = w.host;
    out.pid = w.pid;
    out.slots = w.slots;
    out.busy = w.busy;
    out.prefetch = w.prefetch;
    out.running = w.running;
    out.generation = w.generation;
    out.queues = w.queues;
    for (const auto& h : w.handlers) {
        out.handlers.push_back(protocol::handler_info{h.name, h.version, h.plugin});
    }
    out.last_seen_ms = unix_ms_or_zero(w.last_seen);
    out.rss_bytes = w.rss_bytes;
    return out;
}

protocol::stats_info to_wire(const stats_info& s) {
    protocol::stats_info out;
    for (const auto& q : s.queues) {
        out.queues.push_back(to_wire(q));
    }
    for (const auto& h : s.handlers) {
        out.handlers.push_back(protocol::handler_stats{h.name, h.running, to_wire(h.limits)});
    }
    out.states = s.states;
    out.counters = s.counters;
    out.workers = s.workers;
    out.slots = s.slots;
    out.busy = s.busy;
    out.prefetch = s.prefetch;
    out.running = s.running;
    out.uptime_ms = s.uptime.count();
    return out;
}

cluster_info cluster_from_json(const nlohmann::json& j) {
    if (!j.is_object()) {
        throw nlohmann::json::type_error::create(302, "not a map", &j);
    }
    cluster_info c;
    c.node_id = j.value("node_id", uint64_t{0});
    c.role = j.value("role", std::string{});
    c.serving = j.value("serving", false);
    c.term = j.value("term", uint64_t{0});
    c.leader_id = j.value("leader_id", uint64_t{0});
    c.leader_frontend = j.value("leader_frontend", std::string{});
    c.last_index = j.value("last_index", uint64_t{0});
    c.commit_index = j.value("commit_index", uint64_t{0});
    c.applied_index = j.value("applied_index", uint64_t{0});
    c.snapshots = j.value("snapshots", uint64_t{0});
    for (const auto& m : j.value("members", nlohmann::json::array())) {
        if (m.is_object()) {
            c.members.push_back({m.value("id", uint64_t{0}), m.value("address", std::string{}),
                                 m.value("kind", std::string{}), m.value("match_index", uint64_t{0})});
        }
    }
    return c;
}

}  // namespace taskmill::client::detail
