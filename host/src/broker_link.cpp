#include "broker_link.hpp"

#include <stdexcept>

#include <taskmill/protocol/frame.hpp>

#include "security.hpp"

namespace taskmill::host::detail {

namespace {

protocol::endpoint_ring ring_of(const std::string& list) {
    try {
        return protocol::endpoint_ring(protocol::split_endpoints(list));
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error("--broker '" + list + "': " + e.what());
    }
}

// Answers to messages sent before a move keep coming for a moment; they
// must not send the link round the list again.
constexpr std::chrono::milliseconds settle{200};

}  // namespace

broker_link::broker_link(zmq::context_t& ctx, const options& o, std::string routing_id)
    : ctx_(ctx), o_(o), routing_id_(std::move(routing_id)), ring_(ring_of(o.broker)) {
    // Every endpoint of the list, so that a malformed one is refused at
    // start and not met at a failover; the first is kept.
    for (std::size_t i = 0; i < ring_.size(); ++i) {
        connect(ring_.next());
    }
    last_heard_ = last_move_ = steady::now();
}

void broker_link::connect(const std::string& endpoint) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    s.set(zmq::sockopt::routing_id, routing_id_);  // before connect: the broker routes by it
    s.set(zmq::sockopt::linger, 2000);
    s.set(zmq::sockopt::sndhwm, 100000);
    // A frame far over what try_recv accepts drops the connection before
    // its bytes are held (the broker splits its messages to stay under it).
    s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(protocol::frame_limit(protocol::default_max_body)));
    if (auto ok = apply_curve(s, o_); !ok) {
        throw std::runtime_error(ok.error().message);
    }
    try {
        s.connect(endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("--broker: cannot connect to '" + endpoint + "': " + e.what());
    }
    socket_ = std::move(s);
}

bool broker_link::follow(const std::string& leader, steady::time_point now) {
    if (now - last_move_ < settle) {
        return false;
    }
    try {
        connect(ring_.follow(leader));
    } catch (const std::runtime_error&) {
        connect(ring_.next());  // a member named an endpoint we cannot use; the list's were checked
    }
    last_heard_ = last_move_ = now;
    return true;
}

bool broker_link::move_if_silent(steady::time_point now, std::chrono::milliseconds limit) {
    if (!ring_.can_move() || now < silent_at(limit)) {
        return false;
    }
    connect(ring_.next());
    last_heard_ = last_move_ = now;
    return true;
}

broker_link::steady::time_point broker_link::silent_at(std::chrono::milliseconds limit) const {
    return ring_.can_move() ? last_heard_ + limit : steady::time_point::max();
}

}  // namespace taskmill::host::detail
