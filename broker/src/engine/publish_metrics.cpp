// engine::publish_metrics: the loop's once-per-turn snapshot for the HTTP
// threads (see metrics.hpp for the threading contract).
#include <set>

#include "engine/engine.hpp"

namespace taskmill::broker {

void engine::publish_metrics(metrics_hub& hub) {
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
    s->slots = workers_.total_slots();
    s->busy = workers_.total_busy();
    for (const auto& [id, w] : workers_.all()) {
        std::set<std::pair<std::string, std::string>> loaded;
        for (const auto& h : w.info.handlers) {
            loaded.emplace(h.plugin, h.version);
        }
        for (const auto& pv : loaded) {
            ++s->plugins[pv];
        }
    }
    // mdb_env_info/stat are cheap but not free: once a second is plenty.
    if (now_ - fill_checked_ms_ >= 1000) {
        fill_ratio_ = store_.fill_ratio();
        fill_checked_ms_ = now_;
    }
    s->store_fill = fill_ratio_;
    s->store_map_bytes = cfg_.map_size_mb << 20;
    hub.publish(std::move(s));
}

}  // namespace taskmill::broker
