#include "fake_broker.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fstream>
#include <random>
#include <sstream>
#include <thread>

#include <taskmill/protocol/frame.hpp>

extern char** environ;

namespace taskmill::test {
namespace fs = std::filesystem;
using steady = std::chrono::steady_clock;

fake_broker::fake_broker() {
    socket_.set(zmq::sockopt::linger, 0);
    socket_.bind("tcp://127.0.0.1:*");
    endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
}

std::optional<received> fake_broker::expect(std::string_view command, std::chrono::milliseconds timeout) {
    auto deadline = steady::now() + timeout;
    for (;;) {
        for (auto it = backlog_.begin(); it != backlog_.end(); ++it) {
            if (it->command == command) {
                received r = std::move(*it);
                backlog_.erase(it);
                return r;
            }
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
        if (left.count() <= 0) return std::nullopt;
        zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, left);
        while (auto in = protocol::try_recv(socket_, true)) {
            if (in->msg) backlog_.push_back({in->peer, in->msg->command, in->msg->body});
        }
    }
}

void fake_broker::send(const std::string& peer, std::string_view command, const std::string& body) {
    protocol::send(socket_, peer, command, body);
}

host_dirs::host_dirs() {
    std::random_device rd;
    root = fs::temp_directory_path() / ("taskmill-host-test-" + std::to_string(rd()));
    plugins = root / "plugins";
    run = root / "run";
    log = root / "host.log";
    fs::create_directories(plugins);
    fs::copy_file(TASKMILL_ECHO_SO, plugins / "echo.so");
    fs::copy_file(TASKMILL_DEMO_SO, plugins / "demo.so");
}

host_dirs::~host_dirs() {
    if (std::getenv("TASKMILL_KEEP_TMP") == nullptr) fs::remove_all(root);
}

child::child(const std::vector<std::string>& argv, const fs::path& log) {
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    if (posix_spawn(&pid_, args[0], &fa, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&fa);
}

child::~child() {
    if (pid_ > 0 && !reaped_) {
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

std::optional<int> child::wait(std::chrono::milliseconds timeout) {
    auto deadline = steady::now() + timeout;
    while (steady::now() < deadline) {
        int status = 0;
        if (::waitpid(pid_, &status, WNOHANG) == pid_) {
            reaped_ = true;
            return status;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(5));  // polling a condition, with a deadline
    }
    return std::nullopt;
}

void child::signal(int sig) {
    if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

std::string local_hostname() {
    char buf[256] = {};
    ::gethostname(buf, sizeof buf - 1);
    return buf;
}

std::string read_text(const fs::path& p) {
    std::ifstream in(p);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

}  // namespace taskmill::test
