// CURVE on the broker's frontend and backend, with a ZAP handler that admits
// only the listed client and host public keys.
//
// ZeroMQ asks the ZAP handler (a ROUTER bound at inproc://zeromq.zap.01 in
// the sockets' context) about every CURVE handshake; ours answers from its
// own thread, so a slow loop turn never stalls a handshake. It also watches
// both sockets' monitor streams so that a peer speaking plain TCP (which
// never reaches ZAP) is logged too.
// Threading: construct, secure() each socket, then start(), all on the
// thread that owns the sockets, before it polls them.
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <zmq.hpp>

#include <taskmill/protocol/peer_text.hpp>

namespace spdlog {
class logger;
}

namespace taskmill::broker {

struct broker_config;

class zap_authenticator {
public:
    // Binds the ZAP endpoint in `ctx`. Throws std::runtime_error for a bad
    // key in the config or when another handler is bound already.
    zap_authenticator(zmq::context_t& ctx, const broker_config& cfg, spdlog::logger& log);
    ~zap_authenticator();
    zap_authenticator(const zap_authenticator&) = delete;
    zap_authenticator& operator=(const zap_authenticator&) = delete;

    // Makes `s` a CURVE server whose peers are checked against the list of
    // `domain` ("frontend": clients, "backend": hosts). Before bind().
    void secure(zmq::socket_t& s, const std::string& domain);
    // Starts answering ZAP requests and watching the monitors.
    void start();

private:
    struct allow_list {
        bool any = false;
        std::set<std::string> keys;  // 32-byte binary public keys
    };
    struct watched {
        std::string domain;
        zmq::socket_t monitor;
    };

    void serve();
    void answer_zap();
    void read_monitor(watched& w);
    void report_refusals();
    bool admitted(const std::string& domain, const std::string& key) const;

    zmq::context_t& ctx_;
    spdlog::logger& log_;
    std::string public_key_;
    std::string secret_key_;
    allow_list clients_;
    allow_list hosts_;
    zmq::socket_t handler_;
    std::vector<std::unique_ptr<watched>> monitors_;
    // Refused handshakes, which anyone who can reach a port repeats at will:
    // per socket (0 frontend, 1 backend), one warning per minute in full,
    // then a count. Used by the ZAP thread only.
    std::array<protocol::log_gate, 2> refused_log_;
    std::array<protocol::log_gate, 2> handshake_log_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace taskmill::broker
