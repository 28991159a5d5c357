// Turning a [schedule.NAME] section of broker.ini, as the config loader
// read it, into a checked schedule (see schedule.hpp).
#include <taskmill/broker/schedule.hpp>

#include <map>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/nesting.hpp>

#include "model/validate.hpp"
#include "schedule/cron.hpp"

namespace taskmill::broker {
namespace {

std::string unquote(std::string v) {
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
        return v.substr(1, v.size() - 2);
    }
    return v;
}

bool valid_name(std::string_view n) {
    if (n.empty() || n.size() > 64) {
        return false;
    }
    for (char c : n) {
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
                  c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

}  // namespace

void check_schedule(const schedule_config& s) {
    if (!valid_name(s.name)) {
        throw std::runtime_error("schedule name '" + s.name + "' must be 1-64 of [A-Za-z0-9_.-]");
    }
    if (s.handler.empty() || !parse_handler(s.handler)) {
        throw std::runtime_error("schedule " + s.name + ": handler '" + s.handler + "' is missing or malformed");
    }
    if (!s.queue.empty() && !valid_queue_name(s.queue)) {
        throw std::runtime_error("schedule " + s.name + ": bad queue name '" + s.queue + "'");
    }
    if (!s.payload_json.empty()) {
        if (!nlohmann::json::accept(s.payload_json)) {
            throw std::runtime_error("schedule " + s.name + ": payload is not valid JSON");
        }
        if (auto j = protocol::parse_json<nlohmann::json>(s.payload_json, "payload"); !j) {
            throw std::runtime_error("schedule " + s.name + ": " + j.error().message);  // nested too deeply
        }
    }
    if (s.every.empty() == s.cron.empty()) {
        throw std::runtime_error("schedule " + s.name + ": set exactly one of 'every' and 'cron'");
    }
    if (!s.every.empty()) {
        if (!s.timezone.empty()) {
            throw std::runtime_error("schedule " + s.name + ": 'timezone' applies to cron only");
        }
        if (auto e = parse_every(s.every); !e) {
            throw std::runtime_error("schedule " + s.name + ": " + e.error().message);
        }
    } else if (auto c = parse_cron(s.cron, s.timezone); !c) {
        throw std::runtime_error("schedule " + s.name + ": cron '" + s.cron + "': " + c.error().message);
    }
}

schedule_config read_schedule_section(const config::section& sec) {
    schedule_config out;
    out.name = sec.name;
    out.where = sec.where;
    std::map<std::string, std::string> key_where;  // key -> "file:line"
    for (const auto& e : sec.entries) {
        std::string* field = e.key == "handler"    ? &out.handler
                             : e.key == "payload"  ? &out.payload_json
                             : e.key == "queue"    ? &out.queue
                             : e.key == "every"    ? &out.every
                             : e.key == "cron"     ? &out.cron
                             : e.key == "timezone" ? &out.timezone
                                                   : nullptr;
        if (field == nullptr) {
            throw config::error(e.where + ": unknown key '" + e.key + "' in [schedule." + sec.name +
                                "] (handler payload queue every cron timezone)");
        }
        *field = unquote(e.value);
        key_where[e.key] = e.where;
    }
    auto at = [&](const std::string& k) {
        auto it = key_where.find(k);
        return it == key_where.end() ? out.where : it->second;
    };
    // Expression errors point at their own line, the rest at the section.
    if (!out.cron.empty()) {
        if (auto c = parse_cron(out.cron, out.timezone); !c) {
            bool zone = c.error().message.find("time zone") != std::string::npos;
            throw config::error(at(zone ? "timezone" : "cron") + ": schedule " + out.name + ": cron '" + out.cron +
                                "': " + c.error().message);
        }
    }
    if (!out.every.empty()) {
        if (auto e = parse_every(out.every); !e) {
            throw config::error(at("every") + ": schedule " + out.name + ": " + e.error().message);
        }
    }
    if (!out.payload_json.empty() && !nlohmann::json::accept(out.payload_json)) {
        throw config::error(at("payload") + ": schedule " + out.name + ": payload is not valid JSON");
    }
    try {
        check_schedule(out);
    } catch (const std::exception& e) {
        throw config::error(out.where + ": " + e.what());
    }
    return out;
}

}  // namespace taskmill::broker
