// Command line + INI config + environment -> host::options.
#include <taskmill/host/options.hpp>

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <boost/program_options.hpp>

namespace taskmill::host {
namespace po = boost::program_options;
namespace {

// Options that may appear in a config file (the rest are command-line only).
po::options_description file_options(options& o, std::string& queues, std::string& prefetch) {
    po::options_description d("Options (also valid as key = value in --config)");
    d.add_options()
        ("broker", po::value(&o.broker), "broker BACKEND endpoint (env TASKMILL_BROKER_BACKEND)")
        ("plugins", po::value(&o.plugins_dir), "plugins folder (default <exe>/../plugins)")
        ("queues", po::value(&queues), "comma-separated queues to serve (default: all)")
        ("processes", po::value(&o.processes), "worker processes")
        ("concurrency", po::value(&o.concurrency), "task slots per worker process")
        ("prefetch", po::value(&prefetch),
         "tasks a worker process holds beyond its slots: auto (default: sized from the tasks' run time, "
         "from 4 x concurrency) or a fixed number (0 = none)")
        ("prefetch-max", po::value(&o.prefetch_max), "the most an auto prefetch grows to (default 1024)")
        ("run-dir", po::value(&o.run_dir), "folder for private plugin copies")
        ("heartbeat-ms", po::value(&o.heartbeat_ms), "heartbeat interval until the broker sets one")
        ("log-level", po::value(&o.log_level), "trace|debug|info|warn|error")
        ("kill-grace-ms", po::value(&o.kill_grace_ms), "after a task deadline, ms before the worker is restarted")
        ("grace-ms", po::value(&o.grace_ms), "graceful stop: ms to finish running tasks")
        ("max-tasks", po::value(&o.max_tasks), "recycle a worker after N tasks (0 = never)")
        ("max-rss-mb", po::value(&o.max_rss_mb), "recycle a worker past N MB of RSS (0 = never)")
        ("memory-limit-mb", po::value(&o.memory_limit_mb),
         "hard address-space limit per worker process (RLIMIT_AS; 0 = none)")
        ("watch", po::value(&o.watch), "hot reload when the plugins folder changes (true|false)")
        ("curve-server-key", po::value(&o.curve_server_key), "broker public key (Z85 or .pub file): CURVE on")
        ("curve-key-file", po::value(&o.curve_key_file), "this host's key pair file (taskmill keygen)")
        ("strict-modes", po::value(&o.strict_modes),
         "refuse a plugins folder or .so writable by others or not owned by this user or root (true|false)");
    return d;
}

// program_options reports a bad config key without its line: find it first.
result<void> check_config_lines(const std::string& path, const po::options_description& known) {
    std::ifstream in(path);
    if (!in) return fail(errc::invalid_argument, "cannot read config file " + path);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        auto first = line.find_first_not_of(" \t\r");
        if (first == std::string::npos || line[first] == '#' || line[first] == ';') continue;
        auto eq = line.find('=');
        if (eq == std::string::npos) {
            return fail(errc::invalid_argument, path + ":" + std::to_string(n) + ": expected key = value");
        }
        std::string key = line.substr(first, eq - first);
        key.erase(key.find_last_not_of(" \t") + 1);
        if (known.find_nothrow(key, false) == nullptr) {
            return fail(errc::invalid_argument, path + ":" + std::to_string(n) + ": unknown key '" + key + "'");
        }
    }
    return {};
}

// TASKMILL_RUN_DIR -> "run-dir". TASKMILL_BROKER is the client's frontend
// endpoint, so the host reads its backend from TASKMILL_BROKER_BACKEND.
std::string env_option(const std::string& var, const po::options_description& known) {
    static const std::string prefix = "TASKMILL_";
    if (var.rfind(prefix, 0) != 0 || var == "TASKMILL_BROKER") return {};
    if (var == "TASKMILL_BROKER_BACKEND") return "broker";
    std::string name;
    for (char ch : var.substr(prefix.size())) {
        name += ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    return known.find_nothrow(name, false) != nullptr ? name : std::string();
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
        return fail(errc::invalid_argument, "--prefetch must be auto or a number of tasks (0 or more), not '" +
                                                prefetch + "'");
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
    static const std::set<std::string> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (levels.count(o.log_level) == 0) return fail(errc::invalid_argument, "--log-level: unknown level " + o.log_level);
    if (o.plugins_dir.empty()) o.plugins_dir = default_plugins_dir();
    if (o.run_dir.empty()) {
        const char* tmp = std::getenv("TMPDIR");
        o.run_dir = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/taskmill-host." +
                    std::to_string(::getpid());
    }
    return {};
}

}  // namespace

result<options> parse_options(int argc, const char* const* argv) {
    options o;
    if (const char* env = std::getenv("TASKMILL_BROKER_BACKEND"); env != nullptr && *env != '\0') o.broker = env;
    std::string queues;
    std::string prefetch = "auto";
    auto in_file = file_options(o, queues, prefetch);
    po::options_description cli_only("Command line only");
    cli_only.add_options()
        ("help,h", "show this help")
        ("config", po::value(&o.config_file), "INI config file")
        ("check", po::value(&o.check_file), "validate FILE.so, print its handlers, exit 0 (2 if refused)")
        ("print-config", "print the effective configuration and exit");
    po::options_description hidden;
    hidden.add_options()("worker", "run as a worker process")("generation", po::value(&o.generation));
    po::options_description all;
    all.add(cli_only).add(in_file).add(hidden);
    try {
        po::variables_map vm;
        po::store(po::parse_command_line(argc, argv, all), vm);
        // Precedence: flag > environment (TASKMILL_<OPTION>) > file; the first stored value wins.
        po::store(po::parse_environment(in_file, [&](const std::string& var) { return env_option(var, in_file); }),
                  vm);
        if (vm.count("config") != 0) {
            auto path = vm["config"].as<std::string>();
            if (auto ok = check_config_lines(path, in_file); !ok) return fail(ok.error().code, ok.error().message);
            po::store(po::parse_config_file<char>(path.c_str(), in_file), vm);
        }
        po::notify(vm);
        if (vm.count("help") != 0) {
            std::ostringstream ss;
            ss << "usage: taskmill-host [options]\n       taskmill-host --check FILE.so\n" << cli_only << in_file;
            o.help_text = ss.str();
            o.run_mode = mode::help;
        } else if (vm.count("worker") != 0) {
            o.run_mode = mode::worker;
        } else if (vm.count("check") != 0) {
            o.run_mode = mode::check;
        } else if (vm.count("print-config") != 0) {
            o.run_mode = mode::print_config;
        }
    } catch (const std::exception& e) {
        return fail(errc::invalid_argument, e.what());
    }
    o.queues = split_commas(queues);
    if (auto ok = validate(o, prefetch); !ok) return fail(ok.error().code, ok.error().message);
    return o;
}

std::string prefetch_text(const options& o) { return o.prefetch_auto ? "auto" : std::to_string(o.prefetch); }

std::string to_ini(const options& o) {
    std::ostringstream ss;
    std::string queues;
    for (const auto& q : o.queues) queues += (queues.empty() ? "" : ",") + q;
    ss << "broker = " << o.broker << "\nplugins = " << o.plugins_dir << "\nqueues = " << queues
       << "\nprocesses = " << o.processes << "\nconcurrency = " << o.concurrency
       << "\nprefetch = " << prefetch_text(o) << "\nprefetch-max = " << o.prefetch_max
       << "\nrun-dir = " << o.run_dir
       << "\nheartbeat-ms = " << o.heartbeat_ms << "\nlog-level = " << o.log_level
       << "\nkill-grace-ms = " << o.kill_grace_ms << "\ngrace-ms = " << o.grace_ms
       << "\nmax-tasks = " << o.max_tasks << "\nmax-rss-mb = " << o.max_rss_mb
       << "\nmemory-limit-mb = " << o.memory_limit_mb
       << "\nwatch = " << (o.watch ? "true" : "false")
       << "\ncurve-server-key = " << o.curve_server_key << "\ncurve-key-file = " << o.curve_key_file
       << "\nstrict-modes = " << (o.strict_modes ? "true" : "false") << "\n";
    return ss.str();
}

std::vector<std::string> worker_argv(const options& o, const std::string& exe, uint32_t generation) {
    std::string queues;
    for (const auto& q : o.queues) queues += (queues.empty() ? "" : ",") + q;
    std::vector<std::string> argv{exe, "--worker", "--generation", std::to_string(generation),
                                  "--broker", o.broker, "--plugins", o.plugins_dir,
                                  "--concurrency", std::to_string(o.concurrency),
                                  "--prefetch", prefetch_text(o), "--prefetch-max", std::to_string(o.prefetch_max),
                                  "--run-dir", o.run_dir,
                                  "--heartbeat-ms", std::to_string(o.heartbeat_ms), "--log-level", o.log_level,
                                  "--kill-grace-ms", std::to_string(o.kill_grace_ms),
                                  "--grace-ms", std::to_string(o.grace_ms),
                                  "--max-tasks", std::to_string(o.max_tasks),
                                  "--max-rss-mb", std::to_string(o.max_rss_mb),
                                  "--memory-limit-mb", std::to_string(o.memory_limit_mb)};
    argv.insert(argv.end(), {"--strict-modes", o.strict_modes ? "true" : "false"});
    if (!o.curve_server_key.empty()) argv.insert(argv.end(), {"--curve-server-key", o.curve_server_key});
    if (!o.curve_key_file.empty()) argv.insert(argv.end(), {"--curve-key-file", o.curve_key_file});
    if (!queues.empty()) {
        argv.emplace_back("--queues");
        argv.push_back(queues);
    }
    return argv;
}

}  // namespace taskmill::host
