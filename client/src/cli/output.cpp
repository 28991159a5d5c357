// Text and JSON output of tasks, workers and stats.
#include "output.hpp"

#include <algorithm>
#include <iomanip>
#include <ostream>
#include <sstream>

#include <taskmill/client/json.hpp>
#include <taskmill/protocol/json_view.hpp>

namespace taskmill::cli {

namespace {

std::string text_of(const nlohmann::json& v) {
    if (v.is_null()) {
        return "-";
    }
    if (v.is_string()) {
        return v.get<std::string>();
    }
    return v.dump();
}

std::string join(const std::vector<std::string>& v) {
    std::string out;
    for (const auto& s : v) {
        out += (out.empty() ? "" : ",") + s;
    }
    return out.empty() ? "-" : out;
}

// A table with columns sized to their widest cell.
void print_table(std::ostream& out, const std::vector<std::vector<std::string>>& rows) {
    std::vector<std::size_t> width;
    for (const auto& row : rows) {
        width.resize(std::max(width.size(), row.size()));
        for (std::size_t c = 0; c < row.size(); ++c) {
            width[c] = std::max(width[c], row[c].size());
        }
    }
    for (const auto& row : rows) {
        std::string line;
        for (std::size_t c = 0; c < row.size(); ++c) {
            line += row[c];
            if (c + 1 < row.size()) {
                line += std::string(width[c] - row[c].size() + 2, ' ');
            }
        }
        out << line << "\n";
    }
}

// What a terminal shows of a payload: its JSON text, cut to a line or two.
constexpr std::size_t payload_chars = 200;

std::string dump(const nlohmann::json& v) { return v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace); }

std::string payload_text(const client::task_info& t, const nlohmann::json& j) {
    const auto& p = j["payload"];
    std::string size = std::to_string(t.payload_size) + " bytes";
    bool cut = !t.payload || t.payload->size() > protocol::max_payload_json;  // then p is truncated_payload()
    std::string text = cut ? (p["head"].is_string() ? p["head"].get<std::string>() : std::string()) : dump(p);
    if (text.size() > payload_chars) {
        text.resize(payload_chars);
        cut = true;
    }
    if (!cut) {
        return text;
    }
    while (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0x80) {
        text.pop_back();  // a cut UTF-8 sequence
    }
    if (!text.empty() && (static_cast<unsigned char>(text.back()) & 0xC0) == 0xC0) {
        text.pop_back();
    }
    return text + "... (" + size + " of msgpack; status --json shows more)";
}

// "#2 retry worker=w1 version=1.0.0 12:00:01.000Z..12:00:02.500Z: boom (code 7)"
std::string attempt_line(const nlohmann::json& a) {
    std::string line = "#" + text_of(a["attempt"]) + " " + (a["outcome"].is_null() ? "running" : text_of(a["outcome"]));
    line += " worker=" + text_of(a["worker"]) + " version=" + text_of(a["version"]);
    line += " " + text_of(a["started"]) + " .. " + text_of(a["finished"]);
    if (!a["error"].is_null()) {
        line += ": " + text_of(a["error"]);
    }
    if (!a["error_code"].is_null()) {
        line += " (code " + text_of(a["error_code"]) + ")";
    }
    return line;
}

}  // namespace

std::string progress_line(const client::task_info& t) {
    std::string line = t.state;
    if (t.progress) {
        line += " " + std::to_string(static_cast<int>(t.progress->fraction * 100.0 + 0.5)) + "%";
        if (!t.progress->note.empty()) {
            line += " " + t.progress->note.substr(0, 60);
        }
    }
    return line;
}

void print_task(std::ostream& out, const client::task_info& t, bool json) {
    auto j = client::to_json(t);
    if (json) {
        out << dump(j) << "\n";
        return;
    }
    static const char* keys[] = {"id",          "handler",  "queue",      "priority", "state",  "attempts",
                                 "max_retries", "error",    "error_code", "progress", "result", "created",
                                 "started",     "finished", "eta",        "parent",   "worker", "delete_at"};
    for (const char* k : keys) {
        out << k << ": " << text_of(j[k]) << "\n";
    }
    out << "tags: " << join(t.tags) << "\n";
    out << "children: " << join(t.children) << "\n";
    if (j.contains("payload")) {
        out << "payload: " << payload_text(t, j) << "\n";
        out << "history:" << (t.history.empty() ? " -" : "") << "\n";
        for (const auto& a : j["history"]) {
            out << "  " << attempt_line(a) << "\n";
        }
    }
}

void print_tasks(std::ostream& out, const std::vector<client::task_info>& ts, bool json) {
    if (json) {
        auto arr = nlohmann::json::array();
        for (const auto& t : ts) {
            arr.push_back(client::to_json(t));
        }
        out << arr.dump() << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows{{"ID", "STATE", "HANDLER", "QUEUE", "PRI", "ATTEMPTS", "CREATED"}};
    for (const auto& t : ts) {
        rows.push_back({t.id, t.state, t.handler, t.queue, std::to_string(t.priority), std::to_string(t.attempts),
                        text_of(client::iso8601_or_null(t.created))});
    }
    print_table(out, rows);
}

void print_workers(std::ostream& out, const std::vector<client::worker_info>& ws, bool json) {
    if (json) {
        auto arr = nlohmann::json::array();
        for (const auto& w : ws) {
            arr.push_back(client::to_json(w));
        }
        out << arr.dump() << "\n";
        return;
    }
    std::vector<std::vector<std::string>> rows{
        {"ID", "RUNNING/SLOTS", "PREFETCH", "GEN", "MEM", "QUEUES", "HANDLERS", "LAST SEEN"}};
    for (const auto& w : ws) {
        std::vector<std::string> handlers;
        for (const auto& h : w.handlers) {
            handlers.push_back(h.name + "@" + h.version);
        }
        // PREFETCH: tasks waiting for a free slot / room for them.
        const unsigned waiting = w.busy > w.running ? w.busy - w.running : 0;
        rows.push_back({w.id, std::to_string(w.running) + "/" + std::to_string(w.slots),
                        std::to_string(waiting) + "/" + std::to_string(w.prefetch), std::to_string(w.generation),
                        w.rss_bytes > 0 ? std::to_string(w.rss_bytes >> 20) + " MiB" : "-",
                        w.queues.empty() ? "*" : join(w.queues), join(handlers),
                        text_of(client::iso8601_or_null(w.last_seen))});
    }
    print_table(out, rows);
}

// ---- queue control and flow limits ----

namespace {

std::string rate_cell(const client::flow_limits& l) {
    if (l.rate <= 0) {
        return "-";
    }
    std::ostringstream text;
    text << l.rate << "/s";
    return text.str();
}

std::string burst_cell(const client::flow_limits& l) {
    if (l.rate <= 0) {
        return "-";
    }
    return std::to_string(l.burst > 0 ? l.burst : std::max<uint32_t>(1, static_cast<uint32_t>(l.rate)));
}

std::string cap_cell(const client::flow_limits& l) { return l.max_running > 0 ? std::to_string(l.max_running) : "-"; }

void print_queue_table(std::ostream& out, const std::vector<client::queue_stats>& qs) {
    std::vector<std::vector<std::string>> rows{
        {"QUEUE", "READY", "DELAYED", "RUNNING", "PAUSED", "RATE", "BURST", "MAX-RUNNING"}};
    for (const auto& q : qs) {
        rows.push_back({q.name, std::to_string(q.ready), std::to_string(q.delayed), std::to_string(q.running),
                        q.paused ? "yes" : "no", rate_cell(q.limits), burst_cell(q.limits), cap_cell(q.limits)});
    }
    print_table(out, rows);
}

void print_handler_table(std::ostream& out, const std::vector<client::handler_stats>& hs) {
    std::vector<std::vector<std::string>> rows{{"HANDLER", "RUNNING", "RATE", "BURST", "MAX-RUNNING"}};
    for (const auto& h : hs) {
        rows.push_back(
            {h.name, std::to_string(h.running), rate_cell(h.limits), burst_cell(h.limits), cap_cell(h.limits)});
    }
    print_table(out, rows);
}

}  // namespace

void print_queues(std::ostream& out, const std::vector<client::queue_stats>& qs, bool json) {
    if (json) {
        auto arr = nlohmann::json::array();
        for (const auto& q : qs) {
            arr.push_back(client::to_json(q));
        }
        out << arr.dump() << "\n";
        return;
    }
    print_queue_table(out, qs);
}

void print_handler_limits(std::ostream& out, const client::handler_stats& h, bool json) {
    if (json) {
        client::stats_info s;
        s.handlers = {h};
        out << client::to_json(s)["handlers"][0].dump() << "\n";
        return;
    }
    print_handler_table(out, {h});
}

void print_stats(std::ostream& out, const client::stats_info& s, bool json) {
    if (json) {
        out << client::to_json(s).dump() << "\n";
        return;
    }
    out << "workers: " << s.workers << "  slots: " << s.slots << "  prefetch: " << s.prefetch
        << "  running: " << s.running << "  dispatched: " << s.busy << "  uptime: " << std::fixed
        << std::setprecision(1) << static_cast<double>(s.uptime.count()) / 1000.0 << " s\n";
    print_queue_table(out, s.queues);
    if (!s.handlers.empty()) {
        print_handler_table(out, s.handlers);
    }
    for (const auto& [name, n] : s.states) {
        out << "state " << name << ": " << n << "\n";
    }
    for (const auto& [name, n] : s.counters) {
        out << "counter " << name << ": " << n << "\n";
    }
}

}  // namespace taskmill::cli
