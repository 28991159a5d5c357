// How HTTP threads hand a request to the broker loop: a DEALER on an
// inproc endpoint bound by the loop's own frontend ROUTER. The request is
// then drained, validated, applied and group-committed like any ZeroMQ
// client's, and answered after the commit; the loop never waits for HTTP.
// Thread-safe: each call takes a socket of its own from a small pool and
// gives it back (a new socket per call cost the broker ~0.3 ms of CPU, its
// connect and close handled by ZeroMQ's I/O and reaper threads); a reply
// that comes after its call gave up is told apart by its `req` and dropped
// by the next call on that socket.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker::http {

class loop_bridge {
public:
    loop_bridge(zmq::context_t& ctx, std::string endpoint) : ctx_(ctx), endpoint_(std::move(endpoint)) {}
    // Makes calls in progress (long-polls) and later ones give up at once,
    // and closes the idle sockets: the server is shutting down (the
    // context cannot end while a socket is open).
    void stop() const;

    // Sends `rq` as `command` and waits for its reply; errc::unavailable if
    // none comes within `timeout`. An ok=false reply is returned as is.
    result<protocol::reply> call(std::string_view command, protocol::request rq,
                                 std::chrono::milliseconds timeout) const;

private:
    // Sockets between calls; a socket moves between threads only through
    // the mutex, as ZeroMQ asks.
    struct socket_pool {
        std::mutex mu;
        std::vector<zmq::socket_t> idle;
    };
    zmq::socket_t take() const;
    void give_back(zmq::socket_t s) const;
    result<protocol::reply> await_reply(zmq::socket_t& s, uint64_t req, std::chrono::milliseconds timeout) const;

    zmq::context_t& ctx_;
    std::string endpoint_;
    std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
    std::shared_ptr<socket_pool> pool_ = std::make_shared<socket_pool>();
};

}  // namespace taskmill::broker::http
