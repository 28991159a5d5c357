#include "harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <random>
#include <sstream>
#include <thread>

#include <zmq_addon.hpp>

#include <taskmill/protocol/frame.hpp>

namespace taskmill::testing {

fs::path build_paths::broker() { return TASKMILL_BROKER_BIN; }
fs::path build_paths::host() { return TASKMILL_HOST_BIN; }
fs::path build_paths::cli() { return TASKMILL_CLI_BIN; }
fs::path build_paths::plugins() { return TASKMILL_PLUGIN_DIR; }
fs::path build_paths::test_plugins() { return TASKMILL_TEST_PLUGIN_DIR; }
fs::path build_paths::source_dir() { return TASKMILL_SOURCE_DIR; }

// ---- temp_dir ----

temp_dir::temp_dir() {
    std::string tmpl = (fs::temp_directory_path() / "taskmill-it-XXXXXX").string();
    if (!mkdtemp(tmpl.data())) {
        throw std::runtime_error("mkdtemp failed");
    }
    path_ = tmpl;
}

temp_dir::~temp_dir() {
    if (std::getenv("TASKMILL_KEEP_TMP")) {
        std::cerr << "kept " << path_ << "\n";
        return;
    }
    std::error_code ec;
    fs::remove_all(path_, ec);
}

bool wait_until(const std::function<bool()>& pred, ms timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (pred()) {
            return true;
        }
        if (std::chrono::steady_clock::now() >= deadline) {
            return false;
        }
        std::this_thread::sleep_for(5ms);  // poll step, not synchronisation
    }
}

std::string read_file(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

// ---- process ----

process::process(std::vector<std::string> argv, fs::path log, std::vector<std::string> env) : log_(std::move(log)) {
    std::vector<char*> args;
    for (auto& a : argv) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    pid_ = fork();
    if (pid_ < 0) {
        throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
        int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0) {
            dup2(devnull, 0);
        }
        for (auto& e : env) {
            putenv(e.data());
        }
        execv(args[0], args.data());
        _exit(127);
    }
}

process::~process() {
    if (running()) {
        ::kill(pid_, SIGKILL);
        wait_exit(10s);
    }
}

bool process::running() {
    if (status_) {
        return false;
    }
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
        status_ = st;
        return false;
    }
    return r == 0;
}

void process::signal(int sig) {
    if (running()) {
        ::kill(pid_, sig);
    }
}

std::optional<int> process::wait_exit(ms timeout) {
    wait_until([&] { return !running(); }, timeout);
    return status_;
}

// ---- broker ----

broker_process::broker_process(fs::path data_dir, std::vector<std::string> extra, std::string log_name,
                               const endpoints* at, std::vector<std::string> env) {
    fs::create_directories(data_dir);
    auto ep_file = data_dir / "endpoints.json";
    fs::remove(ep_file);
    std::vector<std::string> argv = {build_paths::broker().string(),
                                     "--data-dir",
                                     data_dir.string(),
                                     "--frontend",
                                     at ? at->frontend : "tcp://127.0.0.1:0",
                                     "--backend",
                                     at ? at->backend : "tcp://127.0.0.1:0",
                                     "--events",
                                     at ? at->events : "tcp://127.0.0.1:0"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    proc_ = std::make_unique<process>(argv, data_dir.parent_path() / log_name, std::move(env));
    bool up = wait_until([&] { return fs::exists(ep_file) || !proc_->running(); }, 20s);
    if (!up || !fs::exists(ep_file)) {
        throw std::runtime_error("broker did not start: " + proc_->log_text());
    }
    auto j = nlohmann::json::parse(read_file(ep_file));
    ep_ = {j.at("frontend"), j.at("backend"), j.at("events")};
}

std::unique_ptr<process> start_host(const fs::path& dir, const host_options& o, const std::string& log_name) {
    auto run_dir = dir / (log_name + ".run");
    fs::create_directories(run_dir);
    std::vector<std::string> argv = {build_paths::host().string(),
                                     "--broker",
                                     o.backend,
                                     "--plugins",
                                     o.plugins.string(),
                                     "--processes",
                                     std::to_string(o.processes),
                                     "--concurrency",
                                     std::to_string(o.concurrency),
                                     "--run-dir",
                                     run_dir.string()};
    argv.insert(argv.end(), o.extra.begin(), o.extra.end());
    return std::make_unique<process>(argv, dir / log_name);
}

cli_result run_cli(const fs::path& dir, std::vector<std::string> args) {
    static int counter = 0;
    auto out = dir / ("cli-" + std::to_string(counter) + ".out");
    auto err = dir / ("cli-" + std::to_string(counter++) + ".err");
    std::string cmd = build_paths::cli().string();
    for (auto& a : args) {
        std::string q = "'";
        for (char c : a) {
            q += (c == '\'') ? std::string("'\\''") : std::string(1, c);
        }
        cmd += " " + q + "'";
    }
    cmd += " >" + out.string() + " 2>" + err.string() + " </dev/null";
    int st = std::system(cmd.c_str());
    cli_result r;
    r.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    r.out = read_file(out);
    r.err = read_file(err);
    return r;
}

int run_shell(const std::string& cmd, std::chrono::seconds limit) {
    int st = std::system(("timeout " + std::to_string(limit.count()) + " " + cmd).c_str());
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

// ---- wire_client ----

wire_client::wire_client(const std::string& frontend) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.connect(frontend);
}

std::optional<protocol::reply> wire_client::call(std::string_view command, protocol::request r, ms timeout) {
    r.req = next_req_++;
    protocol::send(sock_, "", command, protocol::encode(r));
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
        auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
        zmq::poll(&item, 1, std::max(left, 1ms));
        while (auto in = protocol::try_recv(sock_, false)) {
            if (!in->msg || in->msg->command == protocol::cmd::done) {
                continue;
            }
            auto rep = protocol::decode_reply(in->msg->body);
            if (rep && rep->req == r.req) {
                return std::move(rep).value();
            }
        }
    }
    return std::nullopt;
}

std::vector<std::string> wire_client::submit(std::vector<protocol::task_spec> tasks, ms timeout) {
    protocol::request r;
    r.tasks = std::move(tasks);
    auto rep = call(protocol::cmd::submit, std::move(r), timeout);
    if (!rep || !rep->ok) {
        return {};
    }
    return rep->ids;
}

std::optional<protocol::task_info> wire_client::status(const std::string& id, ms wait) {
    protocol::request r;
    r.id = id;
    r.wait_ms = wait.count();
    auto rep = call(protocol::cmd::status, std::move(r), wait + 10s);
    if (!rep || !rep->ok || !rep->task) {
        return std::nullopt;
    }
    return rep->task;
}

std::optional<protocol::task_info> wire_client::wait_final(const std::string& id, ms timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
        auto t = status(id, std::min<ms>(left, 2s));
        if (t && is_final(t->state)) {
            return t;
        }
    }
    return std::nullopt;
}

std::vector<protocol::worker_info> wire_client::workers() {
    auto rep = call(protocol::cmd::workers, {});
    return rep ? rep->workers : std::vector<protocol::worker_info>{};
}

// ---- event_log ----

event_log::event_log(const std::string& events_endpoint) {
    sock_.set(zmq::sockopt::linger, 0);
    sock_.set(zmq::sockopt::subscribe, "");
    sock_.connect(events_endpoint);
}

void event_log::drain(ms wait) {
    zmq::pollitem_t item{sock_.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, wait);
    while (true) {
        std::vector<zmq::message_t> parts;
        if (!zmq::recv_multipart(sock_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
            return;
        }
        if (parts.size() == 2) {
            auto* p = static_cast<const uint8_t*>(parts[1].data());
            auto j = nlohmann::json::from_msgpack(p, p + parts[1].size(), true, false);
            if (!j.is_discarded()) {
                events_.push_back(std::move(j));
            }
        }
    }
}

bool event_log::wait_for(const std::function<bool(const nlohmann::json&)>& pred, ms timeout) {
    std::size_t seen = 0;
    return wait_until(
        [&] {
            drain(20ms);
            for (; seen < events_.size(); ++seen) {
                if (pred(events_[seen])) {
                    return true;
                }
            }
            return false;
        },
        timeout);
}

std::vector<nlohmann::json> event_log::of(const std::string& task_id) const {
    std::vector<nlohmann::json> out;
    for (auto& e : events_) {
        if (e.value("id", "") == task_id) {
            out.push_back(e);
        }
    }
    return out;
}

protocol::task_spec task(const std::string& handler, const nlohmann::json& payload) {
    protocol::task_spec t;
    t.handler = handler;
    auto bytes = nlohmann::json::to_msgpack(payload);
    t.payload.assign(bytes.begin(), bytes.end());
    return t;
}

nlohmann::json from_msgpack(const std::string& bytes) {
    return nlohmann::json::from_msgpack(bytes.begin(), bytes.end(), true, false);
}

bool is_final(const std::string& state) {
    return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED" || state == "EXPIRED";
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(fd);
        return -1;
    }
    ::close(fd);
    return ntohs(a.sin_port);
}

}  // namespace taskmill::testing
