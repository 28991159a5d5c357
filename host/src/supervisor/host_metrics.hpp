// The host's /metrics: the supervisor's own figures (worker starts and
// crashes, plugin loads and refusals), its workers' figures (read from the
// stats file each keeps, see worker_stats.hpp) and process metrics, served
// by cpp-httplib on the address of `metrics` (host.ini, --metrics).
//
// Threads: the supervisor thread reports events (a lock per event; they
// are rare: starts, exits, reloads); the HTTP thread renders under the same
// lock. Workers are not involved: their figures are in their files.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include <spdlog/logger.h>

#include <taskmill/protocol/result.hpp>

#include "../worker_stats.hpp"

namespace httplib {
class Server;
}

namespace taskmill::host::detail {

class host_metrics {
public:
    host_metrics(std::string run_dir, std::string host, uint32_t concurrency);

    // Supervisor thread. `restart`: the slot ran a worker before.
    void worker_started(pid_t pid, bool restart);
    // Before its folder goes: its last figures join the host's totals.
    void worker_gone(pid_t pid, bool crashed);
    void plugins_judged(std::size_t accepted, std::size_t refused);

    // Prometheus text (any thread).
    std::string render();

private:
    // What the supervisor's events changed; render() copies it under the
    // lock and reads the workers' files and /proc after, so a slow scrape
    // never holds up a worker's restart.
    struct tally {
        std::set<pid_t> live;
        std::map<std::string, handler_figures> gone;  // figures of workers that exited, by handler
        uint64_t starts = 0;
        uint64_t restarts = 0;
        uint64_t crashes = 0;
        uint64_t plugin_loads = 0;
        uint64_t plugin_refusals = 0;
    };
    std::mutex mu_;
    const std::string run_dir_;
    const std::string host_;
    const uint32_t concurrency_;
    tally t_;
};

// The HTTP server of host_metrics, on its own thread until destroyed.
class metrics_server {
public:
    // Binds `address` (HOST:PORT; port 0 = pick one); an error says why not.
    static result<std::unique_ptr<metrics_server>> start(const std::string& address, host_metrics& figures);
    ~metrics_server();
    metrics_server(const metrics_server&) = delete;
    metrics_server& operator=(const metrics_server&) = delete;
    const std::string& url() const { return url_; }

private:
    metrics_server() = default;
    std::unique_ptr<httplib::Server> srv_;
    std::thread thread_;
    std::string url_;
};

}  // namespace taskmill::host::detail
