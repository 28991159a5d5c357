// Framing: multipart read/write with the signature check.
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

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

// At most this many parts of one message are kept; the rest are read off
// and counted, so a peer cannot make us hold an unbounded number of frames
// (zmq::recv_multipart would keep every one).
constexpr std::size_t max_kept_parts = 8;

struct parts_read {
    std::vector<zmq::message_t> kept;
    std::size_t total = 0;  // every part of the message, kept or not
};

// Reads every remaining part of a multipart message. The loop follows the
// `more` flag of the part just received, kept or discarded: following the
// last kept part instead would wait forever for parts that never come.
parts_read read_parts(zmq::socket_t& socket, zmq::message_t first) {
    parts_read out;
    bool more = first.more();
    out.kept.push_back(std::move(first));
    out.total = 1;
    while (more) {
        zmq::message_t part;
        // The rest of a multipart message is already queued: this cannot block.
        (void)socket.recv(part, zmq::recv_flags::none);
        more = part.more();
        ++out.total;
        if (out.kept.size() < max_kept_parts) {
            out.kept.push_back(std::move(part));
        }
    }
    return out;
}

result<message> validate(const parts_read& in, std::size_t first, std::size_t max_body) {
    const auto& parts = in.kept;
    if (in.total != first + 3) {
        return fail(errc::invalid_argument,
                    "expected 3 frames after the envelope, got " + std::to_string(in.total - first));
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
    const std::size_t envelope = with_peer ? 1 : 0;
    incoming in{
        with_peer ? std::string(view(parts.kept[0])) : std::string(), validate(parts, envelope, max_body), {}, 0, {}};
    if (!in.msg && parts.total == envelope + 3 && is_command(view(parts.kept[envelope + 1]))) {
        in.command = std::string(view(parts.kept[envelope + 1]));
        in.req = peek_req(view(parts.kept[envelope + 2])).value_or(0);
    }
    if (const char* uid = zmq_msg_gets(parts.kept[0].handle(), "User-Id"); uid != nullptr) {
        in.user_id = uid;
    }
    return in;
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
