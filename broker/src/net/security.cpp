// ZAP handler and CURVE server setup for the broker (see security.hpp).
#include "net/security.hpp"

#include <array>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include <spdlog/spdlog.h>
#include <taskmill/broker/broker.hpp>
#include <zmq_addon.hpp>

namespace taskmill::broker {
namespace {

constexpr const char* zap_endpoint = "inproc://zeromq.zap.01";

std::string z85_to_binary(const std::string& z85) {
    std::array<uint8_t, 32> bin{};
    if (z85.size() != 40 || zmq_z85_decode(bin.data(), z85.c_str()) == nullptr) {
        throw std::runtime_error("not a 40-character Z85 CURVE key: '" + z85 + "'");
    }
    return std::string(reinterpret_cast<const char*>(bin.data()), bin.size());
}

std::string binary_to_z85(const std::string& bin) {
    if (bin.size() != 32) {
        return "(none)";
    }
    std::array<char, 41> out{};
    zmq_z85_encode(out.data(), reinterpret_cast<const uint8_t*>(bin.data()), bin.size());
    return out.data();
}

std::string frame_text(const zmq::message_t& m) { return std::string(static_cast<const char*>(m.data()), m.size()); }

}  // namespace

zap_authenticator::zap_authenticator(zmq::context_t& ctx, const broker_config& cfg, spdlog::logger& log)
    : ctx_(ctx),
      log_(log),
      public_key_(cfg.curve_public_key),
      secret_key_(cfg.curve_secret_key),
      handler_(ctx, zmq::socket_type::router) {
    (void)z85_to_binary(public_key_);
    (void)z85_to_binary(secret_key_);
    auto fill = [](allow_list& l, const std::vector<std::string>& keys) {
        for (const auto& k : keys) {
            if (k == "*") {
                l.any = true;
            } else {
                l.keys.insert(z85_to_binary(k));
            }
        }
    };
    fill(clients_, cfg.allow_clients);
    fill(hosts_, cfg.allow_hosts);
    handler_.set(zmq::sockopt::linger, 0);
    try {
        handler_.bind(zap_endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error(std::string("cannot bind the ZAP handler: ") + e.what());
    }
    if (clients_.keys.empty() && !clients_.any) {
        log_.warn("curve=on but no allow-client key: every client will be refused");
    }
    if (hosts_.keys.empty() && !hosts_.any) {
        log_.warn("curve=on but no allow-host key: every host will be refused");
    }
}

zap_authenticator::~zap_authenticator() {
    stop_ = true;
    if (thread_.joinable()) {
        thread_.join();
    }
}

void zap_authenticator::secure(zmq::socket_t& s, const std::string& domain) {
    s.set(zmq::sockopt::curve_server, 1);
    s.set(zmq::sockopt::curve_secretkey, secret_key_);
    s.set(zmq::sockopt::curve_publickey, public_key_);
    s.set(zmq::sockopt::zap_domain, domain);
    // Handshake failures that never reach ZAP (plain TCP, a wrong server
    // key) show up only on the monitor.
    auto ep = "inproc://taskmill-monitor-" + domain + "-" + std::to_string(reinterpret_cast<uintptr_t>(this));
    if (zmq_socket_monitor(s.handle(), ep.c_str(),
                           ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) != 0) {
        log_.warn("cannot monitor the {} socket: refused handshakes will not be logged", domain);
        return;
    }
    auto w = std::make_unique<watched>(watched{domain, zmq::socket_t(ctx_, zmq::socket_type::pair)});
    w->monitor.set(zmq::sockopt::linger, 0);
    w->monitor.connect(ep);
    monitors_.push_back(std::move(w));
}

void zap_authenticator::start() {
    log_.info("curve=on public_key={} allowed_clients={}{} allowed_hosts={}{}", public_key_, clients_.keys.size(),
              clients_.any ? "+any" : "", hosts_.keys.size(), hosts_.any ? "+any" : "");
    thread_ = std::thread([this] { serve(); });
}

void zap_authenticator::serve() {
    while (!stop_) {
        std::vector<zmq::pollitem_t> items{{handler_.handle(), 0, ZMQ_POLLIN, 0}};
        for (auto& w : monitors_) {
            items.push_back({w->monitor.handle(), 0, ZMQ_POLLIN, 0});
        }
        report_refusals();
        try {
            zmq::poll(items, std::chrono::milliseconds(100));
            if ((items[0].revents & ZMQ_POLLIN) != 0) {
                answer_zap();
            }
            for (std::size_t i = 0; i < monitors_.size(); ++i) {
                if ((items[i + 1].revents & ZMQ_POLLIN) != 0) {
                    read_monitor(*monitors_[i]);
                }
            }
        } catch (const zmq::error_t& e) {
            if (e.num() == ETERM) {
                return;
            }
            if (e.num() != EINTR) {
                log_.error("zap handler: {}", e.what());
            }
        }
    }
}

bool zap_authenticator::admitted(const std::string& domain, const std::string& key) const {
    const auto& l = domain == "backend" ? hosts_ : clients_;
    return (l.any && key.size() == 32) || l.keys.count(key) != 0;
}

// ZAP 1.0 (RFC 27): [id][empty][version][request id][domain][address]
// [identity][mechanism][credentials...]; the reply mirrors the envelope.
void zap_authenticator::answer_zap() {
    std::vector<zmq::message_t> parts;
    if (!zmq::recv_multipart(handler_, std::back_inserter(parts), zmq::recv_flags::dontwait)) {
        return;
    }
    if (parts.size() < 8) {
        log_.warn("zap handler: malformed request with {} frames dropped", parts.size());
        return;
    }
    auto domain = frame_text(parts[4]);
    auto address = frame_text(parts[5]);
    auto mechanism = frame_text(parts[7]);
    std::string key = parts.size() > 8 ? frame_text(parts[8]) : std::string();
    bool ok = mechanism == "CURVE" && admitted(domain, key);
    auto z85 = binary_to_z85(key);
    if (ok) {
        log_.debug("curve accepted socket={} address={} key={}", protocol::printable(domain),
                   protocol::printable(address), z85);
    } else {
        report_refusals();
        log_.log(refused_log_[domain == "backend" ? 1 : 0].admit() ? spdlog::level::warn : spdlog::level::debug,
                 "curve refused socket={} address={} mechanism={} key={}: not an allowed {} key",
                 protocol::printable(domain), protocol::printable(address), protocol::printable(mechanism), z85,
                 domain == "backend" ? "host" : "client");
    }
    std::array<std::string, 6> reply{
        "1.0", frame_text(parts[3]), ok ? "200" : "400", ok ? "OK" : "key not allowed", ok ? z85 : "", ""};
    handler_.send(parts[0], zmq::send_flags::sndmore);
    handler_.send(zmq::message_t(), zmq::send_flags::sndmore);
    for (std::size_t i = 0; i < reply.size(); ++i) {
        handler_.send(zmq::buffer(reply[i]), i + 1 < reply.size() ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

void zap_authenticator::read_monitor(watched& w) {
    zmq::message_t event;
    zmq::message_t address;
    if (!w.monitor.recv(event, zmq::recv_flags::dontwait)) {
        return;
    }
    if (event.more()) {
        (void)w.monitor.recv(address, zmq::recv_flags::dontwait);
    }
    if (event.size() < 6) {
        return;
    }
    uint16_t id = 0;
    uint32_t value = 0;
    std::memcpy(&id, event.data(), sizeof id);
    std::memcpy(&value, static_cast<const char*>(event.data()) + 2, sizeof value);
    // A plain-TCP peer retries every reconnect interval: one warning per
    // interval, then a count (the lines held back go to debug).
    report_refusals();
    log_.log(handshake_log_[w.domain == "backend" ? 1 : 0].admit() ? spdlog::level::warn : spdlog::level::debug,
             "curve refused socket={} endpoint={}: handshake failed (event={} code={:#x}; plain TCP or wrong "
             "server key?)",
             w.domain, protocol::printable(frame_text(address)), id, value);
}

void zap_authenticator::report_refusals() {
    for (std::size_t i = 0; i < refused_log_.size(); ++i) {
        const char* domain = i == 1 ? "backend" : "frontend";
        if (auto n = refused_log_[i].take_summary()) {
            log_.warn("curve refused socket={}: {} more handshake(s) with a key not allowed in the last minute", domain,
                      n);
        }
        if (auto n = handshake_log_[i].take_summary()) {
            log_.warn(
                "curve refused socket={}: {} more failed handshake(s) (plain TCP or wrong server key) in the last "
                "minute",
                domain, n);
        }
    }
}

}  // namespace taskmill::broker
