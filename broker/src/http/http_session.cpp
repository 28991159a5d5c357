#include "http/http_session.hpp"

#include <sys/random.h>

#include <array>
#include <stdexcept>

namespace taskmill::broker::http {

namespace {

std::string random_id() {
    std::array<unsigned char, 32> bytes{};
    std::size_t got = 0;
    while (got < bytes.size()) {
        auto n = ::getrandom(bytes.data() + got, bytes.size() - got, 0);
        if (n < 0) {
            throw std::runtime_error("getrandom failed");  // answered 500 by the exception handler
        }
        got += static_cast<std::size_t>(n);
    }
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (auto b : bytes) {
        out += hex[b >> 4];
        out += hex[b & 15];
    }
    return out;
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) {
        s.remove_prefix(1);
    }
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

std::string session_store::open(const std::string& name, role r, clock::time_point now) {
    auto id = random_id();
    std::lock_guard lock(mu_);
    while (by_id_.size() >= max_ && !by_id_.empty()) {
        auto oldest = by_id_.begin();
        for (auto it = by_id_.begin(); it != by_id_.end(); ++it) {
            if (it->second.used < oldest->second.used) {
                oldest = it;
            }
        }
        by_id_.erase(oldest);
    }
    by_id_[id] = {{name, r}, now};
    return id;
}

std::optional<session> session_store::find(const std::string& id, clock::time_point now) {
    std::lock_guard lock(mu_);
    auto it = by_id_.find(id);
    if (it == by_id_.end()) {
        return std::nullopt;
    }
    if (now - it->second.used > idle_) {
        by_id_.erase(it);
        return std::nullopt;
    }
    it->second.used = now;
    return it->second.s;
}

void session_store::close(const std::string& id) {
    std::lock_guard lock(mu_);
    by_id_.erase(id);
}

std::size_t session_store::size() const {
    std::lock_guard lock(mu_);
    return by_id_.size();
}

std::string cookie_value(const httplib::Request& req, std::string_view name) {
    auto header = req.get_header_value("Cookie");
    std::string_view rest(header);
    while (!rest.empty()) {
        auto semi = rest.find(';');
        auto pair = trim(rest.substr(0, semi));
        rest = semi == std::string_view::npos ? std::string_view() : rest.substr(semi + 1);
        auto eq = pair.find('=');
        if (eq != std::string_view::npos && trim(pair.substr(0, eq)) == name) {
            return std::string(trim(pair.substr(eq + 1)));
        }
    }
    return {};
}

bool same_origin(const httplib::Request& req) {
    if (req.has_header(std::string(csrf_header).c_str())) {
        return true;
    }
    auto origin = req.get_header_value("Origin");
    auto host = req.get_header_value("Host");
    return !host.empty() && (origin == "http://" + host || origin == "https://" + host);
}

std::string session_cookie_header(const std::string& id) {
    std::string out = std::string(session_cookie) + "=" + id + "; HttpOnly; SameSite=Strict; Path=/";
    if (id.empty()) {
        out += "; Max-Age=0";
    }
    return out;
}

}  // namespace taskmill::broker::http
