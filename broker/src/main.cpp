// taskmill-broker: parses options (flags and an INI file), builds the
// broker, runs it until SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <set>
#include <string>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <taskmill/broker/broker.hpp>
#include <taskmill/protocol/curve_keys.hpp>

#include "net/fd_guard.hpp"
#include "http/http_server.hpp"

namespace po = boost::program_options;
using taskmill::broker::broker;
using taskmill::broker::broker_config;

namespace {

broker* g_broker = nullptr;

extern "C" void on_signal(int) {
    if (g_broker != nullptr) {
        g_broker->stop();  // async-signal-safe: one write() to a pipe
    }
}

struct cli {
    broker_config cfg;
    std::string config_file;
    std::string durability = "sync";
    std::string log_level = "info";
    bool print_config = false;
    bool check_store = false;
    std::string curve_key_file;
    std::vector<std::string> allow_client;
    std::vector<std::string> allow_host;
};

po::options_description describe(cli& c) {
    po::options_description d("taskmill-broker options");
    auto& g = c.cfg;
    d.add_options()
        ("help,h", "show this help")
        ("config", po::value(&c.config_file), "INI file; every option below may be set there")
        ("data-dir", po::value(&g.data_dir)->default_value(g.data_dir), "LMDB and endpoints.json folder")
        ("frontend", po::value(&g.frontend)->default_value(g.frontend), "client endpoint (ROUTER)")
        ("backend", po::value(&g.backend)->default_value(g.backend), "worker endpoint (ROUTER)")
        ("events", po::value(&g.events)->default_value(g.events), "events endpoint (PUB); empty = off")
        ("durability", po::value(&c.durability)->default_value(c.durability), "sync | none")
        ("heartbeat-ms", po::value(&g.heartbeat_ms)->default_value(g.heartbeat_ms), "heartbeat interval")
        ("liveness-ms", po::value(&g.liveness_ms)->default_value(g.liveness_ms), "silence before a worker is dropped")
        ("map-size-mb", po::value(&g.map_size_mb)->default_value(g.map_size_mb), "LMDB map size (MiB)")
        ("max-body-bytes", po::value(&g.max_body_bytes)->default_value(g.max_body_bytes), "largest message body received; what the broker sends stays under it and under 16 MiB")
        ("default-retries", po::value(&g.default_retries)->default_value(g.default_retries), "retries when a task sets none")
        ("max-crashes", po::value(&g.max_crashes)->default_value(g.max_crashes), "worker deaths before a task is poison")
        ("backoff-base-ms", po::value(&g.backoff_base_ms)->default_value(g.backoff_base_ms), "first retry delay")
        ("backoff-factor", po::value(&g.backoff_factor)->default_value(g.backoff_factor), "retry delay growth")
        ("backoff-cap-ms", po::value(&g.backoff_cap_ms)->default_value(g.backoff_cap_ms), "longest retry delay")
        ("lease-grace-ms", po::value(&g.lease_grace_ms)->default_value(g.lease_grace_ms), "a lease lasts timeout (if any) + this + liveness-ms; see PROTOCOL.md 5.2")
        ("batch", po::value(&g.batch)->default_value(g.batch), "messages drained per socket per turn")
        ("log-level", po::value(&c.log_level)->default_value(c.log_level), "trace debug info warn error critical off")
        ("curve-key-file", po::value(&c.curve_key_file), "broker key pair (taskmill keygen); turns CURVE on")
        ("allow-client", po::value(&c.allow_client), "client public key or .pub file allowed on the frontend (repeat; * = any)")
        ("allow-host", po::value(&c.allow_host), "host public key or .pub file allowed on the backend (repeat; * = any)")
        ("max-frame-bytes", po::value(&g.max_frame_bytes)->default_value(g.max_frame_bytes), "largest frame; a peer sending more is disconnected (0 = max-body-bytes + 1 MiB)")
        ("client-hwm", po::value(&g.client_hwm)->default_value(g.client_hwm), "replies queued to a client that does not read them; past it they are dropped (0 = no limit)")
        ("max-waits-per-client", po::value(&g.max_waits_per_client)->default_value(g.max_waits_per_client), "STATUS requests with wait_ms one client may have parked")
        ("max-waits", po::value(&g.max_waits)->default_value(g.max_waits), "STATUS requests with wait_ms parked in all")
        ("http", po::value(&g.http), "HTTP API, /metrics and dashboard on ADDR:PORT (port 0 = pick); off if unset")
        ("http-token", po::value(&g.http_tokens), "API token NAME:ROLE:SECRET, ROLE = read | write (repeat)")
        ("http-anonymous", po::value(&g.http_anonymous)->default_value(g.http_anonymous), "role of HTTP requests without a token: none | read | write")
        ("allow-empty-store", po::bool_switch(&g.allow_empty_store), "start even when data.mdb is empty (0 bytes) where a store was before")
        ("print-config", po::bool_switch(&c.print_config), "print the effective configuration and exit")
        ("check-store", po::bool_switch(&c.check_store), "check the store in data-dir and exit: 0 healthy, 3 in use, 4 damaged");
    return d;
}

void print_config(const cli& c) {
    const auto& g = c.cfg;
    std::cout << "data-dir = " << g.data_dir << "\nfrontend = " << g.frontend << "\nbackend = " << g.backend
              << "\nevents = " << g.events << "\ndurability = " << c.durability
              << "\nheartbeat-ms = " << g.heartbeat_ms << "\nliveness-ms = " << g.liveness_ms
              << "\nmap-size-mb = " << g.map_size_mb << "\nmax-body-bytes = " << g.max_body_bytes
              << "\ndefault-retries = " << g.default_retries << "\nmax-crashes = " << g.max_crashes
              << "\nbackoff-base-ms = " << g.backoff_base_ms << "\nbackoff-factor = " << g.backoff_factor
              << "\nbackoff-cap-ms = " << g.backoff_cap_ms << "\nlease-grace-ms = " << g.lease_grace_ms
              << "\nbatch = " << g.batch << "\nlog-level = " << c.log_level
              << "\nmax-frame-bytes = " << taskmill::broker::frame_limit(g) << "\nclient-hwm = " << g.client_hwm
              << "\nmax-waits-per-client = " << g.max_waits_per_client << "\nmax-waits = " << g.max_waits
              << "\nallow-empty-store = " << g.allow_empty_store << "\n";
    if (!c.curve_key_file.empty()) {
        std::cout << "curve-key-file = " << c.curve_key_file << "\n";
    }
    for (const auto& k : c.allow_client) {
        std::cout << "allow-client = " << k << "\n";
    }
    for (const auto& k : c.allow_host) {
        std::cout << "allow-host = " << k << "\n";
    }
    if (!g.http.empty()) {
        std::cout << "http = " << g.http << "\nhttp-anonymous = " << g.http_anonymous << "\n";
    }
    for (const auto& t : g.http_tokens) {
        std::cout << "http-token = " << t.substr(0, t.rfind(':') + 1) << "(secret)\n";  // never print a secret
    }
}

std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r");
    auto e = s.find_last_not_of(" \t\r");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// Boost names an unknown key but not its line: check every line first so
// the error can say "file:line".
void check_config_lines(const std::string& file, const po::options_description& desc) {
    std::ifstream in(file);
    std::string line;
    std::string section;
    for (int n = 1; std::getline(in, line); ++n) {
        auto t = trim(line);
        if (t.empty() || t[0] == '#' || t[0] == ';') {
            continue;
        }
        if (t.front() == '[' && t.back() == ']') {
            section = trim(t.substr(1, t.size() - 2));
            continue;
        }
        if (section.rfind("schedule.", 0) == 0) {
            continue;  // checked by read_schedule_sections()
        }
        auto eq = t.find('=');
        if (eq == std::string::npos) {
            throw std::runtime_error(file + ":" + std::to_string(n) + ": expected 'key = value'");
        }
        auto key = trim(t.substr(0, eq));
        if (!section.empty()) {
            key = section + "." + key;
        }
        if (desc.find_nothrow(key, false) == nullptr || key == "config" || key == "help") {
            throw std::runtime_error(file + ":" + std::to_string(n) + ": unknown key '" + key + "'");
        }
    }
}

// The line number of `key` in an INI file ("?" if not found), for errors
// that Boost reports by option name only (a bad value).
std::string key_line(const std::string& file, std::string key) {
    key.erase(0, key.find_first_not_of('-'));
    std::ifstream in(file);
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        auto t = trim(line);
        auto eq = t.find('=');
        if (eq != std::string::npos && trim(t.substr(0, eq)) == key) {
            return std::to_string(n);
        }
    }
    return "?";
}

// TASKMILL_DATA_DIR -> "data-dir" when that is an option a file may set.
std::string env_option(const std::string& var, const po::options_description& desc) {
    static const std::string prefix = "TASKMILL_";
    if (var.rfind(prefix, 0) != 0) {
        return {};
    }
    std::string name;
    for (char ch : var.substr(prefix.size())) {
        name += ch == '_' ? '-' : static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    }
    if (name == "help" || name == "print-config" || desc.find_nothrow(name, false) == nullptr) {
        return {};
    }
    return name;
}

// The CURVE keys named in the options, read and checked.
void load_keys(cli& c) {
    auto need = [](auto r) {
        if (!r) {
            throw std::runtime_error(r.error().message);
        }
        return *r;
    };
    if (c.curve_key_file.empty()) {
        if (!c.allow_client.empty() || !c.allow_host.empty()) {
            throw std::runtime_error("allow-client / allow-host need curve-key-file");
        }
        return;
    }
    auto kp = need(taskmill::curve::load_key_pair(c.curve_key_file));
    c.cfg.curve_public_key = kp.public_key;
    c.cfg.curve_secret_key = kp.secret_key;
    for (const auto& k : c.allow_client) {
        c.cfg.allow_clients.push_back(k == "*" ? k : need(taskmill::curve::load_public_key(k)));
    }
    for (const auto& k : c.allow_host) {
        c.cfg.allow_hosts.push_back(k == "*" ? k : need(taskmill::curve::load_public_key(k)));
    }
}

// spdlog reads an unknown level name as "off": refuse it instead.
void check_log_level(const std::string& level) {
    static const std::set<std::string, std::less<>> levels{"trace", "debug", "info", "warn", "error", "critical", "off"};
    if (levels.count(level) == 0) {
        throw std::runtime_error("--log-level must be one of trace debug info warn error critical off, not '" +
                                 level + "'");
    }
}

// Returns an exit code, or -1 to go on and serve.
int parse(int argc, char** argv, cli& c) {
    auto desc = describe(c);
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
    try {
        // Precedence: flag > environment > file (the first value stored wins).
        po::store(po::parse_environment(desc, [&](const std::string& var) { return env_option(var, desc); }), vm);
    } catch (const po::error& e) {
        throw std::runtime_error(std::string("environment (TASKMILL_*): ") + e.what());
    }
    if (vm.count("help") != 0) {
        std::cout << desc << "\n";
        return 0;
    }
    if (vm.count("config") != 0) {
        const auto& file = vm["config"].as<std::string>();
        std::ifstream in(file);
        if (!in) {
            throw std::runtime_error("cannot read config file " + file);
        }
        check_config_lines(file, desc);
        c.cfg.schedules = taskmill::broker::read_schedule_sections(file);
        std::istringstream rest(taskmill::broker::without_schedule_sections(file));
        try {
            // Command-line values were stored first and win over the file.
            po::store(po::parse_config_file(rest, desc, false), vm);
        } catch (const po::error_with_option_name& e) {
            throw std::runtime_error(file + ":" + key_line(file, e.get_option_name()) + ": " + e.what());
        } catch (const po::error& e) {
            throw std::runtime_error(file + ": " + e.what());
        }
    }
    po::notify(vm);
    load_keys(c);
    if (c.durability == "sync") {
        c.cfg.mode = taskmill::broker::durability::sync;
    } else if (c.durability == "none") {
        c.cfg.mode = taskmill::broker::durability::none;
    } else {
        throw std::runtime_error("--durability must be sync or none, not '" + c.durability + "'");
    }
    if (c.cfg.heartbeat_ms <= 0 || c.cfg.liveness_ms <= c.cfg.heartbeat_ms) {
        throw std::runtime_error("need 0 < --heartbeat-ms < --liveness-ms");
    }
    if (c.cfg.map_size_mb == 0 || c.cfg.batch == 0) {
        throw std::runtime_error("--map-size-mb and --batch must be positive");
    }
    if (c.cfg.client_hwm < 0 || c.cfg.max_waits_per_client == 0 || c.cfg.max_waits == 0) {
        throw std::runtime_error("--max-waits-per-client and --max-waits must be positive, --client-hwm not negative");
    }
    check_log_level(c.log_level);
    if (!c.cfg.http.empty() || !c.cfg.http_tokens.empty()) {
        taskmill::broker::http_options h;
        h.listen = c.cfg.http.empty() ? "127.0.0.1:0" : c.cfg.http;  // tokens without --http are checked too
        h.tokens = c.cfg.http_tokens;
        h.anonymous = c.cfg.http_anonymous;
        taskmill::broker::http::check_options(h);
    }
    if (c.print_config) {
        print_config(c);
        return 0;
    }
    return -1;
}

// Exit codes: 0 done, 1 fatal error, 2 bad configuration, 3 the data
// folder is in use by another process, 4 the store is damaged.
constexpr int exit_fatal = 1;
constexpr int exit_busy = 3;
constexpr int exit_damaged = 4;

int check_store_and_exit(const cli& c) {
    try {
        auto report = taskmill::broker::check_store(c.cfg);
        if (!report) {
            std::cerr << "taskmill-broker: " << report.error().message << "\n";
            return exit_damaged;
        }
        std::cout << *report << "\n";
        return 0;
    } catch (const taskmill::broker::store_busy& e) {
        std::cerr << "taskmill-broker: " << e.what() << "\n";
        return exit_busy;
    } catch (const taskmill::broker::store_damaged& e) {
        std::cerr << "taskmill-broker: " << e.what() << "\n";
        return exit_damaged;
    } catch (const std::exception& e) {
        std::cerr << "taskmill-broker: " << e.what() << "\n";
        return exit_fatal;
    }
}

}  // namespace

int main(int argc, char** argv) {
    cli c;
    try {
        if (int rc = parse(argc, argv, c); rc >= 0) {
            return rc;
        }
    } catch (const std::exception& e) {
        std::cerr << "taskmill-broker: " << e.what() << "\n";
        return 2;
    }
    if (c.check_store) {
        return check_store_and_exit(c);
    }
    auto log = spdlog::stderr_color_mt("broker");
    log->set_level(spdlog::level::from_str(c.log_level));
    // Every client and worker connection takes a descriptor: use all the
    // hard limit allows (docs/OPERATIONS.md, "Open files").
    auto fd_limit = taskmill::broker::raise_fd_limit();
    if (fd_limit < 4096) {
        log->warn("the open-files limit is {}: the broker can hold about that many connections; raise it "
                  "(ulimit -Hn, systemd LimitNOFILE=)", fd_limit);
    } else {
        log->info("open-files limit {}", fd_limit);
    }
    try {
        broker b(c.cfg, log);
        g_broker = &b;
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        b.run();
        g_broker = nullptr;
    } catch (const taskmill::broker::store_busy& e) {
        g_broker = nullptr;
        log->critical("fatal: {}", e.what());
        return exit_busy;
    } catch (const taskmill::broker::store_damaged& e) {
        g_broker = nullptr;
        log->critical("fatal: {}", e.what());
        return exit_damaged;
    } catch (const std::exception& e) {
        g_broker = nullptr;
        log->critical("fatal: {}", e.what());
        return exit_fatal;
    }
    return 0;
}
