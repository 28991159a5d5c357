// Reading [schedule.NAME] sections of broker.ini (see schedule.hpp).
// Boost.Program_options cannot hold sections whose names are user-chosen,
// so these are read here, line by line, and blanked out for Boost.
#include <taskmill/broker/schedule.hpp>

#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/nesting.hpp>

#include "schedule/cron.hpp"
#include "model/validate.hpp"

namespace taskmill::broker {
namespace {

constexpr std::string_view prefix = "schedule.";

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r");
    auto e = s.find_last_not_of(" \t\r");
    return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

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
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                  c == '-' || c == '.';
        if (!ok) {
            return false;
        }
    }
    return true;
}

std::vector<std::string> read_lines(const std::string& file) {
    std::ifstream in(file);
    if (!in) {
        throw std::runtime_error("cannot read config file " + file);
    }
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) {
        lines.push_back(l);
    }
    return lines;
}

// The section named on this line, if it is a section header.
std::optional<std::string> section_of(const std::string& line) {
    auto t = trim(line);
    if (t.size() >= 2 && t.front() == '[' && t.back() == ']') {
        return trim(std::string_view(t).substr(1, t.size() - 2));
    }
    return std::nullopt;
}

bool is_schedule_section(const std::string& s) { return s.rfind(prefix, 0) == 0; }

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

std::vector<schedule_config> read_schedule_sections(const std::string& file) {
    auto lines = read_lines(file);
    std::vector<schedule_config> out;
    std::map<std::string, int> seen;
    schedule_config* cur = nullptr;
    std::map<std::string, std::string> key_where;  // key -> "file:line" in the current section
    auto finish = [&] {
        if (cur == nullptr) {
            return;
        }
        auto at = [&](const std::string& k) {
            auto it = key_where.find(k);
            return it == key_where.end() ? cur->where : it->second;
        };
        // Expression errors point at their own line, the rest at the section.
        if (!cur->cron.empty()) {
            if (auto c = parse_cron(cur->cron, cur->timezone); !c) {
                bool zone = c.error().message.find("time zone") != std::string::npos;
                throw std::runtime_error(at(zone ? "timezone" : "cron") + ": schedule " + cur->name + ": cron '" +
                                         cur->cron + "': " + c.error().message);
            }
        }
        if (!cur->every.empty()) {
            if (auto e = parse_every(cur->every); !e) {
                throw std::runtime_error(at("every") + ": schedule " + cur->name + ": " + e.error().message);
            }
        }
        if (!cur->payload_json.empty() && !nlohmann::json::accept(cur->payload_json)) {
            throw std::runtime_error(at("payload") + ": schedule " + cur->name + ": payload is not valid JSON");
        }
        try {
            check_schedule(*cur);
        } catch (const std::exception& e) {
            throw std::runtime_error(cur->where + ": " + e.what());
        }
    };
    for (std::size_t i = 0; i < lines.size(); ++i) {
        int n = static_cast<int>(i + 1);
        auto where = file + ":" + std::to_string(n);
        if (auto sec = section_of(lines[i])) {
            finish();
            cur = nullptr;
            if (is_schedule_section(*sec)) {
                auto name = sec->substr(prefix.size());
                if (auto it = seen.find(name); it != seen.end()) {
                    throw std::runtime_error(where + ": schedule " + name + " already defined at line " +
                                             std::to_string(it->second));
                }
                seen[name] = n;
                out.push_back(schedule_config{});
                cur = &out.back();
                cur->name = name;
                cur->where = where;
                key_where.clear();
            }
            continue;
        }
        auto t = trim(lines[i]);
        if (cur == nullptr || t.empty() || t[0] == '#' || t[0] == ';') {
            continue;
        }
        auto eq = t.find('=');
        if (eq == std::string::npos) {
            throw std::runtime_error(where + ": expected 'key = value'");
        }
        auto key = trim(std::string_view(t).substr(0, eq));
        auto value = unquote(trim(std::string_view(t).substr(eq + 1)));
        std::string* field = key == "handler"    ? &cur->handler
                             : key == "payload"  ? &cur->payload_json
                             : key == "queue"    ? &cur->queue
                             : key == "every"    ? &cur->every
                             : key == "cron"     ? &cur->cron
                             : key == "timezone" ? &cur->timezone
                                                 : nullptr;
        if (field == nullptr) {
            throw std::runtime_error(where + ": unknown key '" + key + "' in [schedule." + cur->name +
                                     "] (handler payload queue every cron timezone)");
        }
        *field = value;
        key_where[key] = where;
    }
    finish();
    return out;
}

std::string without_schedule_sections(const std::string& file) {
    auto lines = read_lines(file);
    std::ostringstream out;
    bool in_schedule = false;
    for (const auto& l : lines) {
        if (auto sec = section_of(l)) {
            in_schedule = is_schedule_section(*sec);
        }
        out << (in_schedule ? "" : l) << "\n";
    }
    return out.str();
}

}  // namespace taskmill::broker
