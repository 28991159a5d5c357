// Dashboard sessions: POST /api/v1/login trades a token for a random
// session id, sent back as an HttpOnly cookie, so the page never keeps the
// token itself (not in the URL, not in localStorage). The id maps, in
// memory only, to the token's name and role; a session ends at logout,
// after `idle` without a request, or with the broker process.
#pragma once

#include <chrono>
#include <cstddef>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include <httplib.h>

#include "http/http_routes.hpp"

namespace taskmill::broker::http {

inline constexpr std::string_view session_cookie = "taskmill_session";
// The header the dashboard sets on every request that changes something;
// another site cannot set it on a cross-origin request without a CORS
// preflight, which the broker never grants.
inline constexpr std::string_view csrf_header = "X-Taskmill-CSRF";

struct session {
    std::string name;  // the token's name
    role r = role::none;
};

class session_store {
public:
    using clock = std::chrono::steady_clock;

    explicit session_store(std::chrono::seconds idle = std::chrono::hours(12), std::size_t max_sessions = 10000)
        : idle_(idle), max_(max_sessions) {}

    // A new session for the token `name` with role `r`; returns its id
    // (64 hex digits from getrandom). The oldest session is dropped when
    // `max_sessions` are open.
    std::string open(const std::string& name, role r, clock::time_point now = clock::now());
    // The session `id` names, and marks it used; nullopt when unknown or
    // idle for longer than `idle`.
    std::optional<session> find(const std::string& id, clock::time_point now = clock::now());
    void close(const std::string& id);
    std::size_t size() const;

private:
    struct entry {
        session s;
        clock::time_point used;
    };
    const std::chrono::seconds idle_;
    const std::size_t max_;
    mutable std::mutex mu_;
    std::map<std::string, entry> by_id_;
};

// The value of cookie `name` in the request's Cookie header, or "".
std::string cookie_value(const httplib::Request& req, std::string_view name);
// Whether a request authorised by the cookie shows it comes from the
// dashboard: the CSRF header, or an Origin equal to the Host it was sent to.
bool same_origin(const httplib::Request& req);
// "taskmill_session=ID; HttpOnly; SameSite=Strict; Path=/" (Max-Age=0
// with an empty id: the browser forgets it).
std::string session_cookie_header(const std::string& id);

}  // namespace taskmill::broker::http
