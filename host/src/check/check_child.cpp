// The loading half of --check, run in a forked child (see check_child.hpp).
#include "check/check_child.hpp"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <taskmill/host/plugin_loader.hpp>
#include <taskmill/logging/stderr_logger.hpp>

namespace taskmill::host::detail {
namespace {

void send(int fd, const std::string& kind, std::string text) {
    for (auto& c : text) {
        if (c == '\n' || c == '\r') c = ' ';  // one message per line
    }
    std::string line = kind + " " + text + "\n";
    std::size_t done = 0;
    while (done < line.size()) {
        ssize_t n = ::write(fd, line.data() + done, line.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;  // the parent is gone
        done += static_cast<std::size_t>(n);
    }
}

const char* stage_phrase(load_stage s) {
    switch (s) {
        case load_stage::opening: return "while loading (constructor)";
        case load_stage::entry_point: return "in the entry point";
        case load_stage::init: return "in init()";
    }
    return "while loading";
}

std::string handler_line(const loaded_handler& h) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "  handler %s queue=%s timeout_ms=%lld retries=%d flags=%u", h.name.c_str(),
                  h.default_queue.empty() ? "default" : h.default_queue.c_str(),
                  static_cast<long long>(h.default_timeout_ms), h.default_retries, h.flags);
    return buf;
}

void report(int fd, const plugin_info& p) {
    send(fd, "line",
         "plugin " + p.name + " " + p.version + " abi " + std::to_string(p.abi_version >> 16) + "." +
             std::to_string(p.abi_version & 0xFFFFu) + " file " + p.source.string());
    for (const auto& h : p.handlers) send(fd, "line", handler_line(h));
    for (const auto& w : p.warnings) send(fd, "line", "  warning: " + w);
}

}  // namespace

void run_check_child(const options& o, int fd) {
    // Log lines of init() go to stderr: stdout is the report.
    auto log = o.log_format == "json"
                   ? logging::make_stderr_logger("check", logging::log_format::json)
                   : std::make_shared<spdlog::logger>("check", std::make_shared<spdlog::sinks::stderr_sink_st>());
    log->set_level(spdlog::level::from_str(o.log_level));
    auto dir = std::filesystem::path(o.run_dir) / ("check-" + std::to_string(::getpid()));
    {
        load_settings settings{o.plugin_configs, log.get(), [fd](load_stage s) { send(fd, "stage", stage_phrase(s)); }};
        plugin_set set(dir, std::move(settings));
        auto r = set.load(o.check_file);
        if (!r) {
            send(fd, "refused", r.error().message);
            ::_exit(0);
        }
        report(fd, **r);
        send(fd, "stage", "in shutdown()");
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    send(fd, "done", "");
    ::_exit(0);
}

}  // namespace taskmill::host::detail
