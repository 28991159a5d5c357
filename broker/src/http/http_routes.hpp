// Internal to the HTTP side: what the route handlers share.
#pragma once

#include <atomic>
#include <charconv>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <taskmill/protocol/result.hpp>

#include "http/http_bridge.hpp"
#include "http/http_router.hpp"
#include "metrics/metrics.hpp"

namespace taskmill::broker {
class event_hub;
}

namespace taskmill::broker::http {

enum class role : uint8_t { none, read, write };

class session_store;

// Who a request speaks for, as GET /api/v1/whoami tells it.
struct identity {
    std::string name;  // the token's name; empty = anonymous
    role r = role::none;
    std::string via;  // "token", "session" or "anonymous"
};

// What the dashboard's routes (http_dash.cpp) need beyond the API's.
struct dashboard_env {
    // The token's name and role for a secret; nullopt = no such token.
    std::function<std::optional<std::pair<std::string, role>>(const std::string& secret)> token;
    // Who the request speaks for (never refuses).
    std::function<identity(const httplib::Request&)> who;
    std::shared_ptr<session_store> sessions;
    std::shared_ptr<event_hub> events;
    // Event streams open, and how many may be: each holds a thread.
    std::shared_ptr<std::atomic<std::size_t>> streams;
    std::size_t max_streams = 0;
    // Logs a refusal (401, 403) as the token checks do, rate-limited.
    std::function<void(const httplib::Request&, int status, std::string_view why)> refused;
};

struct api_env {
    loop_bridge bridge;
    std::shared_ptr<const metrics_hub> hub;
    // Writes the 401/403 answer and returns false when the request's token
    // does not grant `need`.
    std::function<bool(const httplib::Request&, httplib::Response&, role need)> allow;
    // Long-polls in progress, and how many may be at once: each holds a
    // thread, so they may take only part of the pool.
    std::shared_ptr<std::atomic<std::size_t>> long_polls;
    std::size_t max_long_polls = 0;

    dashboard_env dash;  // login, whoami and the event stream (http_dash.cpp)
};

// {"error_code": ..., "error": "<sentence>"} with the status the code maps to.
void send_error(httplib::Response& res, errc code, const std::string& message);
void send_error(httplib::Response& res, int status, std::string_view code, const std::string& message);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);

// How long a route waits for the loop's answer.
inline constexpr std::chrono::milliseconds loop_timeout{10000};

using handler_fn = std::function<void(const httplib::Request&, httplib::Response&)>;
// `fn`, run only when the request's token grants `need`.
handler_fn guarded(const std::shared_ptr<const api_env>& env, role need, handler_fn fn);
// Asks the loop; on failure (transport or ok=false) answers the error and
// returns nullopt.
std::optional<protocol::reply> ask(const api_env& env, httplib::Response& res, std::string_view cmd,
                                   protocol::request rq, std::chrono::milliseconds timeout = loop_timeout);

// Refuses a query parameter not in `known`: a typo would otherwise be a
// filter silently ignored (and list everything).
result<void> known_params(const httplib::Request& req, std::initializer_list<std::string_view> known);

// An integer query parameter in [lo, hi]; `out` unchanged when absent.
template <typename T> result<void> query_int(const httplib::Request& req, const char* name, T& out, T lo, T hi) {
    if (!req.has_param(name)) {
        return {};
    }
    auto v = req.get_param_value(name);
    T n{};
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < lo || n > hi) {
        return fail(errc::invalid_argument, std::string("query parameter ") + name + " must be an integer in [" +
                                                std::to_string(lo) + ", " + std::to_string(hi) + "]");
    }
    out = n;
    return {};
}

// Loop trips one listing GET may make to fill its `limit`: the broker reads
// a bounded number of index entries per trip, so a sparse filter answers
// fewer than `limit` with a `next` instead of walking the whole store.
inline constexpr int max_listing_trips = 4;

// Asks the listing command `cmd` for `rq` (its `limit` defaulting to 100),
// handing each reply to `take`, which adds its items and returns how many;
// follows `next` until `limit` items, the end or max_listing_trips. The
// last `next` ("" at the end); nullopt when an ask failed (answered).
std::optional<std::string> page_through(const api_env& env, httplib::Response& res, std::string_view cmd,
                                        protocol::request rq, const std::function<std::size_t(protocol::reply&)>& take);

// Route functions take a router& (not httplib::Server&): a route registered
// through it answers a request with another method 405 with Allow.
void add_api_routes(router& srv, std::shared_ptr<const api_env> env);
// The operator verbs and bulk jobs (http_jobs.cpp).
void add_job_routes(router& srv, const std::shared_ptr<const api_env>& env);
// Login, logout, whoami and the event stream (http_dash.cpp).
void add_dash_routes(router& srv, const std::shared_ptr<const api_env>& env);
// Workflow listing and schedule control (http_schedules.cpp).
void add_schedule_routes(router& srv, const std::shared_ptr<const api_env>& env);

// Per-handler figures from the metrics snapshot (http_handlers.cpp).
nlohmann::json handlers_json(const metrics_snapshot& s);
void add_handler_routes(router& srv, const std::shared_ptr<const api_env>& env);

}  // namespace taskmill::broker::http
