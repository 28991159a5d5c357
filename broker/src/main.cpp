// taskmill-broker: parses options (flags and an INI file), builds the
// broker, runs it until SIGINT/SIGTERM.
#include <csignal>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <string>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <taskmill/broker/broker.hpp>

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
        ("max-body-bytes", po::value(&g.max_body_bytes)->default_value(g.max_body_bytes), "largest message body")
        ("default-retries", po::value(&g.default_retries)->default_value(g.default_retries), "retries when a task sets none")
        ("max-crashes", po::value(&g.max_crashes)->default_value(g.max_crashes), "worker deaths before a task is poison")
        ("backoff-base-ms", po::value(&g.backoff_base_ms)->default_value(g.backoff_base_ms), "first retry delay")
        ("backoff-factor", po::value(&g.backoff_factor)->default_value(g.backoff_factor), "retry delay growth")
        ("backoff-cap-ms", po::value(&g.backoff_cap_ms)->default_value(g.backoff_cap_ms), "longest retry delay")
        ("lease-grace-ms", po::value(&g.lease_grace_ms)->default_value(g.lease_grace_ms), "added to a task timeout for its lease")
        ("batch", po::value(&g.batch)->default_value(g.batch), "messages drained per socket per turn")
        ("log-level", po::value(&c.log_level)->default_value(c.log_level), "trace debug info warn error")
        ("print-config", po::bool_switch(&c.print_config), "print the effective configuration and exit");
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
              << "\nbatch = " << g.batch << "\nlog-level = " << c.log_level << "\n";
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

// Returns an exit code, or -1 to go on and serve.
int parse(int argc, char** argv, cli& c) {
    auto desc = describe(c);
    po::variables_map vm;
    po::store(po::parse_command_line(argc, argv, desc), vm);
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
        try {
            // Command-line values were stored first and win over the file.
            po::store(po::parse_config_file(in, desc, false), vm);
        } catch (const po::error& e) {
            throw std::runtime_error(file + ": " + e.what());
        }
    }
    po::notify(vm);
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
    if (c.print_config) {
        print_config(c);
        return 0;
    }
    return -1;
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
    auto log = spdlog::stderr_color_mt("broker");
    log->set_level(spdlog::level::from_str(c.log_level));
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
    } catch (const std::exception& e) {
        g_broker = nullptr;
        log->critical("fatal: {}", e.what());
        return 1;
    }
    return 0;
}
