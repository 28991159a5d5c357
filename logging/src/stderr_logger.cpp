#include "taskmill/logging/stderr_logger.hpp"

#include <atomic>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include "taskmill/logging/json_formatter.hpp"

namespace taskmill::logging {

namespace {
std::atomic<bool> json_format{false};
}

std::optional<log_format> parse_log_format(std::string_view name) {
    if (name == "text") return log_format::text;
    if (name == "json") return log_format::json;
    return std::nullopt;
}

std::shared_ptr<spdlog::logger> make_stderr_logger(const std::string& component, log_format format) {
    if (format == log_format::text) {
        return spdlog::stderr_color_mt(component);
    }
    json_format = true;
    // No colours: a terminal's escape codes would break the JSON.
    auto log = spdlog::stderr_logger_mt(component);
    log->set_formatter(std::make_unique<json_formatter>());
    return log;
}

bool json_lines() { return json_format.load(std::memory_order_relaxed); }

}  // namespace taskmill::logging
