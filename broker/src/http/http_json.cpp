// JSON conversions of the HTTP API.
#include "http/http_json.hpp"

#include <limits>

#include <taskmill/protocol/duration.hpp>

namespace taskmill::broker::http {

namespace {

using nlohmann::json;

using field_fn = result<void> (*)(const json&, protocol::task_spec&);

template <typename T> result<T> integer(const json& v, const char* name) {
    if (!v.is_number_integer()) {
        return fail(errc::invalid_argument, std::string(name) + " must be an integer");
    }
    if (v.is_number_unsigned()
            ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<T>::max())
            : (v.get<int64_t>() < std::numeric_limits<T>::min() || v.get<int64_t>() > std::numeric_limits<T>::max())) {
        return fail(errc::invalid_argument, std::string(name) + " is out of range");
    }
    return static_cast<T>(v.get<int64_t>());
}

result<std::string> text(const json& v, const char* name) {
    if (!v.is_string()) {
        return fail(errc::invalid_argument, std::string(name) + " must be a string");
    }
    return v.get<std::string>();
}

template <typename T> result<void> set_int(const json& v, const char* name, std::optional<T>& out) {
    auto n = integer<T>(v, name);
    if (!n) {
        return fail(n.error().code, n.error().message);
    }
    out = *n;
    return {};
}

// Retention as people write it ("24h", "7d", "0" = for ever).
result<void> set_keep(const json& v, protocol::task_spec& t) {
    if (!v.is_string()) {
        return fail(errc::invalid_argument, "keep must be a duration such as \"24h\" (or give keep_ms)");
    }
    auto ms = protocol::parse_duration_ms(v.get<std::string>());
    if (!ms) {
        return fail(ms.error().code, "keep: " + ms.error().message);
    }
    t.keep_ms = *ms;
    return {};
}

result<void> one_field(const std::string& k, const json& v, protocol::task_spec& t) {
    if (k == "handler" || k == "queue" || k == "key") {
        auto s = text(v, k.c_str());
        if (!s) {
            return fail(s.error().code, s.error().message);
        }
        (k == "handler" ? t.handler : k == "queue" ? t.queue : t.key) = *s;
        return {};
    }
    if (k == "payload") {
        if (!v.is_null()) {
            t.payload = protocol::json_to_msgpack(v);
        }
        return {};
    }
    if (k == "priority") return set_int(v, "priority", t.priority);
    if (k == "retries") return set_int(v, "retries", t.retries);
    if (k == "timeout_ms") return set_int(v, "timeout_ms", t.timeout_ms);
    if (k == "ttl_ms") return set_int(v, "ttl_ms", t.ttl_ms);
    if (k == "keep_ms") return set_int(v, "keep_ms", t.keep_ms);
    if (k == "keep") return set_keep(v, t);
    if (k == "delay_ms") return set_int(v, "delay_ms", t.delay_ms);
    if (k == "eta_ms") return set_int(v, "eta_ms", t.eta_ms);
    if (k == "backoff_base_ms") return set_int(v, "backoff_base_ms", t.backoff_base_ms);
    if (k == "backoff_cap_ms") return set_int(v, "backoff_cap_ms", t.backoff_cap_ms);
    if (k == "backoff_factor") {
        if (!v.is_number()) {
            return fail(errc::invalid_argument, "backoff_factor must be a number");
        }
        t.backoff_factor = v.get<double>();
        return {};
    }
    if (k == "tags") {
        if (!v.is_array()) {
            return fail(errc::invalid_argument, "tags must be an array of strings");
        }
        for (const auto& tag : v) {
            if (!tag.is_string()) {
                return fail(errc::invalid_argument, "tags must be an array of strings");
            }
            t.tags.push_back(tag.get<std::string>());
        }
        return {};
    }
    return fail(errc::invalid_argument, "unknown field '" + k + "'");
}

result<protocol::task_spec> parse_task(const json& j, std::size_t index) {
    std::string where = "task " + std::to_string(index) + ": ";
    if (!j.is_object()) {
        return fail(errc::invalid_argument, where + "must be a JSON object");
    }
    protocol::task_spec t;
    for (const auto& [k, v] : j.items()) {
        if (auto ok = one_field(k, v, t); !ok) {
            return fail(ok.error().code, where + ok.error().message);
        }
    }
    if (t.handler.empty()) {
        return fail(errc::invalid_argument, where + "handler is required");
    }
    return t;
}

}  // namespace

json handler_counts_json(const handler_metrics& h) {
    return {{"submitted", h.submitted}, {"succeeded", h.succeeded}, {"failed", h.failed},
            {"retried", h.retried},     {"cancelled", h.cancelled}, {"expired", h.expired}};
}

json to_json(const metrics_snapshot& s) {
    auto queued = json::object();
    for (const auto& [queue, prios] : s.queued) {
        auto& q = queued[queue];
        q = json::object();
        for (const auto& [p, n] : prios) {
            q[std::to_string(p)] = n;
        }
    }
    auto handlers = json::object();
    for (const auto& [name, h] : s.handlers) {
        auto& j = handlers[name] = handler_counts_json(h);
        j["run_ms_avg"] = h.run.count > 0 ? 1000.0 * h.run.sum / static_cast<double>(h.run.count) : 0.0;
        j["wait_ms_avg"] = h.wait.count > 0 ? 1000.0 * h.wait.sum / static_cast<double>(h.wait.count) : 0.0;
    }
    return {{"time_ms", s.time_ms},
            {"uptime_ms", s.time_ms - s.started_ms},
            {"states", s.states},
            {"queued", queued},
            {"counters", s.counters},
            {"handlers", handlers},
            {"workers", s.workers},
            {"slots", s.slots},
            {"busy", s.busy},
            {"store_fill", s.store_fill},
            {"prefetch", s.prefetch},
            {"running", s.running},
            {"finished_per_s", s.finished_per_s}};
}

result<std::vector<protocol::task_spec>> parse_submit(const json& body) {
    std::vector<protocol::task_spec> out;
    if (body.is_object() && body.contains("tasks")) {
        const auto& list = body["tasks"];
        if (body.size() != 1 || !list.is_array() || list.empty()) {
            return fail(errc::invalid_argument, "{\"tasks\": [...]} must hold a non-empty array and nothing else");
        }
        for (std::size_t i = 0; i < list.size(); ++i) {
            auto t = parse_task(list[i], i);
            if (!t) {
                return fail(t.error().code, t.error().message);
            }
            out.push_back(std::move(t.value()));
        }
        return out;
    }
    auto t = parse_task(body, 0);
    if (!t) {
        return fail(t.error().code, t.error().message);
    }
    out.push_back(std::move(t.value()));
    return out;
}

}  // namespace taskmill::broker::http
