// A test double for the broker frontend: a real ROUTER socket on
// tcp://127.0.0.1 (random port) speaking wire protocol v1, on its own
// thread. Each received request goes to the test's handler, which answers
// through the `out` list (any number of messages: a reply, a DONE push, or
// nothing at all).
#pragma once

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

namespace taskmill::test {

struct outgoing_msg {
    std::string command;
    protocol::reply body;
};

class fake_broker {
public:
    using handler =
        std::function<void(const std::string& command, const protocol::request& req, std::vector<outgoing_msg>& out)>;

    // Binds `endpoint` (default: a random port on 127.0.0.1).
    explicit fake_broker(handler h, const std::string& endpoint = "tcp://127.0.0.1:*")
        : handler_(std::move(h)), router_(ctx_, zmq::socket_type::router) {
        router_.set(zmq::sockopt::linger, 0);
        router_.bind(endpoint);
        endpoint_ = router_.get(zmq::sockopt::last_endpoint);
        thread_ = std::thread([this] { run(); });
    }
    ~fake_broker() {
        stop_ = true;
        thread_.join();
    }

    const std::string& endpoint() const { return endpoint_; }

    // Every request received so far (command, decoded body).
    std::vector<std::pair<std::string, protocol::request>> received() {
        std::lock_guard lock(mu_);
        return received_;
    }

    // The reply to `req` for `command`, with `ids` etc. filled by the caller.
    static outgoing_msg reply_to(std::string_view command, const protocol::request& req) {
        outgoing_msg m{std::string(command), {}};
        m.body.req = req.req;
        return m;
    }

private:
    void run() {
        while (!stop_) {
            zmq::pollitem_t item{router_.handle(), 0, ZMQ_POLLIN, 0};
            // A short poll only so the destructor's stop flag is seen.
            zmq::poll(&item, 1, std::chrono::milliseconds(20));
            while (auto in = protocol::try_recv(router_, true)) {
                if (!in->msg) {
                    continue;
                }
                auto req = protocol::decode_request(in->msg->body);
                if (!req) {
                    continue;
                }
                {
                    std::lock_guard lock(mu_);
                    received_.emplace_back(in->msg->command, *req);
                }
                std::vector<outgoing_msg> out;
                handler_(in->msg->command, *req, out);
                for (const auto& m : out) {
                    protocol::send(router_, in->peer, m.command, protocol::encode(m.body));
                }
            }
        }
    }

    handler handler_;
    zmq::context_t ctx_{1};
    zmq::socket_t router_;
    std::string endpoint_;
    std::atomic<bool> stop_{false};
    std::mutex mu_;
    std::vector<std::pair<std::string, protocol::request>> received_;
    std::thread thread_;
};

}  // namespace taskmill::test
