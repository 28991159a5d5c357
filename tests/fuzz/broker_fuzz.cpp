// Fuzz target for the broker's receive path over ZeroMQ: each input becomes
// one message, of any number of frames, sent to a real broker loop over
// inproc, on the frontend or the backend, from one of a few peers (one of
// them a registered worker, so worker-only commands reach their handlers).
// Then a PING on the frontend and a CREDIT on the backend must be answered:
// an input that crashes the loop or stalls it fails the run (abort, which
// libFuzzer records with the input).
//
// Input layout:
//   byte 0   bit 0: backend (1) or frontend (0); bits 1-2: which peer;
//            bit 3: raw frames (1) or the protocol envelope (0)
//   envelope: byte 1 picks the command (every frontend and backend command,
//            and a few that are not); the rest is the body frame
//   raw:     the rest is frames, each a length byte and that many bytes
//            (cut short at the end of the input), so any frame count
// Built like decode_fuzz.cpp: with libFuzzer by scripts/fuzz.sh, and in the
// suite by broker_fuzz_driver.cpp.
#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include <zmq.hpp>

#include <taskmill/broker/broker.hpp>
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

#include "seeds.hpp"

namespace tp = taskmill::protocol;
namespace tb = taskmill::broker;

namespace {

[[noreturn]] void stalled(const char* what) {
    std::fprintf(stderr, "broker_fuzz: %s\n", what);
    std::abort();
}

zmq::socket_t dealer(zmq::context_t& ctx, const std::string& endpoint, const std::string& id) {
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::routing_id, id);
    s.set(zmq::sockopt::linger, 0);
    s.connect(endpoint);
    return s;
}

// Reads what came to `s` until `command` does (any command when empty);
// false after the deadline.
bool wait_for(zmq::socket_t& s, std::string_view command, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        while (auto in = tp::try_recv(s, false)) {
            if (command.empty() || (in->msg && in->msg->command == command)) {
                return true;
            }
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return false;
        }
        zmq::pollitem_t item{s.handle(), 0, ZMQ_POLLIN, 0};
        zmq::poll(&item, 1, left);
    }
}

void drain(zmq::socket_t& s) {
    while (tp::try_recv(s, false)) {
    }
}

// One broker for the whole run, with its peers.
struct rig {
    zmq::context_t ctx{1};
    std::unique_ptr<tb::broker> broker;
    std::thread loop;
    std::array<zmq::socket_t, 4> front;
    std::array<zmq::socket_t, 4> back;
    zmq::socket_t probe_front;
    zmq::socket_t probe_back;
    uint64_t req = 0;

    rig() {
        tb::broker_config cfg;
        cfg.frontend = "inproc://fuzz-frontend";
        cfg.backend = "inproc://fuzz-backend";
        cfg.events.clear();
        cfg.mode = tb::durability::none;
        cfg.write_endpoints_file = false;
        cfg.max_body_bytes = 1u << 20;  // room for the deep seeds (200,000 levels)
        broker = std::make_unique<tb::broker>(cfg, tb::make_memory_store(), nullptr, &ctx);
        loop = std::thread([this] { broker->run(); });
        for (std::size_t i = 0; i < front.size(); ++i) {
            front[i] = dealer(ctx, cfg.frontend, "client-" + std::to_string(i));
            back[i] = dealer(ctx, cfg.backend, "fuzz:" + std::to_string(i));
        }
        probe_front = dealer(ctx, cfg.frontend, "probe");
        probe_back = dealer(ctx, cfg.backend, "probe:0");
        hello(back[0], "fuzz:0", 4);
        hello(probe_back, "probe:0", 0);
        // A task for the worker to hold, so that its RESULTS can match one.
        tp::request rq;
        rq.req = ++req;
        rq.tasks.push_back(tp::task_spec{});
        rq.tasks[0].handler = "fuzz.echo";
        tp::send(probe_front, "", tp::cmd::submit, tp::encode(rq));
        if (!wait_for(probe_front, tp::cmd::submit, std::chrono::seconds(10))) {
            stalled("no answer to the first SUBMIT");
        }
    }

    ~rig() {
        broker->stop();
        loop.join();
    }

    void hello(zmq::socket_t& s, const std::string& id, uint32_t slots) {
        tp::hello h;
        h.worker = id;
        h.host = "fuzz";
        h.slots = slots;
        h.handlers = {{"fuzz.echo", "1.0.0", "fuzz"}};
        tp::send(s, "", tp::cmd::hello, tp::encode(h));
        if (!wait_for(s, tp::cmd::welcome, std::chrono::seconds(10))) {
            stalled("no WELCOME");
        }
    }

    // The broker still answers on both sockets.
    void probe() {
        tp::request rq;
        rq.req = ++req;
        tp::send(probe_front, "", tp::cmd::ping, tp::encode(rq));
        if (!wait_for(probe_front, tp::cmd::ping, std::chrono::seconds(10))) {
            stalled("the frontend stopped answering");
        }
        tp::control credit;  // answered by CREDIT, or UNKNOWN if an input removed the probe worker
        tp::send(probe_back, "", tp::cmd::credit, tp::encode(credit));
        if (!wait_for(probe_back, {}, std::chrono::seconds(10))) {
            stalled("the backend stopped answering");
        }
        drain(probe_back);
        for (std::size_t i = 0; i < front.size(); ++i) {
            drain(front[i]);
            drain(back[i]);
        }
    }
};

void send_input(rig& r, const uint8_t* data, std::size_t size) {
    auto& s = (data[0] & 1) != 0 ? r.back[(data[0] >> 1) & 3] : r.front[(data[0] >> 1) & 3];
    const char* p = reinterpret_cast<const char*>(data) + 1;
    std::size_t left = size - 1;
    if ((data[0] & 8) == 0) {
        std::string_view command =
            left > 0 ? fuzzseeds::commands[static_cast<uint8_t>(*p) % fuzzseeds::commands.size()] : tp::cmd::ping;
        std::string_view body = left > 0 ? std::string_view(p + 1, left - 1) : std::string_view();
        s.send(zmq::buffer(tp::signature), zmq::send_flags::sndmore);
        s.send(zmq::buffer(command), zmq::send_flags::sndmore);
        s.send(zmq::const_buffer(body.data(), body.size()), zmq::send_flags::none);
        return;
    }
    do {
        std::size_t n = left > 0 ? std::min<std::size_t>(static_cast<uint8_t>(*p), left - 1) : 0;
        const char* frame = left > 0 ? p + 1 : p;
        std::size_t used = left > 0 ? n + 1 : 0;
        p += used;
        left -= used;
        s.send(zmq::const_buffer(frame, n), left > 0 ? zmq::send_flags::sndmore : zmq::send_flags::none);
    } while (left > 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static rig r;  // one broker for the run; destroyed at exit
    if (size == 0) {
        return 0;
    }
    send_input(r, data, size);
    r.probe();
    return 0;
}
