// A worker's DEALER to its broker, or to whichever member of a broker
// cluster leads (docs/CLUSTER.md). `--broker` may list every member,
// comma-separated; the link is connected to one at a time and moves:
// - to the leader a member names when it answers ERROR not_leader;
// - to the next member of the list when the one in use falls silent (a
//   live broker heartbeats every heartbeat interval).
// After a move the worker says HELLO again, naming the tasks it holds, so
// the new leader gives them back to it rather than to another worker.
#pragma once

#include <chrono>
#include <string>

#include <zmq.hpp>

#include <taskmill/host/options.hpp>
#include <taskmill/protocol/endpoints.hpp>

namespace taskmill::host::detail {

class broker_link {
public:
    using steady = std::chrono::steady_clock;

    // Connects to the first endpoint of o.broker. Throws
    // std::runtime_error for a bad list or CURVE setup.
    broker_link(zmq::context_t& ctx, const options& o, std::string routing_id);

    zmq::socket_t& socket() { return socket_; }
    const std::string& endpoint() const { return ring_.current(); }
    // Any message from the broker: it is alive.
    void heard(steady::time_point now) { last_heard_ = now; }
    // A member answered not_leader naming `leader` ("" = it does not know):
    // moves there, or to the next member. False when a move was made a
    // moment ago (the answers to what went before it still come in).
    bool follow(const std::string& leader, steady::time_point now);
    // With somewhere else to go: moves to the next member once nothing was
    // heard for `limit`. True when it moved.
    bool move_if_silent(steady::time_point now, std::chrono::milliseconds limit);
    // When move_if_silent may next move, for the poll timeout; max() = never.
    steady::time_point silent_at(std::chrono::milliseconds limit) const;

private:
    void connect(const std::string& endpoint);

    zmq::context_t& ctx_;
    const options& o_;
    std::string routing_id_;
    protocol::endpoint_ring ring_;
    zmq::socket_t socket_;
    steady::time_point last_heard_;
    steady::time_point last_move_;
};

}  // namespace taskmill::host::detail
