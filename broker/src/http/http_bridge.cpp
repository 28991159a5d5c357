// loop_bridge: one request/reply with the broker loop over inproc.
#include "http/http_bridge.hpp"

#include <algorithm>
#include <atomic>

#include <taskmill/protocol/frame.hpp>

namespace taskmill::broker::http {

namespace {

// Idle sockets kept: about the HTTP threads that call at once.
constexpr std::size_t max_idle_sockets = 16;

}  // namespace

void loop_bridge::stop() const {
    stopping_->store(true);
    std::lock_guard lock(pool_->mu);
    pool_->idle.clear();
}

zmq::socket_t loop_bridge::take() const {
    {
        std::lock_guard lock(pool_->mu);
        if (!pool_->idle.empty()) {
            auto s = std::move(pool_->idle.back());
            pool_->idle.pop_back();
            return s;
        }
    }
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint_);
    return s;
}

void loop_bridge::give_back(zmq::socket_t s) const {
    std::lock_guard lock(pool_->mu);
    if (!stopping_->load() && pool_->idle.size() < max_idle_sockets) {
        pool_->idle.push_back(std::move(s));
    }
}

result<protocol::reply> loop_bridge::call(std::string_view command, protocol::request rq,
                                          std::chrono::milliseconds timeout) const {
    static std::atomic<uint64_t> next_req{1};
    rq.req = next_req.fetch_add(1);
    try {
        auto s = take();
        if (!protocol::send(s, "", command, protocol::encode(rq))) {
            return fail(errc::unavailable, "broker loop did not take the request");
        }
        auto rep = await_reply(s, rq.req, timeout);
        give_back(std::move(s));
        return rep;
    } catch (const zmq::error_t& e) {
        return fail(errc::unavailable, std::string("broker loop unreachable: ") + e.what());
    }
}

result<protocol::reply> loop_bridge::await_reply(zmq::socket_t& s, uint64_t req,
                                                 std::chrono::milliseconds timeout) const {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
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
        if (rep->req == req || (in->msg->command == protocol::cmd::error && rep->req == 0)) {
            return rep;
        }
        // Anything else (a reply to a call that gave up, a DONE push) is
        // not ours to wait for.
    }
}

}  // namespace taskmill::broker::http
