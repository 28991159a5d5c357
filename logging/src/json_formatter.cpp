#include "taskmill/logging/json_formatter.hpp"

#include <ctime>
#include <string_view>

#include <nlohmann/json.hpp>

#include "taskmill/logging/log_fields.hpp"

namespace taskmill::logging {

namespace {

// RFC 3339 UTC with milliseconds: 2026-12-02T07:20:21.123Z.
std::string rfc3339(spdlog::log_clock::time_point t) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    auto secs = static_cast<std::time_t>(ms / 1000);
    std::tm tm{};
    ::gmtime_r(&secs, &tm);
    char buf[40];
    auto n = std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
    std::snprintf(buf + n, sizeof buf - n, ".%03dZ", static_cast<int>(ms % 1000));
    return buf;
}

// The names log-level takes ("warn", not spdlog's "warning").
const char* level_name(spdlog::level::level_enum l) {
    switch (l) {
        case spdlog::level::trace: return "trace";
        case spdlog::level::debug: return "debug";
        case spdlog::level::info: return "info";
        case spdlog::level::warn: return "warn";
        case spdlog::level::err: return "error";
        case spdlog::level::critical: return "critical";
        default: return "off";
    }
}

// The value of the word `key=VALUE` in `msg` (at its start or after a
// space; VALUE ends at a space, or is a "quoted" string); empty if none.
std::string word_value(std::string_view msg, std::string_view key) {
    for (std::size_t at = msg.find(key); at != std::string_view::npos; at = msg.find(key, at + 1)) {
        auto eq = at + key.size();
        if ((at != 0 && msg[at - 1] != ' ') || eq >= msg.size() || msg[eq] != '=') continue;
        auto v = msg.substr(eq + 1);
        if (!v.empty() && v.front() == '"') {
            auto close = v.find('"', 1);
            return std::string(v.substr(1, close == std::string_view::npos ? v.npos : close - 1));
        }
        return std::string(v.substr(0, v.find(' ')));
    }
    return {};
}

void add_text(nlohmann::ordered_json& j, const char* key, const std::string& field, std::string_view msg) {
    auto v = field.empty() ? word_value(msg, key) : field;
    if (!v.empty()) j[key] = std::move(v);
}

void add_attempt(nlohmann::ordered_json& j, int64_t field, std::string_view msg) {
    if (field >= 0) {
        j["attempt"] = field;
        return;
    }
    auto v = word_value(msg, "attempt");
    if (!v.empty() && v.find_first_not_of("0123456789") == std::string::npos && v.size() < 10) {
        j["attempt"] = std::stoll(v);
    }
}

}  // namespace

void json_formatter::format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) {
    const auto& f = current_log_fields();
    std::string_view text(msg.payload.data(), msg.payload.size());
    nlohmann::ordered_json j;
    j["time"] = rfc3339(msg.time);
    j["level"] = level_name(msg.level);
    j["component"] = f.component.empty() ? std::string(msg.logger_name.data(), msg.logger_name.size()) : f.component;
    j["msg"] = text;
    add_text(j, "task", f.task, text);
    add_text(j, "handler", f.handler, text);
    add_text(j, "queue", f.queue, text);
    add_attempt(j, f.attempt, text);
    add_text(j, "worker", f.worker, text);
    add_text(j, "plugin", f.plugin, text);
    auto line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    dest.append(line.data(), line.data() + line.size());
}

std::unique_ptr<spdlog::formatter> json_formatter::clone() const { return std::make_unique<json_formatter>(); }

}  // namespace taskmill::logging
