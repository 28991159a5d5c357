// GET /api/v1/handlers: per-handler figures for the dashboard, straight
// from the loop's last published metrics snapshot (no loop trip).
#include <algorithm>

#include "http/http_json.hpp"
#include "http/http_routes.hpp"

namespace taskmill::broker::http {

namespace {

using nlohmann::json;

json quantile(const seconds_histogram& h, double q) {
    auto v = h.quantile(q);
    return v ? json(*v) : json(nullptr);
}

json handler_json(const std::string& name, const handler_metrics& h, double window_s) {
    const uint64_t ended = h.succeeded + h.failed;
    auto j = handler_counts_json(h);
    j["name"] = name;
    j["running"] = h.running;
    j["rate_per_s"] = static_cast<double>(h.finished_last_minute) / window_s;
    j["run_p50_s"] = quantile(h.run, 0.5);
    j["run_p95_s"] = quantile(h.run, 0.95);
    j["wait_p50_s"] = quantile(h.wait, 0.5);
    j["failure_rate"] = ended > 0 ? json(static_cast<double>(h.failed) / static_cast<double>(ended)) : json(nullptr);
    return j;
}

}  // namespace

json handlers_json(const metrics_snapshot& s) {
    // Over the last minute, or since the start when the broker is younger.
    const double uptime_s = static_cast<double>(s.time_ms - s.started_ms) / 1000.0;
    const double window_s = std::clamp(uptime_s, 1.0, static_cast<double>(metrics_recorder::handler_history_s));
    auto list = json::array();
    for (const auto& [name, h] : s.handlers) {
        list.push_back(handler_json(name, h, window_s));
    }
    return {{"handlers", list}, {"time_ms", s.time_ms}};
}

void add_handler_routes(router& srv, const std::shared_ptr<const api_env>& env) {
    srv.Get("/api/v1/handlers", guarded(env, role::read, [env](const httplib::Request&, httplib::Response& res) {
                send_json(res, 200, handlers_json(*env->hub->latest()));
            }));
}

}  // namespace taskmill::broker::http
