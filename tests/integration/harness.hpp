// Integration-test harness: real taskmill processes on loopback.
//
// Starts taskmill-broker and taskmill-host as child processes with their
// logs in a per-test temporary folder, talks to the broker over the real
// wire protocol, and ends only the processes it started, by PID. Waiting is
// always "poll a condition until a deadline", never a bare sleep.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <taskmill/protocol/messages.hpp>

namespace taskmill::testing {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using ms = std::chrono::milliseconds;

// Paths of the build outputs, from compile definitions.
struct build_paths {
    static fs::path broker();
    static fs::path host();
    static fs::path cli();
    static fs::path plugins();       // build/plugins (echo.so, demo.so)
    static fs::path test_plugins();  // build/test-plugins
    static fs::path source_dir();
};

// A fresh folder under $TMPDIR, removed on destruction unless
// TASKMILL_KEEP_TMP is set (then its path is printed).
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    const fs::path& path() const { return path_; }

private:
    fs::path path_;
};

// Polls `pred` every few milliseconds until it holds or `timeout` passes.
bool wait_until(const std::function<bool()>& pred, ms timeout);

// A loopback port free at the time of asking (for a server that cannot be
// told to pick one and say which); -1 if none could be had.
int free_port();

std::string read_file(const fs::path& p);

// A child process whose stdout and stderr go to `log`. The destructor
// SIGKILLs it (by PID) if it is still running.
class process {
public:
    process(std::vector<std::string> argv, fs::path log, std::vector<std::string> env = {});
    ~process();
    process(const process&) = delete;
    process& operator=(const process&) = delete;

    int pid() const { return pid_; }
    bool running();
    void signal(int sig);
    // Waits for the exit; returns the raw wait status, nullopt on timeout.
    std::optional<int> wait_exit(ms timeout);
    std::string log_text() const { return read_file(log_); }
    const fs::path& log_path() const { return log_; }

private:
    int pid_ = -1;
    std::optional<int> status_;
    fs::path log_;
};

// Endpoints a broker wrote to DATA_DIR/endpoints.json.
struct endpoints {
    std::string frontend;
    std::string backend;
    std::string events;
};

// A taskmill-broker on loopback with ports picked by the kernel.
class broker_process {
public:
    // `at`: bind these endpoints (a restart on the ports of an earlier
    // broker, so its hosts and clients find it again); default port 0.
    // `env`: NAME=VALUE settings added to its environment.
    explicit broker_process(fs::path data_dir, std::vector<std::string> extra = {}, std::string log_name = "broker.log",
                            const endpoints* at = nullptr, std::vector<std::string> env = {});
    const endpoints& ep() const { return ep_; }
    process& proc() { return *proc_; }

private:
    std::unique_ptr<process> proc_;
    endpoints ep_;
};

struct host_options {
    std::string backend;
    fs::path plugins = build_paths::plugins();
    int processes = 1;
    int concurrency = 2;
    std::vector<std::string> extra;
};

std::unique_ptr<process> start_host(const fs::path& dir, const host_options& o,
                                    const std::string& log_name = "host.log");

// Runs the taskmill CLI to completion; returns exit code and stdout.
struct cli_result {
    int exit_code = -1;
    std::string out;
    std::string err;
};
cli_result run_cli(const fs::path& dir, std::vector<std::string> args);

// Runs `cmd` with sh under `timeout LIMIT`: its exit code, -1 if a signal
// ended it.
int run_shell(const std::string& cmd, std::chrono::seconds limit = std::chrono::seconds(120));

// A plain client speaking the wire protocol (requests and replies only).
class wire_client {
public:
    explicit wire_client(const std::string& frontend);
    // Sends one request and waits for its reply; nullopt on timeout.
    std::optional<protocol::reply> call(std::string_view command, protocol::request r, ms timeout = 10s);
    // Submits and returns the ids (empty on any failure).
    std::vector<std::string> submit(std::vector<protocol::task_spec> tasks, ms timeout = 10s);
    std::optional<protocol::task_info> status(const std::string& id, ms wait = 0ms);
    // Waits until the task is final; nullopt on timeout.
    std::optional<protocol::task_info> wait_final(const std::string& id, ms timeout);
    std::vector<protocol::worker_info> workers();

private:
    zmq::context_t ctx_{1};
    zmq::socket_t sock_{ctx_, zmq::socket_type::dealer};
    uint64_t next_req_ = 1;
};

// A subscriber to the broker's event stream. Events are decoded to JSON
// ({type, id, state, handler, queue, attempt, error, time_ms, worker}).
class event_log {
public:
    explicit event_log(const std::string& events_endpoint);
    // Receives whatever has arrived; keeps every event in order.
    void drain(ms wait = 0ms);
    // Waits until `pred` holds for some received event.
    bool wait_for(const std::function<bool(const nlohmann::json&)>& pred, ms timeout);
    // The received events of one task, in arrival order.
    std::vector<nlohmann::json> of(const std::string& task_id) const;

private:
    zmq::context_t ctx_{1};
    zmq::socket_t sock_{ctx_, zmq::socket_type::sub};
    std::vector<nlohmann::json> events_;
};

protocol::task_spec task(const std::string& handler, const nlohmann::json& payload = nullptr);
nlohmann::json from_msgpack(const std::string& bytes);
bool is_final(const std::string& state);

}  // namespace taskmill::testing
