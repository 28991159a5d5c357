// taskmill/host/options.hpp -- the settings of taskmill-host.
//
// One plain struct filled by the shared config loader (taskmill/config/
// loader.hpp) from the command line, the environment (TASKMILL_<OPTION>;
// the broker endpoint is TASKMILL_BROKER_BACKEND) and an INI config file,
// in that order of precedence. The
// supervisor passes the relevant ones on to the worker processes it execs.
// Value type; no threading concerns.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <taskmill/protocol/result.hpp>

namespace taskmill::host {

// The most tasks one worker process may hold (HELLO `slots`, protocol limit).
inline constexpr uint32_t max_worker_slots = 100000;

// How long a plugin's init() (and its library's constructors) may take
// before the plugin is refused: the limit of `taskmill-host --check`, which
// a reload runs on each changed file.
inline constexpr int64_t default_init_timeout_ms = 10000;

enum class mode { supervisor, worker, check, print_config, help };

struct options {
    mode run_mode = mode::supervisor;
    std::string config_file;
    // The broker's BACKEND endpoint, or every member's of a broker cluster,
    // comma-separated: workers follow the leader (docs/CLUSTER.md).
    std::string broker = "tcp://127.0.0.1:5556";
    std::string plugins_dir;          // default: <exe dir>/../plugins
    std::vector<std::string> queues;  // empty = every queue
    uint32_t processes = 1;
    uint32_t concurrency = 4;  // slots per worker process
    // Tasks a worker process holds beyond its slots, so the slots stay busy
    // while the broker commits (HELLO announces concurrency + prefetch).
    // Auto (the default): the worker sizes it from the run time of its tasks,
    // between 1 and prefetch_max, starting at 4 x concurrency; a number fixes
    // it. Either way concurrency + prefetch stays <= max_worker_slots.
    uint32_t prefetch = 16;
    bool prefetch_auto = true;
    uint32_t prefetch_max = 1024;
    std::string run_dir;  // private plugin copies; default $TMPDIR/taskmill-host.<pid>
    int64_t heartbeat_ms = 1000;
    // Several brokers: a worker that hears nothing from its broker for a
    // heartbeat and this much more moves to the next one.
    int64_t failover_ms = 500;
    std::string log_level = "info";
    int64_t kill_grace_ms = 2000;  // after a task's deadline, before the worker gives up on it
    int64_t grace_ms = 10000;      // graceful stop: time to finish running tasks
    uint64_t max_tasks = 0;        // recycle a worker after this many tasks (0 = never)
    uint64_t max_rss_mb = 0;       // recycle a worker past this RSS (0 = never)
    uint64_t memory_limit_mb = 0;  // hard address-space limit per worker (0 = none)
    bool watch = true;             // hot reload on plugin folder changes
    std::string curve_server_key;  // broker public key (Z85 or file): CURVE on
    std::string curve_key_file;    // this host's key pair (taskmill keygen)
    bool strict_modes = true;      // refuse group/world-writable or foreign-owned plugins
    std::string check_file;        // --check FILE.so
    int64_t init_timeout_ms = default_init_timeout_ms;
    // HOST:PORT of the supervisor's Prometheus /metrics (port 0 = pick one;
    // the log says which); empty = off.
    std::string metrics;
    // [plugin.NAME] sections: plugin name -> the msgpack map its init()
    // receives. Workers and checks get them from plugin_config_file, which
    // the supervisor writes (save_plugin_configs) and names in their argv.
    std::map<std::string, std::string> plugin_configs;
    std::string plugin_config_file;
    uint32_t generation = 0;          // worker mode: its generation
    std::string help_text;            // mode::help: what to print
    std::string config_text;          // the effective configuration (--print-config)
    std::string log_format = "text";  // text | json (taskmill/logging/stderr_logger.hpp)
};

// Parses argv, the TASKMILL_* variables of this process and the config
// file argv names. Errors (errc::invalid_argument) name the flag, the
// variable, or the file and line of a bad entry, and what is allowed.
result<options> parse_options(int argc, const char* const* argv);
// The same with the environment given (TASKMILL_* variables by name).
result<options> parse_options(int argc, const char* const* argv, const std::map<std::string, std::string>& env);

// "auto" or the fixed number of tasks.
std::string prefetch_text(const options& o);

// Writes o.plugin_configs to <run_dir>/plugin-config (mode 0600) and sets
// o.plugin_config_file, so worker_argv and check_argv pass it on. Nothing
// is written when there is no [plugin.NAME] section.
result<void> save_plugin_configs(options& o);

// The argv that starts a worker process with these options.
std::vector<std::string> worker_argv(const options& o, const std::string& exe, uint32_t generation);

// The argv of a `--check FILE` child that judges `file` as this host's
// workers would load it (same strict modes, same plugin configuration).
std::vector<std::string> check_argv(const options& o, const std::string& exe, const std::string& file);

}  // namespace taskmill::host
