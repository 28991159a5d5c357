// loop_bridge, the way HTTP threads reach the broker loop, against a real
// inproc ROUTER standing where the loop's frontend is: calls reuse their
// sockets, a reply that comes after its call gave up is not taken for the
// next call's, and stop() leaves no socket open (the context can end).
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include <zmq.hpp>

#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

#include "http/http_bridge.hpp"

namespace tp = taskmill::protocol;
using taskmill::broker::http::loop_bridge;
using namespace std::chrono_literals;

namespace {

constexpr const char* endpoint = "inproc://bridge-test";

// Waits (up to 5 s) for one request on the ROUTER.
std::optional<tp::incoming> next_request(zmq::socket_t& router) {
    zmq::pollitem_t item{router.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, 5000ms);
    return tp::try_recv(router, true);
}

void answer(zmq::socket_t& router, const std::string& peer, uint64_t req, const std::string& error = "") {
    tp::reply rep;
    rep.req = req;
    rep.ok = error.empty();
    rep.error = error;
    ASSERT_TRUE(tp::send(router, peer, tp::cmd::stats, tp::encode(rep)));  // a reply names its request's command
}

// One call answered by the test's loop on another thread; returns the
// peer that sent it.
std::string answered_call(zmq::socket_t& router, const loop_bridge& bridge) {
    std::string peer;
    std::thread loop([&] {
        auto in = next_request(router);
        ASSERT_TRUE(in && in->msg);
        auto rq = tp::decode_request(in->msg->body);
        ASSERT_TRUE(rq);
        peer = in->peer;
        answer(router, in->peer, rq->req);
    });
    auto rep = bridge.call(tp::cmd::stats, tp::request{}, 5s);
    loop.join();
    EXPECT_TRUE(rep && rep->ok);
    return peer;
}

}  // namespace

TEST(LoopBridge, CallsOneAfterAnotherShareOneSocket) {
    zmq::context_t ctx;
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.bind(endpoint);
    loop_bridge bridge(ctx, endpoint);
    std::set<std::string> peers;
    for (int i = 0; i < 20; ++i) {
        peers.insert(answered_call(router, bridge));
    }
    EXPECT_EQ(peers.size(), 1u);
    bridge.stop();
}

TEST(LoopBridge, ALateReplyIsNotTakenForTheNextCalls) {
    zmq::context_t ctx;
    zmq::socket_t router(ctx, zmq::socket_type::router);
    router.bind(endpoint);
    loop_bridge bridge(ctx, endpoint);

    auto gave_up = bridge.call(tp::cmd::stats, tp::request{}, 50ms);
    ASSERT_FALSE(gave_up);
    EXPECT_NE(gave_up.error().message.find("in time"), std::string::npos);
    auto first = next_request(router);
    ASSERT_TRUE(first && first->msg);
    const auto late_req = tp::decode_request(first->msg->body)->req;

    std::thread loop([&] {
        auto in = next_request(router);
        ASSERT_TRUE(in && in->msg);
        EXPECT_EQ(in->peer, first->peer) << "the socket went back to the pool";
        answer(router, in->peer, late_req, "the late one");  // comes first on the socket
        answer(router, in->peer, tp::decode_request(in->msg->body)->req);
    });
    auto rep = bridge.call(tp::cmd::stats, tp::request{}, 5s);
    loop.join();
    ASSERT_TRUE(rep);
    EXPECT_TRUE(rep->ok) << rep->error;
    bridge.stop();
}

// zmq_ctx_term waits for every socket: a context that ends after stop()
// proves the pool closed its sockets.
TEST(LoopBridge, StopClosesTheIdleSockets) {
    auto ctx = std::make_unique<zmq::context_t>();
    std::optional<loop_bridge> bridge(std::in_place, *ctx, endpoint);
    {
        zmq::socket_t router(*ctx, zmq::socket_type::router);
        router.bind(endpoint);
        answered_call(router, *bridge);
        bridge->stop();
        auto after = bridge->call(tp::cmd::stats, tp::request{}, 5s);
        ASSERT_FALSE(after);
        EXPECT_NE(after.error().message.find("shutting down"), std::string::npos);
    }
    ctx.reset();  // hangs (the suite's timeout fails it) if the bridge kept a socket open
    bridge.reset();
}
