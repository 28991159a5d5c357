// Test helpers: a broker on its own thread, and real DEALER sockets playing
// a client, a worker and a host supervisor. Every wait polls with a deadline.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <zmq.hpp>

#include <taskmill/broker/broker.hpp>
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

namespace tmtest {

namespace tp = taskmill::protocol;
namespace tb = taskmill::broker;
using namespace std::chrono_literals;

struct temp_dir {
    std::filesystem::path path;
    temp_dir();
    ~temp_dir();
};

// A loopback TCP port nobody listens on at the time of asking.
int free_port();

// A config on unique inproc:// endpoints with short timers.
tb::broker_config test_config(const std::string& data_dir);

class running_broker {
public:
    // `log` = nullptr: the shared "broker-test" logger (warnings to stderr).
    running_broker(zmq::context_t& ctx, tb::broker_config cfg, std::shared_ptr<spdlog::logger> log = nullptr);
    ~running_broker();
    const tb::bound_endpoints& endpoints() const { return b_->endpoints(); }

private:
    std::unique_ptr<tb::broker> b_;
    std::thread thread_;
};

struct received {
    std::string command;
    std::string body;
};

// One DEALER connected to an endpoint.
class peer {
public:
    peer(zmq::context_t& ctx, const std::string& endpoint, const std::string& identity = "");
    void send(std::string_view command, const std::string& body);
    // Next message within `timeout`; nullopt if none came.
    std::optional<received> recv(std::chrono::milliseconds timeout = 5s);
    zmq::socket_t& socket() { return s_; }

private:
    zmq::socket_t s_;
};

class client : public peer {
public:
    using peer::peer;
    // Sends `rq` and waits for the reply carrying the same req (skipping DONE
    // pushes). Fails the test (ADD_FAILURE) on timeout.
    tp::reply call(std::string_view command, tp::request rq, std::chrono::milliseconds timeout = 5s);
    std::vector<std::string> submit(std::vector<tp::task_spec> tasks);
    tp::task_info status(const std::string& id, int64_t wait_ms = 0);
    // Polls STATUS until the state is `state` or the deadline passes.
    bool wait_state(const std::string& id, const std::string& state, std::chrono::milliseconds timeout = 5s);

private:
    uint64_t next_req_ = 1;
};

class fake_worker : public peer {
public:
    fake_worker(zmq::context_t& ctx, const std::string& endpoint, const std::string& id);
    // Sends HELLO and waits for WELCOME.
    void hello(std::vector<tp::handler_info> handlers, uint32_t slots, std::vector<std::string> queues = {});
    // Waits for a message with `command`, answering HEARTBEATs on the way
    // (naming the tasks in `holding`);
    // other messages are kept in `skipped`.
    std::optional<received> expect(std::string_view command, std::chrono::milliseconds timeout = 5s);
    std::vector<tp::work_item> next_dispatch(std::chrono::milliseconds timeout = 5s);
    void result(const tp::work_item& w, const std::string& status, const std::string& result_bytes = "",
                const std::string& error = "");
    std::string id;
    std::string supervisor;            // announced in HELLO: the peer whose DEAD counts
    uint32_t prefetch = 0;             // announced in HELLO
    std::vector<std::string> holding;  // task ids named in its HEARTBEATs
    std::vector<received> skipped;
};

tp::task_spec task(const std::string& handler, int priority = 0);
tp::handler_info handler(const std::string& name, const std::string& version = "1.0.0");

// A fixture with a broker of its own: a fresh data folder, a config the test
// may adjust before start(), and inproc endpoints.
class broker_test : public ::testing::Test {
protected:
    broker_test() : cfg_(test_config(dir_.path.string())) {}
    void start() { b_ = std::make_unique<running_broker>(ctx_, cfg_); }
    void stop() { b_.reset(); }
    const std::string& fe() const { return b_->endpoints().frontend; }
    const std::string& be() const { return b_->endpoints().backend; }

    temp_dir dir_;
    zmq::context_t ctx_;
    tb::broker_config cfg_;
    std::unique_ptr<running_broker> b_;
};

}  // namespace tmtest
