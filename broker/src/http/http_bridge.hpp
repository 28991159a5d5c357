// How HTTP threads hand a request to the broker loop: a DEALER on an
// inproc endpoint bound by the loop's own frontend ROUTER. The request is
// then drained, validated, applied and group-committed like any ZeroMQ
// client's, and answered after the commit; the loop never waits for HTTP.
// Thread-safe: each call uses its own socket (inproc connects are cheap).
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include <zmq.hpp>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker::http {

class loop_bridge {
public:
    loop_bridge(zmq::context_t& ctx, std::string endpoint) : ctx_(ctx), endpoint_(std::move(endpoint)) {}
    // Makes calls in progress (long-polls) and later ones give up at once:
    // the server is shutting down.
    void stop() const { stopping_->store(true); }

    // Sends `rq` as `command` and waits for its reply; errc::unavailable if
    // none comes within `timeout`. An ok=false reply is returned as is.
    result<protocol::reply> call(std::string_view command, protocol::request rq,
                                 std::chrono::milliseconds timeout) const;

private:
    zmq::context_t& ctx_;
    std::string endpoint_;
    std::shared_ptr<std::atomic<bool>> stopping_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace taskmill::broker::http
