// engine::publish_metrics: the loop's once-per-turn snapshot for the HTTP
// threads (see metrics.hpp for the threading contract), and the figures it
// is made from.
#include <set>

#include "engine/engine.hpp"

namespace taskmill::broker {

double engine::run_seconds(const task_record& r) const {
    if (outcome_run_us_ && *outcome_run_us_ >= 0) {
        return static_cast<double>(*outcome_run_us_) / 1e6;
    }
    return r.started_ms > 0 ? static_cast<double>(now_ - r.started_ms) / 1000.0 : -1.0;
}

// Once a second: per queue, when its oldest ready task became ready (one
// record read per queue), and per handler the attempts a slot has started.
void engine::refresh_slow_figures() {
    if (!metrics_wanted_ || (now_ - slow_figures_ms_ < 1000 && slow_figures_ms_ != 0)) {
        return;
    }
    slow_figures_ms_ = now_;
    oldest_ready_ms_.clear();
    for (const auto& queue : ready_.queues()) {
        auto e = ready_.oldest(queue);
        auto r = e ? load(e->id) : std::nullopt;
        if (r) {
            oldest_ready_ms_[queue] = std::max(r->created_ms, r->eta_ms);
        }
    }
    running_by_handler_.clear();
    for (const auto& [id, run] : running_) {
        if (run.started) {
            ++running_by_handler_[std::string(handler_base(run.record.handler))];
        }
    }
}

void engine::publish_metrics(metrics_hub& hub) {
    // From now on the next turns refresh the slow figures (they read the
    // store, which needs a turn's transaction: not here, after the commit).
    metrics_wanted_ = true;
    auto s = std::make_shared<metrics_snapshot>();
    s->time_ms = now_;
    s->started_ms = started_ms_;
    metrics_.fill(*s, now_);
    for (const auto& [queue, states] : counters_.per_queue()) {
        auto& out = s->states[queue];
        for (const auto& [st, n] : states) {
            out[std::string(to_string(st))] = n;
        }
    }
    s->counters = counters_.counters();
    s->workers = static_cast<uint32_t>(workers_.size());
    s->slots = workers_.total_concurrency();
    s->prefetch = workers_.total_prefetch();
    s->busy = workers_.total_busy();
    s->running = workers_.total_running();
    for (const auto& [id, w] : workers_.all()) {
        std::set<std::pair<std::string, std::string>> loaded;
        for (const auto& h : w.info.handlers) {
            loaded.emplace(h.plugin, h.version);
        }
        for (const auto& pv : loaded) {
            ++s->plugins[pv];
        }
    }
    for (const auto& [queue, since] : oldest_ready_ms_) {
        s->oldest_ready_age_s[queue] = static_cast<double>(std::max<int64_t>(now_ - since, 0)) / 1000.0;
    }
    for (const auto& [handler, n] : running_by_handler_) {
        s->handlers[handler].running = n;
    }
    // mdb_env_info/stat are cheap but not free: once a second is plenty.
    if (now_ - fill_checked_ms_ >= 1000) {
        space_ = store_.space();
        fill_checked_ms_ = now_;
    }
    s->store_fill = space_.capacity > 0 ? space_.used / space_.capacity : 0;
    s->store_map_bytes = static_cast<uint64_t>(space_.map);
    s->store_used_bytes = static_cast<uint64_t>(space_.used);
    hub.publish(std::move(s));
}

}  // namespace taskmill::broker
