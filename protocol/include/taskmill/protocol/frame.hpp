// taskmill/protocol/frame.hpp -- the framing of wire protocol v1.
//
// A message is, after the ROUTER routing envelope (one identity frame, no
// empty delimiter: peers are DEALER sockets), exactly three frames:
//   [signature "TASKMILL1"] [command, upper-case ASCII] [body, msgpack map]
// Functions here take and give zmq messages (the transport is the point of
// this header); the command names, size limits and the received message as
// a value are in wire.hpp, for code that needs no socket. A socket belongs
// to one thread; so do these calls.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <zmq.hpp>

#include <taskmill/protocol/result.hpp>
#include <taskmill/protocol/wire.hpp>

namespace taskmill::protocol {

// Receives one message without blocking; nullopt if none is waiting. A
// malformed message is read off the socket completely either way, however
// many frames it has (only the first few are kept).
// `with_peer` says whether the socket is a ROUTER (first frame = identity).
std::optional<incoming> try_recv(zmq::socket_t& socket, bool with_peer, std::size_t max_body = default_max_body);

// Sends one message. `peer` empty means no identity frame (DEALER side).
// Never blocks: returns false when the peer is unroutable (ROUTER_MANDATORY)
// or the message cannot be queued now (high-water mark reached, or a DEALER
// with no pipe left to its peer); never throws for those.
bool send(zmq::socket_t& socket, std::string_view peer, std::string_view command, std::string_view body);

}  // namespace taskmill::protocol
