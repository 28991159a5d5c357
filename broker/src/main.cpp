// taskmill-broker: reads its options (broker_options), builds the broker,
// runs it until SIGINT/SIGTERM.
#include <csignal>
#include <iostream>
#include <string>

#include <spdlog/spdlog.h>

#include <taskmill/broker/broker.hpp>
#include <taskmill/config/loader.hpp>
#include <taskmill/logging/stderr_logger.hpp>

#include "net/fd_guard.hpp"
#include "options/broker_options.hpp"

using taskmill::broker::broker;
using taskmill::broker::broker_mode;
using taskmill::broker::broker_options;

namespace {

broker* g_broker = nullptr;

extern "C" void on_signal(int) {
    if (g_broker != nullptr) {
        g_broker->stop();  // async-signal-safe: one write() to a pipe
    }
}

// Exit codes: 0 done, 1 fatal error, 2 bad configuration, 3 the data
// folder is in use by another process, 4 the store is damaged.
constexpr int exit_fatal = 1;
constexpr int exit_bad_config = 2;
constexpr int exit_busy = 3;
constexpr int exit_damaged = 4;

int check_store_and_exit(const broker_options& o) {
    try {
        auto report = taskmill::broker::check_store(o.cfg);
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

void log_fd_limit(spdlog::logger& log) {
    // Every client and worker connection takes a descriptor: use all the
    // hard limit allows (docs/OPERATIONS.md, "Open files").
    auto fd_limit = taskmill::broker::raise_fd_limit();
    if (fd_limit < 4096) {
        log.warn(
            "the open-files limit is {}: the broker can hold about that many connections; raise it "
            "(ulimit -Hn, systemd LimitNOFILE=)",
            fd_limit);
    } else {
        log.info("open-files limit {}", fd_limit);
    }
}

int serve(const broker_options& o) {
    auto log = taskmill::logging::make_stderr_logger("broker", *taskmill::logging::parse_log_format(o.log_format));
    log->set_level(spdlog::level::from_str(o.log_level));  // a known name: the loader checked it
    log_fd_limit(*log);
    int rc = 0;
    try {
        broker b(o.cfg, log);
        g_broker = &b;
        struct sigaction sa {};
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, nullptr);
        sigaction(SIGTERM, &sa, nullptr);
        b.run();
    } catch (const taskmill::broker::store_busy& e) {
        log->critical("fatal: {}", e.what());
        rc = exit_busy;
    } catch (const taskmill::broker::store_damaged& e) {
        log->critical("fatal: {}", e.what());
        rc = exit_damaged;
    } catch (const std::exception& e) {
        log->critical("fatal: {}", e.what());
        rc = exit_fatal;
    }
    g_broker = nullptr;
    return rc;
}

}  // namespace

int main(int argc, char** argv) {
    broker_options o;
    try {
        o = taskmill::broker::load_broker_options(argc, argv, taskmill::config::process_environment());
    } catch (const std::exception& e) {
        std::cerr << "taskmill-broker: " << e.what() << "\n";
        return exit_bad_config;
    }
    switch (o.mode) {
        case broker_mode::help:
        case broker_mode::print_config: std::cout << o.text; return 0;
        case broker_mode::check_store: return check_store_and_exit(o);
        case broker_mode::serve: return serve(o);
    }
    return exit_bad_config;
}
