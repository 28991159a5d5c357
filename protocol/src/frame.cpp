// Framing: multipart read/write with the signature check.
#include <taskmill/protocol/frame.hpp>

#include <cctype>

namespace taskmill::protocol {
namespace {

constexpr std::size_t max_command = 32;

bool is_command(std::string_view s) {
    if (s.empty() || s.size() > max_command) {
        return false;
    }
    for (char c : s) {
        if (!(std::isupper(static_cast<unsigned char>(c)) || c == '_')) {
            return false;
        }
    }
    return true;
}

std::string_view view(const zmq::message_t& m) { return {static_cast<const char*>(m.data()), m.size()}; }

// Reads every remaining part of a multipart message; bounded so a peer
// cannot make us hold an unbounded number of frames.
std::vector<zmq::message_t> read_parts(zmq::socket_t& socket, zmq::message_t first) {
    std::vector<zmq::message_t> parts;
    parts.push_back(std::move(first));
    while (parts.back().more()) {
        zmq::message_t part;
        // The rest of a multipart message is already queued: this cannot block.
        (void)socket.recv(part, zmq::recv_flags::none);
        if (parts.size() < 16) {
            parts.push_back(std::move(part));
        }
    }
    return parts;
}

result<message> validate(std::vector<zmq::message_t>& parts, std::size_t first, std::size_t max_body) {
    if (parts.size() != first + 3) {
        return fail(errc::invalid_argument, "expected 3 frames after the envelope, got " +
                                                std::to_string(parts.size() - first));
    }
    if (view(parts[first]) != signature) {
        return fail(errc::invalid_argument, "bad signature frame (want TASKMILL1)");
    }
    auto command = view(parts[first + 1]);
    if (!is_command(command)) {
        return fail(errc::invalid_argument, "malformed command frame");
    }
    if (parts[first + 2].size() > max_body) {
        return fail(errc::too_large, "body of " + std::to_string(parts[first + 2].size()) +
                                         " bytes is over the limit of " + std::to_string(max_body));
    }
    return message{std::string(command), std::string(view(parts[first + 2]))};
}

}  // namespace

std::optional<incoming> try_recv(zmq::socket_t& socket, bool with_peer, std::size_t max_body) {
    zmq::message_t first;
    if (!socket.recv(first, zmq::recv_flags::dontwait)) {
        return std::nullopt;
    }
    auto parts = read_parts(socket, std::move(first));
    std::string peer;
    if (with_peer) {
        peer = std::string(view(parts[0]));
    }
    return incoming{std::move(peer), validate(parts, with_peer ? 1 : 0, max_body)};
}

bool send(zmq::socket_t& socket, std::string_view peer, std::string_view command, std::string_view body) {
    constexpr auto more = zmq::send_flags::sndmore;
    try {
        // Never block on the first part: a DEALER whose only peer refused it
        // (a failed CURVE handshake is not retried) has no pipe to queue
        // into, and a blocked send would stall the caller's loop, timeouts
        // included. Once the first part is accepted the rest are queued.
        std::string_view first = peer.empty() ? signature : peer;
        if (!socket.send(zmq::buffer(first), more | zmq::send_flags::dontwait)) {
            return false;
        }
        if (!peer.empty()) {
            (void)socket.send(zmq::buffer(signature), more);
        }
        (void)socket.send(zmq::buffer(command), more);
        (void)socket.send(zmq::const_buffer(body.data(), body.size()), zmq::send_flags::none);
        return true;
    } catch (const zmq::error_t&) {
        return false;  // EHOSTUNREACH under ROUTER_MANDATORY: the peer is gone
    }
}

}  // namespace taskmill::protocol
