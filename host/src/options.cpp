// Command line + INI config + environment -> host::options, through the
// shared config loader.
#include <taskmill/host/options.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <taskmill/config/loader.hpp>
#include <taskmill/logging/stderr_logger.hpp>
#include <taskmill/protocol/endpoints.hpp>

#include "loader/plugin_config.hpp"

namespace taskmill::host {
namespace {

const std::vector<std::string> log_levels{"trace", "debug", "info", "warn", "error", "critical", "off"};

// What the flags and the file hold before validate() turns it into options.
struct raw {
    std::string queues;
    std::string prefetch = "auto";
    bool help = false;
    bool worker = false;
    bool print_config = false;
};

// Options that may appear in a config file, the environment and as flags.
void declare_settings(config::loader& l, options& o, raw& r) {
    l.add("broker", config::text(o.broker),
          "broker BACKEND endpoint, or a cluster's members comma-separated (the host follows the leader)")
        .env = "TASKMILL_BROKER_BACKEND";
    l.add("plugins", config::text(o.plugins_dir), "plugins folder (default <exe>/../plugins)");
    l.add("queues", config::text(r.queues), "comma-separated queues to serve (default: all)");
    l.add("processes", config::number(o.processes, uint32_t{1}), "worker processes");
    l.add("concurrency", config::number(o.concurrency, uint32_t{1}, max_worker_slots), "task slots per worker process");
    l.add("prefetch", config::text(r.prefetch),
          "tasks a worker process holds beyond its slots: auto (sized from the tasks' run time, "
          "from 4 x concurrency) or a fixed number (0 = none)");
    l.add("prefetch-max", config::number(o.prefetch_max), "the most an auto prefetch grows to (at least 1)");
    l.add("run-dir", config::text(o.run_dir), "folder for private plugin copies (default $TMPDIR/taskmill-host.PID)");
    l.add("heartbeat-ms", config::number(o.heartbeat_ms, int64_t{1}), "heartbeat interval until the broker sets one");
    l.add("failover-ms", config::number(o.failover_ms, int64_t{1}, int64_t{600000}),
          "several brokers: silence beyond one heartbeat after which a worker tries the next");
    l.add("log-level", config::choice(o.log_level, log_levels), "trace debug info warn error critical off");
    l.add("log-format", config::choice(o.log_format, logging::log_format_names),
          "text | json (one JSON object a line; docs/OPERATIONS.md, \"Logs as JSON\")");
    l.add("kill-grace-ms", config::number(o.kill_grace_ms, int64_t{0}),
          "after a task deadline, ms before the worker is restarted");
    l.add("grace-ms", config::number(o.grace_ms, int64_t{0}), "graceful stop: ms to finish running tasks");
    l.add("max-tasks", config::number(o.max_tasks), "recycle a worker after N tasks (0 = never)");
    l.add("max-rss-mb", config::number(o.max_rss_mb), "recycle a worker past N MB of RSS (0 = never)");
    l.add("memory-limit-mb", config::number(o.memory_limit_mb),
          "hard address-space limit per worker process (RLIMIT_AS; 0 = none)");
    l.add("watch", config::boolean(o.watch), "hot reload when the plugins folder changes (true|false)");
    l.add("curve-server-key", config::text(o.curve_server_key), "broker public key (Z85 or .pub file): CURVE on");
    l.add("curve-key-file", config::text(o.curve_key_file), "this host's key pair file (taskmill keygen)");
    l.add("strict-modes", config::boolean(o.strict_modes),
          "refuse a plugins folder or .so writable by others or not owned by this user or root (true|false)");
    l.add("init-timeout-ms", config::number(o.init_timeout_ms, int64_t{1}),
          "a plugin whose constructors or init() take longer is refused by --check (and a reload)");
    l.add("metrics", config::text(o.metrics),
          "serve Prometheus /metrics on HOST:PORT (port 0 = pick; the log names it); off if unset");
}

// [plugin.NAME] key = value sections: each becomes the msgpack map NAME's init() receives.
void declare_plugin_sections(config::loader& l, options& o) {
    l.sections("plugin.", [&o](const config::section& s) {
        if (s.name.empty()) throw config::error(s.where + ": [plugin.NAME] needs the plugin's name");
        std::vector<std::pair<std::string, std::string>> entries;
        for (const auto& e : s.entries) entries.emplace_back(e.key, e.value);
        auto bytes = detail::encode_plugin_section(entries);
        if (!bytes) throw config::error(s.where + ": [plugin." + s.name + "]: " + bytes.error().message);
        o.plugin_configs[s.name] = std::move(*bytes);
    });
}

void declare_commands(config::loader& l, options& o, raw& r) {
    using config::scope;
    l.add("help", config::switch_flag(r.help), "show this help", scope::flag_only).short_name = 'h';
    l.add("config", config::text(o.config_file), "INI config file", scope::flag_only);
    l.add("check", config::text(o.check_file),
          "load FILE.so in a child process as a worker would; print its handlers and 'ok' (exit 0), "
          "or 'refused: REASON' (exit 2)",
          scope::flag_only);
    l.add("print-config", config::switch_flag(r.print_config),
          "print the effective configuration (an INI file, with where each value came from) and exit",
          scope::flag_only);
    l.add("worker", config::switch_flag(r.worker), "run as a worker process", scope::flag_only).hidden = true;
    l.add("generation", config::number(o.generation), "the worker's generation", scope::flag_only).hidden = true;
    l.add("plugin-config", config::text(o.plugin_config_file), "the supervisor's [plugin.NAME] sections",
          scope::flag_only)
        .hidden = true;
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> out;
    std::stringstream ss(s);
    for (std::string item; std::getline(ss, item, ',');) {
        if (!item.empty()) out.push_back(item);
    }
    return out;
}

std::string default_plugins_dir() {
    std::error_code ec;
    auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return "plugins";
    return (exe.parent_path().parent_path() / "plugins").string();
}

// `prefetch`: "auto" or a number of tasks.
result<void> validate_prefetch(options& o, const std::string& prefetch) {
    const int64_t room = int64_t{max_worker_slots} - o.concurrency;
    if (prefetch == "auto") {
        if (o.prefetch_max == 0) return fail(errc::invalid_argument, "--prefetch-max must be at least 1");
        if (room == 0) {  // the slots take the whole limit: nothing can wait
            o.prefetch_auto = false;
            o.prefetch = 0;
            return {};
        }
        o.prefetch_auto = true;
        o.prefetch_max = static_cast<uint32_t>(std::min<int64_t>(o.prefetch_max, room));
        o.prefetch = std::min<uint32_t>(4 * o.concurrency, o.prefetch_max);
        return {};
    }
    int64_t n = -1;
    auto [end, ec] = std::from_chars(prefetch.data(), prefetch.data() + prefetch.size(), n);
    if (ec != std::errc() || end != prefetch.data() + prefetch.size() || n < 0) {
        return fail(errc::invalid_argument,
                    "--prefetch must be auto or a number of tasks (0 or more), not '" + prefetch + "'");
    }
    if (n > room) {
        return fail(errc::invalid_argument, "--concurrency + --prefetch must be at most " +
                                                std::to_string(max_worker_slots) + " (got " +
                                                std::to_string(o.concurrency) + " + " + prefetch + ")");
    }
    o.prefetch_auto = false;
    o.prefetch = static_cast<uint32_t>(n);
    return {};
}

result<void> validate(options& o, const std::string& prefetch) {
    if (o.processes == 0) return fail(errc::invalid_argument, "--processes must be at least 1");
    if (o.concurrency == 0) return fail(errc::invalid_argument, "--concurrency must be at least 1");
    if (o.concurrency > max_worker_slots) {
        return fail(errc::invalid_argument, "--concurrency must be at most " + std::to_string(max_worker_slots));
    }
    if (auto ok = validate_prefetch(o, prefetch); !ok) return ok;
    if (o.heartbeat_ms <= 0) return fail(errc::invalid_argument, "--heartbeat-ms must be positive");
    try {
        (void)protocol::split_endpoints(o.broker);
    } catch (const std::invalid_argument& e) {
        return fail(errc::invalid_argument, "--broker: " + std::string(e.what()));
    }
    if (o.plugins_dir.empty()) o.plugins_dir = default_plugins_dir();
    if (o.run_dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        o.run_dir =
            std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/taskmill-host." + std::to_string(::getpid());
    }
    return {};
}

}  // namespace

result<options> parse_options(int argc, const char* const* argv) {
    return parse_options(argc, argv, config::process_environment());
}

result<options> parse_options(int argc, const char* const* argv, const std::map<std::string, std::string>& env) {
    options o;
    raw r;
    config::loader l("taskmill-host");
    declare_commands(l, o, r);
    declare_settings(l, o, r);
    declare_plugin_sections(l, o);
    l.file_option("config");
    try {
        l.load(argc, argv, env);
    } catch (const std::exception& e) {
        return fail(errc::invalid_argument, e.what());
    }
    if (r.help) {
        o.help_text = l.help("usage: taskmill-host [options]\n       taskmill-host --check FILE.so");
        o.run_mode = mode::help;
        return o;
    }
    o.run_mode = r.worker                ? mode::worker
                 : !o.check_file.empty() ? mode::check
                 : r.print_config        ? mode::print_config
                                         : mode::supervisor;
    o.queues = split_commas(r.queues);
    if (!o.plugin_config_file.empty()) {
        auto configs = detail::read_plugin_configs(o.plugin_config_file);
        if (!configs) return fail(errc::invalid_argument, "--plugin-config: " + configs.error().message);
        o.plugin_configs = std::move(*configs);
    }
    if (auto ok = validate(o, r.prefetch); !ok) return fail(ok.error().code, ok.error().message);
    // Shown after validate() so that defaults it fills in (folders, an auto
    // prefetch with no room) are what is printed.
    r.prefetch = prefetch_text(o);
    o.config_text = l.print_config();
    return o;
}

result<void> save_plugin_configs(options& o) {
    if (o.plugin_configs.empty()) return {};
    std::error_code ec;
    std::filesystem::create_directories(o.run_dir, ec);
    auto path = o.run_dir + "/plugin-config";
    if (auto ok = detail::write_plugin_configs(path, o.plugin_configs); !ok) return ok;
    o.plugin_config_file = path;
    return {};
}

std::string prefetch_text(const options& o) { return o.prefetch_auto ? "auto" : std::to_string(o.prefetch); }

std::vector<std::string> worker_argv(const options& o, const std::string& exe, uint32_t generation) {
    std::string queues;
    for (const auto& q : o.queues) queues += (queues.empty() ? "" : ",") + q;
    std::vector<std::string> argv{exe,
                                  "--worker",
                                  "--generation",
                                  std::to_string(generation),
                                  "--broker",
                                  o.broker,
                                  "--plugins",
                                  o.plugins_dir,
                                  "--concurrency",
                                  std::to_string(o.concurrency),
                                  "--prefetch",
                                  prefetch_text(o),
                                  "--prefetch-max",
                                  std::to_string(o.prefetch_max),
                                  "--run-dir",
                                  o.run_dir,
                                  "--heartbeat-ms",
                                  std::to_string(o.heartbeat_ms),
                                  "--failover-ms",
                                  std::to_string(o.failover_ms),
                                  "--log-level",
                                  o.log_level,
                                  "--kill-grace-ms",
                                  std::to_string(o.kill_grace_ms),
                                  "--grace-ms",
                                  std::to_string(o.grace_ms),
                                  "--max-tasks",
                                  std::to_string(o.max_tasks),
                                  "--max-rss-mb",
                                  std::to_string(o.max_rss_mb),
                                  "--memory-limit-mb",
                                  std::to_string(o.memory_limit_mb)};
    argv.insert(argv.end(), {"--strict-modes", o.strict_modes ? "true" : "false"});
    argv.insert(argv.end(), {"--log-format", o.log_format});
    if (!o.plugin_config_file.empty()) argv.insert(argv.end(), {"--plugin-config", o.plugin_config_file});
    if (!o.curve_server_key.empty()) argv.insert(argv.end(), {"--curve-server-key", o.curve_server_key});
    if (!o.curve_key_file.empty()) argv.insert(argv.end(), {"--curve-key-file", o.curve_key_file});
    if (!queues.empty()) {
        argv.emplace_back("--queues");
        argv.push_back(queues);
    }
    return argv;
}

std::vector<std::string> check_argv(const options& o, const std::string& exe, const std::string& file) {
    std::vector<std::string> argv{exe,
                                  "--check",
                                  file,
                                  "--run-dir",
                                  o.run_dir,
                                  "--strict-modes",
                                  o.strict_modes ? "true" : "false",
                                  "--log-level",
                                  o.log_level,
                                  "--init-timeout-ms",
                                  std::to_string(o.init_timeout_ms)};
    if (!o.plugin_config_file.empty()) argv.insert(argv.end(), {"--plugin-config", o.plugin_config_file});
    argv.insert(argv.end(), {"--log-format", o.log_format});
    return argv;
}

}  // namespace taskmill::host
