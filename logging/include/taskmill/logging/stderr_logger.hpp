// The loggers the broker and host processes write to stderr with, in the
// format the operator chose (log-format = text | json).
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/logger.h>

namespace taskmill::logging {

enum class log_format { text, json };

// The values log-format accepts, for the option's checks and --help.
inline const std::vector<std::string> log_format_names{"text", "json"};

// "text" or "json"; nullopt for anything else.
std::optional<log_format> parse_log_format(std::string_view name);

// A logger named `component` ("broker", "host", "worker" ...) writing to
// stderr: text as spdlog's default pattern (coloured on a terminal), or
// JSON lines (json_formatter.hpp). Sets the process's format, which
// json_lines() reports.
std::shared_ptr<spdlog::logger> make_stderr_logger(const std::string& component, log_format format);

// Whether this process logs JSON lines (a make_stderr_logger asked for it).
bool json_lines();

}  // namespace taskmill::logging
