// loop_bridge: one request/reply with the broker loop over inproc.
#include "http/http_bridge.hpp"

#include <algorithm>
#include <atomic>

#include <taskmill/protocol/frame.hpp>

namespace taskmill::broker::http {

result<protocol::reply> loop_bridge::call(std::string_view command, protocol::request rq,
                                          std::chrono::milliseconds timeout) const {
    static std::atomic<uint64_t> next_req{1};
    rq.req = next_req.fetch_add(1);
    try {
        zmq::socket_t s(ctx_, zmq::socket_type::dealer);
        s.set(zmq::sockopt::linger, 0);
        s.connect(endpoint_);
        if (!protocol::send(s, "", command, protocol::encode(rq))) {
            return fail(errc::unavailable, "broker loop did not take the request");
        }
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (stopping_->load()) {
                return fail(errc::unavailable, "broker is shutting down");
            }
            if (left.count() < 0) {
                return fail(errc::unavailable, "no answer from the broker loop in time");
            }
            zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
            zmq::poll(&item, 1, std::min(left, std::chrono::milliseconds(100)));
            auto in = protocol::try_recv(s, false);
            if (!in) {
                continue;
            }
            if (!in->msg) {
                return fail(errc::internal, "unreadable reply from the loop: " + in->msg.error().message);
            }
            auto rep = protocol::decode_reply(in->msg->body);
            if (!rep) {
                return fail(errc::internal, "unreadable reply from the loop: " + rep.error().message);
            }
            if (rep->req == rq.req || (in->msg->command == protocol::cmd::error && rep->req == 0)) {
                return rep;
            }
            // Anything else (a DONE push) is not ours to wait for.
        }
    } catch (const zmq::error_t& e) {
        return fail(errc::unavailable, std::string("broker loop unreachable: ") + e.what());
    }
}

}  // namespace taskmill::broker::http
