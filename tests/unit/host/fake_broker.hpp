// A test double for the broker backend: a ROUTER on a random loopback port,
// plus helpers to start taskmill-host processes against it and end them by
// PID. Waiting is always "poll until a deadline".
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include <taskmill/protocol/messages.hpp>

namespace taskmill::test {

struct received {
    std::string peer;
    std::string command;
    std::string body;
};

class fake_broker {
public:
    fake_broker();
    const std::string& endpoint() const { return endpoint_; }
    // The next message whose command is `command` (others are kept in
    // order for later calls), or nullopt after `timeout`.
    std::optional<received> expect(std::string_view command,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
    void send(const std::string& peer, std::string_view command, const std::string& body);

private:
    zmq::context_t ctx_{1};
    zmq::socket_t socket_{ctx_, zmq::socket_type::router};
    std::string endpoint_;
    std::vector<received> backlog_;
};

// A fresh temp folder with a plugins/ subfolder holding echo.so and demo.so.
struct host_dirs {
    host_dirs();
    ~host_dirs();
    std::filesystem::path root, plugins, run, log;
};

// A child process started with posix_spawn; SIGKILLed (by PID) on destruction if still alive.
class child {
public:
    child(const std::vector<std::string>& argv, const std::filesystem::path& log);
    ~child();
    pid_t pid() const { return pid_; }
    // Waits for the exit; the wait status, or nullopt on timeout.
    std::optional<int> wait(std::chrono::milliseconds timeout);
    void signal(int sig);

private:
    pid_t pid_ = -1;
    bool reaped_ = false;
};

std::string local_hostname();
std::string read_text(const std::filesystem::path& p);

}  // namespace taskmill::test
