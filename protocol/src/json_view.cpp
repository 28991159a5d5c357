// The one JSON view of tasks, workers, stats, times and msgpack bytes.
#include <taskmill/protocol/json_view.hpp>

#include <cstdio>
#include <ctime>

namespace taskmill::protocol {

namespace {

using nlohmann::json;

json str_or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

// ISO 8601 wants four digits for years 0..9999 and a sign beyond them.
std::string year_text(int64_t year) {
    char buf[32];
    const char* format = year >= 0 && year <= 9999 ? "%04lld" : "%+05lld";
    std::snprintf(buf, sizeof buf, format, static_cast<long long>(year));
    return buf;
}

json bad_msgpack(std::string_view why, std::size_t size) { return {{"msgpack_error", why}, {"size", size}}; }

}  // namespace

std::string iso8601_utc(int64_t unix_ms) {
    // Floor division, so times before 1970 keep a positive fraction; dividing
    // first keeps INT64_MIN in range.
    auto secs = unix_ms / 1000;
    auto frac = unix_ms % 1000;
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    // time_t is 64-bit and tm_year an int: every int64_t of milliseconds
    // (about 292 million years either way) fits, so gmtime_r cannot fail.
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&t, &tm);
    char rest[48];
    std::snprintf(rest, sizeof rest, "-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                  tm.tm_min, tm.tm_sec, static_cast<int>(frac));
    return year_text(static_cast<int64_t>(tm.tm_year) + 1900) + rest;
}

json iso8601_or_null(int64_t unix_ms) {
    if (unix_ms <= 0) {
        return nullptr;
    }
    return iso8601_utc(unix_ms);
}

json msgpack_to_json(std::string_view bytes, std::size_t max) {
    if (bytes.empty()) {
        return nullptr;
    }
    // Decoding (and later dumping or destroying) a value recurses once per
    // level: refuse the deep ones before nlohmann sees them.
    if (!msgpack_within_nesting(bytes, max)) {
        return bad_msgpack(nesting_error("the value", max).err.message, bytes.size());
    }
    try {
        return json::from_msgpack(bytes.begin(), bytes.end());
    } catch (const json::exception& e) {
        return bad_msgpack(e.what(), bytes.size());
    }
}

std::string json_to_msgpack(const json& value) {
    std::string out;
    json::to_msgpack(value, out);
    return out;
}

json truncated_payload(const std::optional<std::string>& bytes, uint64_t size) {
    json head = nullptr;
    if (bytes) {
        auto text = msgpack_to_json(*bytes).dump(-1, ' ', false, json::error_handler_t::replace);
        if (text.size() > payload_head_chars) {
            auto cut = payload_head_chars;
            while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) {
                --cut;  // not inside a UTF-8 sequence
            }
            text.resize(cut);
        }
        head = std::move(text);
    }
    return {{"truncated", true}, {"size", size}, {"head", std::move(head)}};
}

json to_json(const attempt_info& a) {
    return {{"attempt", a.attempt},
            {"worker", str_or_null(a.worker)},
            {"started", iso8601_or_null(a.started_ms)},
            {"finished", iso8601_or_null(a.finished_ms)},
            {"outcome", str_or_null(a.outcome)},
            {"error", str_or_null(a.error)},
            {"error_code", a.error_code ? json(*a.error_code) : json(nullptr)},
            {"version", str_or_null(a.version)}};
}

namespace {

// What STATUS adds to the task object.
void add_status_fields(json& out, const task_info& t) {
    if (t.payload && t.payload->size() <= max_payload_json) {
        out["payload"] = msgpack_to_json(*t.payload);
    } else {
        out["payload"] = truncated_payload(t.payload, t.payload_size);
    }
    out["payload_size"] = t.payload_size;
    auto history = json::array();
    for (const auto& a : t.history) {
        history.push_back(to_json(a));
    }
    out["history"] = std::move(history);
    out["checkpoint_size"] = t.checkpoint_size;
}

// The fields every task object has.
json task_fields(const task_info& t) {
    json progress = nullptr;
    if (t.progress) {
        progress = {{"fraction", t.progress->fraction}, {"note", t.progress->note}};
    }
    return {{"id", t.id},
            {"handler", t.handler},
            {"queue", t.queue},
            {"priority", t.priority},
            {"state", t.state},
            {"attempts", t.attempts},
            {"max_retries", t.max_retries},
            {"error", str_or_null(t.error)},
            {"progress", progress},
            {"result", t.result ? msgpack_to_json(*t.result) : json(nullptr)},
            {"created", iso8601_or_null(t.created_ms)},
            {"started", iso8601_or_null(t.started_ms)},
            {"finished", iso8601_or_null(t.finished_ms)},
            {"eta", iso8601_or_null(t.eta_ms)},
            {"created_ms", t.created_ms},
            {"started_ms", t.started_ms},
            {"finished_ms", t.finished_ms},
            {"parent", str_or_null(t.parent)},
            {"tags", t.tags},
            {"children", t.children},
            {"worker", str_or_null(t.worker)},
            {"error_code", t.error_code ? json(*t.error_code) : json(nullptr)},
            {"delete_at", iso8601_or_null(t.delete_at_ms)},
            {"delete_at_ms", t.delete_at_ms}};
}

}  // namespace

json to_json(const task_info& t) {
    auto out = task_fields(t);
    if (t.payload_size > 0) {
        add_status_fields(out, t);
    }
    return out;
}

json to_json(const worker_info& w) {
    auto handlers = json::array();
    for (const auto& h : w.handlers) {
        handlers.push_back({{"name", h.name}, {"version", h.version}, {"plugin", h.plugin}});
    }
    return {{"id", w.id},
            {"host", w.host},
            {"pid", w.pid},
            {"slots", w.slots},
            {"busy", w.busy},
            {"generation", w.generation},
            {"queues", w.queues},
            {"handlers", handlers},
            {"last_seen", iso8601_or_null(w.last_seen_ms)},
            {"last_seen_ms", w.last_seen_ms},
            {"prefetch", w.prefetch},
            {"running", w.running},
            {"rss_bytes", w.rss_bytes > 0 ? json(w.rss_bytes) : json(nullptr)}};
}

json to_json(const stats_info& s) {
    auto queues = json::array();
    for (const auto& q : s.queues) {
        queues.push_back(to_json(q));
    }
    auto handlers = json::array();
    for (const auto& h : s.handlers) {
        handlers.push_back({{"name", h.name}, {"running", h.running}, {"limits", to_json(h.limits)}});
    }
    return {{"queues", queues},       {"states", s.states},  {"counters", s.counters},   {"workers", s.workers},
            {"slots", s.slots},       {"busy", s.busy},      {"uptime_ms", s.uptime_ms}, {"handlers", handlers},
            {"prefetch", s.prefetch}, {"running", s.running}};
}

// ---- queue control and flow limits ----

json to_json(const flow_limits& l) {
    // No limit is null, so that a script reads "none" plainly.
    auto or_null = [](auto v) { return v > 0 ? json(v) : json(nullptr); };
    return {{"rate", or_null(l.rate)},
            {"burst", l.rate > 0 ? json(l.burst > 0 ? l.burst : std::max<uint32_t>(1, static_cast<uint32_t>(l.rate)))
                                 : json(nullptr)},
            {"max_running", or_null(l.max_running)}};
}

json to_json(const queue_stats& q) {
    return {{"name", q.name},       {"ready", q.ready},   {"delayed", q.delayed},
            {"running", q.running}, {"paused", q.paused}, {"limits", to_json(q.limits)}};
}

}  // namespace taskmill::protocol
