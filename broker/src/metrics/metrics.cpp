// Metrics: the loop-side recorder and the Prometheus text rendering.
#include "metrics/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace taskmill::broker {

void histogram::observe(double ms) {
    if (!(ms >= 0)) {
        ms = 0;  // clock steps and NaN land in the first bucket
    }
    auto it = std::lower_bound(bounds.begin(), bounds.end(), ms);
    ++buckets[static_cast<std::size_t>(it - bounds.begin())];
    sum += ms;
    ++count;
}

void turn_histogram::observe(double ms) {
    if (!(ms >= 0)) {
        ms = 0;
    }
    auto it = std::lower_bound(bounds.begin(), bounds.end(), ms);
    ++buckets[static_cast<std::size_t>(it - bounds.begin())];
    sum += ms;
    ++count;
}

std::string_view handler_base(std::string_view spec) { return spec.substr(0, spec.find('@')); }

handler_metrics& metrics_recorder::of(std::string_view handler) {
    auto base = handler_base(handler);
    auto it = handlers_.find(base);
    if (it == handlers_.end()) {
        it = handlers_.emplace(std::string(base), handler_metrics{}).first;
    }
    return it->second;
}

void metrics_recorder::submitted(std::string_view handler) { ++of(handler).submitted; }

void metrics_recorder::started(std::string_view handler, double wait_ms) { of(handler).wait_ms.observe(wait_ms); }

void metrics_recorder::finished(std::string_view handler, task_state state, double run_ms, int64_t now_ms) {
    auto& h = of(handler);
    if (state == task_state::succeeded) {
        ++h.succeeded;
    } else if (state == task_state::failed) {
        ++h.failed;
    } else if (state == task_state::cancelled) {
        ++h.cancelled;
    } else if (state == task_state::expired) {
        ++h.expired;
    }
    if (run_ms >= 0) {
        h.run_ms.observe(run_ms);
    }
    int64_t sec = now_ms / 1000;
    if (sec > ring_sec_) {
        int64_t from = std::max(ring_sec_ + 1, sec - static_cast<int64_t>(history_s) + 1);
        for (int64_t s = from; s <= sec; ++s) {
            ring_[static_cast<std::size_t>(s) % history_s] = 0;
        }
        ring_sec_ = sec;
    }
    if (sec > ring_sec_ - static_cast<int64_t>(history_s)) {
        ++ring_[static_cast<std::size_t>(sec) % history_s];
    }
}

void metrics_recorder::retried(std::string_view handler, double run_ms) {
    auto& h = of(handler);
    ++h.retried;
    if (run_ms >= 0) {
        h.run_ms.observe(run_ms);
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

void metrics_recorder::commit(double ms) {
    commit_ms_.observe(ms);
    ++commits_;
}

void metrics_recorder::fill(metrics_snapshot& s, int64_t now_ms) const {
    s.handlers.clear();
    for (const auto& [name, h] : handlers_) {
        s.handlers.emplace(name, h);
    }
    s.queued = queued_;
    s.hellos = hellos_;
    s.hellos_refused = hellos_refused_;
    s.commit_ms = commit_ms_;
    s.commits = commits_;
    s.turn_ms = turn_ms_;
    s.finished_per_s.assign(history_s, 0);
    int64_t now_sec = now_ms / 1000;
    for (std::size_t i = 0; i < history_s; ++i) {
        int64_t sec = now_sec - static_cast<int64_t>(history_s) + 1 + static_cast<int64_t>(i);
        if (sec <= ring_sec_ && sec > ring_sec_ - static_cast<int64_t>(history_s)) {
            s.finished_per_s[i] = ring_[static_cast<std::size_t>(sec) % history_s];
        }
    }
}

// ---- Prometheus text format ----

namespace {

// Label values escape backslash, double quote and newline.
std::string esc(std::string_view v) {
    std::string out;
    out.reserve(v.size());
    for (char c : v) {
        if (c == '\\' || c == '"') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
    return out;
}

std::string num(double v) {
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

class writer {
public:
    void family(std::string_view name, std::string_view type, std::string_view help) {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        out_ += help;
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }
    void sample(std::string_view name, const std::string& labels, double v) {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        out_ += ' ';
        out_ += num(v);
        out_ += '\n';
    }
    template <class H> void hist(std::string_view name, const std::string& labels, const H& h) {
        std::string sep = labels.empty() ? "" : ",";
        uint64_t cum = 0;
        for (std::size_t i = 0; i < H::bounds.size(); ++i) {
            cum += h.buckets[i];
            sample(std::string(name) + "_bucket", labels + sep + "le=\"" + num(H::bounds[i]) + "\"",
                   static_cast<double>(cum));
        }
        cum += h.buckets.back();
        sample(std::string(name) + "_bucket", labels + sep + "le=\"+Inf\"", static_cast<double>(cum));
        sample(std::string(name) + "_sum", labels, h.sum);
        sample(std::string(name) + "_count", labels, static_cast<double>(h.count));
    }
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

std::string lbl(std::string_view k, std::string_view v) { return std::string(k) + "=\"" + esc(v) + "\""; }

void render_handlers(writer& w, const metrics_snapshot& s) {
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
            w.sample(d.name, lbl("handler", name), static_cast<double>(h.*(d.field)));
        }
    }
    w.family("taskmill_task_run_ms", "histogram", "Attempt run time in milliseconds, by handler.");
    for (const auto& [name, h] : s.handlers) {
        w.hist("taskmill_task_run_ms", lbl("handler", name), h.run_ms);
    }
    w.family("taskmill_task_queue_wait_ms", "histogram", "Time from ready to dispatched in milliseconds, by handler.");
    for (const auto& [name, h] : s.handlers) {
        w.hist("taskmill_task_queue_wait_ms", lbl("handler", name), h.wait_ms);
    }
}

void render_queues(writer& w, const metrics_snapshot& s) {
    w.family("taskmill_queue_depth", "gauge", "QUEUED tasks, by queue and priority.");
    for (const auto& [queue, prios] : s.queued) {
        for (const auto& [prio, n] : prios) {
            w.sample("taskmill_queue_depth", lbl("queue", queue) + "," + lbl("priority", std::to_string(prio)),
                     static_cast<double>(n));
        }
    }
    w.family("taskmill_tasks", "gauge", "Tasks in the store, by queue and state.");
    for (const auto& [queue, states] : s.states) {
        for (const auto& [st, n] : states) {
            w.sample("taskmill_tasks", lbl("queue", queue) + "," + lbl("state", st), static_cast<double>(n));
        }
    }
    w.family("taskmill_events_total", "counter", "Broker event counters (dispatched, requeued, crashes, ...).");
    for (const auto& [name, n] : s.counters) {
        w.sample("taskmill_events_total", lbl("event", name), static_cast<double>(n));
    }
    w.family("taskmill_tasks_deleted_total", "counter", "Finished tasks deleted (retention, DELETE).");
    auto deleted = s.counters.find("deleted");
    w.sample("taskmill_tasks_deleted_total", "",
             deleted == s.counters.end() ? 0.0 : static_cast<double>(deleted->second));
}

void render_workers(writer& w, const metrics_snapshot& s) {
    w.family("taskmill_workers", "gauge", "Registered worker processes.");
    w.sample("taskmill_workers", "", s.workers);
    w.family("taskmill_worker_slots", "gauge", "Task slots over all workers.");
    w.sample("taskmill_worker_slots", "", s.slots);
    w.family("taskmill_worker_free_slots", "gauge", "Task slots not in use.");
    w.sample("taskmill_worker_free_slots", "", s.slots > s.busy ? s.slots - s.busy : 0);
    w.family("taskmill_plugin_loaded", "gauge", "Workers that have a plugin version loaded.");
    for (const auto& [pv, n] : s.plugins) {
        w.sample("taskmill_plugin_loaded", lbl("plugin", pv.first) + "," + lbl("version", pv.second),
                 static_cast<double>(n));
    }
    w.family("taskmill_worker_hellos_total", "counter", "HELLOs received (plugin sets announced by workers).");
    w.sample("taskmill_worker_hellos_total", "", static_cast<double>(s.hellos));
    w.family("taskmill_worker_hellos_refused_total", "counter", "HELLOs the broker refused.");
    w.sample("taskmill_worker_hellos_refused_total", "", static_cast<double>(s.hellos_refused));
}

}  // namespace

std::string render_prometheus(const metrics_snapshot& s) {
    writer w;
    render_queues(w, s);
    render_handlers(w, s);
    render_workers(w, s);
    w.family("taskmill_store_map_bytes", "gauge", "LMDB map size in bytes.");
    w.sample("taskmill_store_map_bytes", "", static_cast<double>(s.store_map_bytes));
    w.family("taskmill_store_used_bytes", "gauge", "LMDB bytes in use (pages up to the last used one).");
    w.sample("taskmill_store_used_bytes", "", s.store_fill * static_cast<double>(s.store_map_bytes));
    w.family("taskmill_store_commit_ms", "histogram", "LMDB commit latency in milliseconds (one per loop turn).");
    w.hist("taskmill_store_commit_ms", "", s.commit_ms);
    w.family("taskmill_loop_turn_ms", "histogram",
             "Loop turn time in milliseconds: messages, timers, bulk job slices, dispatch and commit.");
    w.hist("taskmill_loop_turn_ms", "", s.turn_ms);
    w.family("taskmill_uptime_seconds", "gauge", "Seconds since the broker started.");
    w.sample("taskmill_uptime_seconds", "", static_cast<double>(s.time_ms - s.started_ms) / 1000.0);
    return w.take();
}

}  // namespace taskmill::broker
