// Private to the supervisor: its state and loop (see supervisor.hpp).
//
// Plugin files are judged (plugin_judge) before any worker loads them; the
// accepted ones make up a generation folder, which the workers load.
// Files are accepted or refused one by one. Workers that exit before they
// got ready are failed starts and restart with backoff; a generation whose
// workers fail to start max_failed_starts times in a row is given up:
// for the last generation that served if there is one, else without the
// plugin they died loading.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <taskmill/host/options.hpp>

#include "../plugin_watch.hpp"
#include "generation.hpp"
#include "host_metrics.hpp"
#include "plugin_judge.hpp"

namespace taskmill::host::detail {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

inline constexpr milliseconds backoff_min{100};
inline constexpr milliseconds backoff_max{5000};
inline constexpr milliseconds stable_after{30000};  // a worker that ran this long resets its backoff
inline constexpr milliseconds settle_time{500};     // plugins folder quiet this long = files complete
inline constexpr milliseconds ready_poll{50};       // how often a starting worker's markers are looked at
inline constexpr int max_failed_starts = 3;

struct worker_slot {
    pid_t pid = 0;
    uint32_t generation = 0;
    bool ready = false;
    steady::time_point started{};
    milliseconds backoff = backoff_min;
    std::optional<steady::time_point> restart_at;
};

class supervisor {
public:
    supervisor(const options& o, std::shared_ptr<spdlog::logger> log, int signal_fd);
    int run();

private:
    // workers (supervisor/workers.cpp)
    void start(worker_slot& w);
    void poll_ready();
    void reap();
    void on_exit(worker_slot& w, int status);
    void on_failed_start(worker_slot& w, pid_t pid, const std::string& why);
    void on_retired_exit(pid_t pid, int status);
    void send_dead(pid_t pid, const std::string& why);
    void forget_worker(pid_t pid, bool crashed);
    void begin_stop(int sig);
    bool all_stopped() const;

    // plugins and generations (supervisor/reload.cpp)
    void begin_judging();
    void finish_judging();
    void on_plugins_settled();
    bool start_generation(const generation_sources& sources);
    void retire(worker_slot& w);
    void give_up_on_current();
    void collect_generations();
    void report_plugins(const std::string& what, std::vector<std::string> files, const std::string& error);
    generation* current() { return current_ ? &gens_.at(*current_) : nullptr; }

    void on_signal();
    milliseconds next_timeout() const;
    void connect_brokers();
    // Queues a message to every broker; false when none took it.
    bool tell_brokers(std::string_view command, const std::string& body);

    const options& o_;
    std::shared_ptr<spdlog::logger> log_;
    int signal_fd_;
    std::vector<worker_slot> slots_;
    std::string exe_;
    std::string host_;
    zmq::context_t zctx_{1};
    // One DEALER per broker of --broker: a cluster's members each hear DEAD
    // and PLUGINS, and the leader acts on them (the others refuse).
    std::vector<zmq::socket_t> brokers_;
    bool stopping_ = false;
    std::optional<steady::time_point> kill_at_;
    plugin_watch watch_;
    std::unique_ptr<plugin_judge> judge_;
    plugin_watch::snapshot judged_;                  // the folder state last judged
    std::optional<plugin_watch::snapshot> pending_;  // the folder state being judged
    std::optional<steady::time_point> settle_at_;
    std::map<uint32_t, generation> gens_;  // generations with a folder
    std::optional<uint32_t> current_;
    std::optional<uint32_t> previous_good_;  // the last generation that served before current_
    uint32_t next_generation_;
    std::map<pid_t, uint32_t> retiring_;  // old generations' workers, finishing -> generation
    // /metrics (host_metrics.hpp): figures always kept, served when `metrics` is set.
    std::unique_ptr<host_metrics> figures_;
    std::unique_ptr<metrics_server> metrics_server_;
};

}  // namespace taskmill::host::detail
