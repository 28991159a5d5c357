// Metrics: the loop-side recorder and the Prometheus text rendering.
#include "metrics/metrics.hpp"

#include <algorithm>

#include <taskmill/metrics/text.hpp>

namespace taskmill::broker {

namespace {

// Counts one event at second `sec` in a ring of per-second counts whose
// newest second is `newest` (moved forward, clearing what it passes).
template <typename T, std::size_t N> void ring_count(std::array<T, N>& ring, int64_t& newest, int64_t sec) {
    if (sec > newest) {
        for (int64_t s = std::max(newest + 1, sec - static_cast<int64_t>(N) + 1); s <= sec; ++s) {
            ring[static_cast<std::size_t>(s) % N] = 0;
        }
        newest = sec;
    }
    if (sec > newest - static_cast<int64_t>(N)) {
        ++ring[static_cast<std::size_t>(sec) % N];
    }
}

// The count of second `sec` in such a ring (0 when out of its window).
template <typename T, std::size_t N> uint64_t ring_at(const std::array<T, N>& ring, int64_t newest, int64_t sec) {
    if (sec <= newest && sec > newest - static_cast<int64_t>(N)) {
        return ring[static_cast<std::size_t>(sec) % N];
    }
    return 0;
}

}  // namespace

std::string_view handler_base(std::string_view spec) { return spec.substr(0, spec.find('@')); }

metrics_recorder::handler_entry& metrics_recorder::of(std::string_view handler) {
    auto base = handler_base(handler);
    auto it = handlers_.find(base);
    if (it == handlers_.end()) {
        it = handlers_.emplace(std::string(base), handler_entry{}).first;
    }
    return it->second;
}

void metrics_recorder::submitted(std::string_view handler) { ++of(handler).m.submitted; }

void metrics_recorder::dispatched(std::string_view handler, double wait_s) { of(handler).m.wait.observe(wait_s); }

void metrics_recorder::finished(std::string_view handler, task_state state, double run_s, int64_t now_ms) {
    auto& e = of(handler);
    auto& h = e.m;
    if (state == task_state::succeeded) {
        ++h.succeeded;
    } else if (state == task_state::failed) {
        ++h.failed;
    } else if (state == task_state::cancelled) {
        ++h.cancelled;
    } else if (state == task_state::expired) {
        ++h.expired;
    }
    if (run_s >= 0) {
        h.run.observe(run_s);
    }
    ring_count(ring_, ring_sec_, now_ms / 1000);
    ring_count(e.ring, e.ring_sec, now_ms / 1000);
}

void metrics_recorder::retried(std::string_view handler, double run_s) {
    auto& h = of(handler).m;
    ++h.retried;
    if (run_s >= 0) {
        h.run.observe(run_s);
    }
}

void metrics_recorder::state_change(const std::string& queue, int32_t priority, std::optional<task_state> from,
                                    task_state to) {
    if (from == to) {
        return;
    }
    if (from == task_state::queued) {
        auto& n = queued_[queue][priority];
        n = n > 0 ? n - 1 : 0;
    }
    if (to == task_state::queued) {
        ++queued_[queue][priority];
    }
}

void metrics_recorder::queued_recovered(const std::string& queue, int32_t priority) { ++queued_[queue][priority]; }

void metrics_recorder::hello(bool accepted) {
    ++hellos_;
    if (!accepted) {
        ++hellos_refused_;
    }
}

void metrics_recorder::commit(double seconds) {
    commit_.observe(seconds);
    ++commits_;
}

void metrics_recorder::fill(metrics_snapshot& s, int64_t now_ms) const {
    const int64_t now_sec = now_ms / 1000;
    s.handlers.clear();
    for (const auto& [name, e] : handlers_) {
        auto& out = s.handlers.emplace(name, e.m).first->second;
        for (int64_t sec = now_sec - static_cast<int64_t>(handler_history_s) + 1; sec <= now_sec; ++sec) {
            out.finished_last_minute += ring_at(e.ring, e.ring_sec, sec);
        }
    }
    s.queued = queued_;
    s.hellos = hellos_;
    s.hellos_refused = hellos_refused_;
    s.commit = commit_;
    s.commits = commits_;
    s.turn = turn_;
    s.finished_per_s.assign(history_s, 0);
    for (std::size_t i = 0; i < history_s; ++i) {
        s.finished_per_s[i] =
            ring_at(ring_, ring_sec_, now_sec - static_cast<int64_t>(history_s) + 1 + static_cast<int64_t>(i));
    }
}

// ---- Prometheus text format ----

namespace {

using metrics::label;
using metrics::text_writer;

void render_handlers(text_writer& w, const metrics_snapshot& s) {
    struct counter_def {
        const char* name;
        const char* help;
        uint64_t handler_metrics::*field;
    };
    static const counter_def defs[] = {
        {"taskmill_tasks_submitted_total", "Tasks submitted, by handler.", &handler_metrics::submitted},
        {"taskmill_tasks_succeeded_total", "Tasks that ended SUCCEEDED, by handler.", &handler_metrics::succeeded},
        {"taskmill_tasks_failed_total", "Tasks that ended FAILED, by handler.", &handler_metrics::failed},
        {"taskmill_tasks_retried_total", "Attempts that ended in a retry, by handler.", &handler_metrics::retried},
        {"taskmill_tasks_cancelled_total", "Tasks that ended CANCELLED, by handler.", &handler_metrics::cancelled},
        {"taskmill_tasks_expired_total", "Tasks that ended EXPIRED, by handler.", &handler_metrics::expired},
    };
    for (const auto& d : defs) {
        w.family(d.name, "counter", d.help);
        for (const auto& [name, h] : s.handlers) {
            w.sample(d.name, label("handler", name), static_cast<double>(h.*(d.field)));
        }
    }
    w.family("taskmill_handler_tasks_running", "gauge", "Attempts a worker slot is running, by handler.");
    for (const auto& [name, h] : s.handlers) {
        w.sample("taskmill_handler_tasks_running", label("handler", name), static_cast<double>(h.running));
    }
    w.family("taskmill_task_run_seconds", "histogram",
             "Attempt run time in seconds, from the attempt's start in a worker slot to its outcome, by handler.");
    for (const auto& [name, h] : s.handlers) {
        w.histogram("taskmill_task_run_seconds", label("handler", name), h.run);
    }
    w.family("taskmill_task_queue_wait_seconds", "histogram", "Time from ready to dispatched in seconds, by handler.");
    for (const auto& [name, h] : s.handlers) {
        w.histogram("taskmill_task_queue_wait_seconds", label("handler", name), h.wait);
    }
}

void render_queues(text_writer& w, const metrics_snapshot& s) {
    w.family("taskmill_queue_depth", "gauge", "QUEUED tasks, by queue and priority.");
    for (const auto& [queue, prios] : s.queued) {
        for (const auto& [prio, n] : prios) {
            w.sample("taskmill_queue_depth", label("queue", queue) + "," + label("priority", std::to_string(prio)),
                     static_cast<double>(n));
        }
    }
    w.family("taskmill_queue_oldest_ready_age_seconds", "gauge",
             "Seconds since the oldest ready task of the queue became ready, by queue.");
    for (const auto& [queue, age] : s.oldest_ready_age_s) {
        w.sample("taskmill_queue_oldest_ready_age_seconds", label("queue", queue), age);
    }
    w.family(
        "taskmill_tasks", "gauge",
        "Tasks in the store, by queue and state (RUNNING: dispatched, started or waiting in a worker's prefetch).");
    for (const auto& [queue, states] : s.states) {
        for (const auto& [st, n] : states) {
            w.sample("taskmill_tasks", label("queue", queue) + "," + label("state", st), static_cast<double>(n));
        }
    }
    w.family("taskmill_events_total", "counter", "Broker event counters (dispatched, requeued, crashes, ...).");
    for (const auto& [name, n] : s.counters) {
        w.sample("taskmill_events_total", label("event", name), static_cast<double>(n));
    }
    w.family("taskmill_tasks_deleted_total", "counter", "Finished tasks deleted (retention, DELETE).");
    auto deleted = s.counters.find("deleted");
    w.sample("taskmill_tasks_deleted_total", "",
             deleted == s.counters.end() ? 0.0 : static_cast<double>(deleted->second));
}

void gauge(text_writer& w, const char* name, const char* help, double v) {
    w.family(name, "gauge", help);
    w.sample(name, "", v);
}

void render_workers(text_writer& w, const metrics_snapshot& s) {
    gauge(w, "taskmill_workers", "Registered worker processes.", s.workers);
    gauge(w, "taskmill_worker_slots", "Task slots (tasks run at once) over all workers.", s.slots);
    gauge(w, "taskmill_worker_prefetch", "Prefetch over all workers: tasks accepted to wait for a free slot.",
          s.prefetch);
    gauge(w, "taskmill_worker_free_slots", "Task slots not running a task.",
          s.slots > s.running ? s.slots - s.running : 0);
    gauge(w, "taskmill_tasks_dispatched", "Tasks dispatched to workers, started or waiting in their prefetch.", s.busy);
    gauge(w, "taskmill_tasks_running", "Tasks a worker slot has started.", s.running);
    w.family("taskmill_plugin_loaded", "gauge", "Workers that have a plugin version loaded.");
    for (const auto& [pv, n] : s.plugins) {
        w.sample("taskmill_plugin_loaded", label("plugin", pv.first) + "," + label("version", pv.second),
                 static_cast<double>(n));
    }
    w.family("taskmill_worker_hellos_total", "counter", "HELLOs received (plugin sets announced by workers).");
    w.sample("taskmill_worker_hellos_total", "", static_cast<double>(s.hellos));
    w.family("taskmill_worker_hellos_refused_total", "counter", "HELLOs the broker refused.");
    w.sample("taskmill_worker_hellos_refused_total", "", static_cast<double>(s.hellos_refused));
}

void render_store(text_writer& w, const metrics_snapshot& s) {
    gauge(w, "taskmill_store_map_bytes", "LMDB map size in bytes.", static_cast<double>(s.store_map_bytes));
    gauge(w, "taskmill_store_used_bytes", "LMDB bytes in use (pages up to the last used one).",
          static_cast<double>(s.store_used_bytes));
    w.family("taskmill_store_commit_seconds", "histogram", "LMDB commit latency in seconds (one per loop turn).");
    w.histogram("taskmill_store_commit_seconds", "", s.commit);
    w.family("taskmill_loop_turn_seconds", "histogram",
             "Loop turn time in seconds: messages, timers, bulk job slices, dispatch and commit.");
    w.histogram("taskmill_loop_turn_seconds", "", s.turn);
}

void counter(text_writer& w, const char* name, const char* help, double v) {
    w.family(name, "counter", help);
    w.sample(name, "", v);
}

void render_cluster(text_writer& w, const cluster_figures& c) {
    w.family("taskmill_cluster_leader", "gauge", "1 while this member leads its cluster, else 0; by node id.");
    w.sample("taskmill_cluster_leader", label("node_id", std::to_string(c.node_id)), c.leading ? 1.0 : 0.0);
    gauge(w, "taskmill_cluster_term", "The Raft term this member is in.", static_cast<double>(c.term));
    counter(w, "taskmill_cluster_leader_changes_total", "Leaders this member saw take over, the first included.",
            static_cast<double>(c.leader_changes));
    gauge(w, "taskmill_cluster_last_index", "Index of the last entry of this member's log.",
          static_cast<double>(c.last_index));
    gauge(w, "taskmill_cluster_commit_index", "Index of the last entry this member knows committed.",
          static_cast<double>(c.commit_index));
    gauge(w, "taskmill_cluster_applied_index", "Index of the last entry applied to this member's store.",
          static_cast<double>(c.applied_index));
    counter(w, "taskmill_cluster_snapshots_total", "Snapshots of the store this member took.",
            static_cast<double>(c.snapshots));
    counter(w, "taskmill_cluster_snapshots_installed_total", "Snapshots this member installed.",
            static_cast<double>(c.snapshots_installed));
    w.family("taskmill_cluster_replication_lag_entries", "gauge",
             "Leader only: entries of its log a member is not known to hold, by member.");
    for (const auto& [member, lag] : c.lag) {
        w.sample("taskmill_cluster_replication_lag_entries", label("member", std::to_string(member)),
                 static_cast<double>(lag));
    }
}

}  // namespace

std::string render_prometheus(const metrics_snapshot& s, const cluster_figures* cluster) {
    text_writer w;
    metrics::write_build_info(w);
    render_queues(w, s);
    render_handlers(w, s);
    render_workers(w, s);
    render_store(w, s);
    if (cluster != nullptr) {
        render_cluster(w, *cluster);
    }
    gauge(w, "taskmill_uptime_seconds", "Seconds since the broker started.",
          static_cast<double>(s.time_ms - s.started_ms) / 1000.0);
    metrics::write_process(w);
    return w.take();
}

}  // namespace taskmill::broker
