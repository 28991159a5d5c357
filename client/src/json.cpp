// JSON views for the CLI and for callers who want them.
#include <taskmill/client/json.hpp>

#include <ctime>
#include <cstdio>

#include <taskmill/protocol/nesting.hpp>

namespace taskmill::client {

std::string iso8601(time_point t) {
    auto ms = std::chrono::duration_cast<milliseconds>(t.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ms / 1000);
    auto frac = static_cast<int>(ms % 1000);
    if (frac < 0) {  // before 1970: floor, so the fraction stays positive
        frac += 1000;
        secs -= 1;
    }
    std::tm tm{};
    gmtime_r(&secs, &tm);
    char buf[64];
    std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                  tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    return buf;
}

nlohmann::json iso8601_or_null(const std::optional<time_point>& t) {
    if (!t) {
        return nullptr;
    }
    return iso8601(*t);
}

nlohmann::json msgpack_to_json(std::string_view bytes) {
    if (bytes.empty()) {
        return nullptr;
    }
    if (!protocol::msgpack_within_nesting(bytes)) {
        return {{"msgpack_error", protocol::nesting_error("the value").err.message}, {"size", bytes.size()}};
    }
    try {
        return nlohmann::json::from_msgpack(bytes.begin(), bytes.end());
    } catch (const nlohmann::json::exception& e) {
        return {{"msgpack_error", e.what()}, {"size", bytes.size()}};
    }
}

result<std::string> json_text_to_msgpack(std::string_view text) {
    auto value = protocol::parse_json<nlohmann::json>(text, "the JSON");
    if (!value) {
        return failure{value.error()};
    }
    std::string out;
    nlohmann::json::to_msgpack(*value, out);
    return out;
}

namespace {

nlohmann::json string_or_null(const std::string& s) {
    if (s.empty()) {
        return nullptr;
    }
    return s;
}

}  // namespace

nlohmann::json to_json(const task_info& t) {
    nlohmann::json progress = nullptr;
    if (t.progress) {
        progress = {{"fraction", t.progress->fraction}, {"note", t.progress->note}};
    }
    nlohmann::json result = nullptr;
    if (t.result) {
        result = msgpack_to_json(*t.result);
    }
    return {
        {"id", t.id},
        {"handler", t.handler},
        {"queue", t.queue},
        {"priority", t.priority},
        {"state", t.state},
        {"attempts", t.attempts},
        {"max_retries", t.max_retries},
        {"error", string_or_null(t.error)},
        {"progress", progress},
        {"result", result},
        {"created", iso8601_or_null(t.created)},
        {"started", iso8601_or_null(t.started)},
        {"finished", iso8601_or_null(t.finished)},
        {"eta", iso8601_or_null(t.eta)},
        {"parent", string_or_null(t.parent)},
        {"tags", t.tags},
        {"children", t.children},
        {"worker", string_or_null(t.worker)},
    };
}

nlohmann::json to_json(const worker_info& w) {
    auto handlers = nlohmann::json::array();
    for (const auto& h : w.handlers) {
        handlers.push_back({{"name", h.name}, {"version", h.version}, {"plugin", h.plugin}});
    }
    return {
        {"id", w.id},
        {"host", w.host},
        {"pid", w.pid},
        {"slots", w.slots},
        {"busy", w.busy},
        {"generation", w.generation},
        {"queues", w.queues},
        {"handlers", handlers},
        {"last_seen", iso8601_or_null(w.last_seen)},
    };
}

nlohmann::json to_json(const stats_info& s) {
    auto queues = nlohmann::json::array();
    for (const auto& q : s.queues) {
        queues.push_back({{"name", q.name}, {"ready", q.ready}, {"delayed", q.delayed}, {"running", q.running}});
    }
    return {
        {"queues", queues},
        {"states", s.states},
        {"counters", s.counters},
        {"workers", s.workers},
        {"slots", s.slots},
        {"busy", s.busy},
        {"uptime_ms", s.uptime.count()},
    };
}

}  // namespace taskmill::client
