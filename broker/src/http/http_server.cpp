// http_server: binding, tokens, /health, /metrics, the dashboard's static
// files; the API routes are in http_api.cpp.
#include "http/http_server.hpp"

#include <strings.h>

#include <charconv>
#include <chrono>
#include <map>
#include <mutex>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "http/event_hub.hpp"
#include "http/http_assets.hpp"
#include "http/http_pool.hpp"
#include "http/http_router.hpp"
#include "http/http_routes.hpp"
#include "http/http_session.hpp"

namespace taskmill::broker {

namespace http {

namespace {

int status_of(errc code) {
    switch (code) {
        case errc::invalid_argument: return 400;
        case errc::not_found: return 404;
        case errc::conflict: return 409;
        case errc::too_large: return 413;
        case errc::unavailable: return 503;
        case errc::unsupported: return 501;
        case errc::unknown_handler: return 422;
        case errc::not_leader: return 421;  // Misdirected Request: ask the leader
        default: return 500;
    }
}

role parse_role(const std::string& s, const std::string& what) {
    if (s == "read") return role::read;
    if (s == "write") return role::write;
    if (s == "none") return role::none;
    throw std::runtime_error(what + ": role must be none, read or write, not '" + s + "'");
}

// "NAME:ROLE:SECRET" -> secret -> (name, role). The secret may contain ':'.
std::map<std::string, std::pair<std::string, role>> parse_tokens(const std::vector<std::string>& specs) {
    std::map<std::string, std::pair<std::string, role>> out;
    for (const auto& spec : specs) {
        auto a = spec.find(':');
        auto b = a == std::string::npos ? a : spec.find(':', a + 1);
        if (b == std::string::npos || a == 0 || b + 1 >= spec.size()) {
            throw std::runtime_error("--http-token must be NAME:ROLE:SECRET (got '" + spec.substr(0, a) + ":...')");
        }
        auto name = spec.substr(0, a);
        auto r = parse_role(spec.substr(a + 1, b - a - 1), "--http-token " + name);
        if (r == role::none) {
            throw std::runtime_error("--http-token " + name + ": role must be read or write");
        }
        if (!out.emplace(spec.substr(b + 1), std::make_pair(name, r)).second) {
            throw std::runtime_error("--http-token " + name + ": the same secret is given twice");
        }
    }
    return out;
}

// "Bearer SECRET" -> SECRET. The scheme is matched in any case (RFC 7235
// section 2.1: "bearer" and "BEARER" are the same scheme).
std::string bearer(const httplib::Request& req) {
    auto h = req.get_header_value("Authorization");
    constexpr std::string_view scheme = "bearer";
    if (h.size() <= scheme.size() || h[scheme.size()] != ' ' ||
        ::strncasecmp(h.c_str(), scheme.data(), scheme.size()) != 0) {
        return {};
    }
    auto begin = h.find_first_not_of(' ', scheme.size());
    if (begin == std::string::npos) {
        return {};
    }
    return h.substr(begin, h.find_last_not_of(" \t") + 1 - begin);
}

// The headers every answer carries: the dashboard runs only its own script
// and style sheet, may not be framed, and leaks no URL (which may name a
// task) to another site. Inline style attributes stay allowed: the
// dashboard's bars set their width that way.
void add_security_headers(httplib::Response& res) {
    res.set_header("Content-Security-Policy",
                   "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
                   "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
                   "frame-ancestors 'none'");
    res.set_header("X-Content-Type-Options", "nosniff");
    res.set_header("X-Frame-Options", "DENY");
    res.set_header("Referrer-Policy", "no-referrer");
}

// Sends the answer in hand, then closes the connection. cpp-httplib keeps
// a connection open unless writing the answer fails, so the body goes out
// through a provider that reports a failure once it has written it all.
void close_after(httplib::Response& res) {
    if (res.body.empty()) {
        return;
    }
    auto body = std::make_shared<std::string>(std::move(res.body));
    res.body.clear();
    auto type = res.get_header_value("Content-Type");
    res.headers.erase("Content-Type");
    res.headers.erase("Keep-Alive");
    res.set_header("Connection", "close");
    if (!res.has_header("Content-Length")) {
        res.set_header("Content-Length", std::to_string(body->size()));
    }
    res.set_content_provider(body->size(), type, [body](std::size_t offset, std::size_t, httplib::DataSink& sink) {
        sink.write(body->data() + offset, body->size() - offset);
        return false;
    });
}

// Refusals (401, 403) are logged, at most one line a second: a client
// hammering with a wrong token cannot flood the log. The next line counts
// the ones left out. The path is the client's: escaped and cut short.
class refusal_log {
public:
    explicit refusal_log(std::shared_ptr<spdlog::logger> log) : log_(std::move(log)) {}

    void note(const httplib::Request& req, int status, std::string_view why) {
        std::lock_guard lock(mu_);
        auto now = std::chrono::steady_clock::now();
        if (now < next_) {
            ++skipped_;
            return;
        }
        next_ = now + std::chrono::seconds(1);
        constexpr std::size_t max_path = 200;
        std::string_view path(req.path);
        log_->warn("http refused status={} method={:?} path={:?}{} from={} reason=\"{}\"{}", status,
                   std::string_view(req.method).substr(0, 16), path.substr(0, max_path),
                   path.size() > max_path ? "..." : "", req.remote_addr, why,
                   skipped_ == 0 ? std::string() : fmt::format(" (and {} more since the last line)", skipped_));
        skipped_ = 0;
    }

private:
    std::shared_ptr<spdlog::logger> log_;
    std::mutex mu_;
    std::chrono::steady_clock::time_point next_{};
    uint64_t skipped_ = 0;
};

// "ADDR:PORT" -> (address to bind, port); "*" and an empty ADDR are every
// interface.
std::pair<std::string, int> parse_listen(const std::string& listen) {
    auto bad = [&] {
        return std::runtime_error("--http must be ADDR:PORT with PORT in 0..65535, not '" + listen + "'");
    };
    auto colon = listen.rfind(':');
    if (colon == std::string::npos) {
        throw bad();
    }
    auto host = listen.substr(0, colon);
    if (host.empty() || host == "*") {
        host = "0.0.0.0";
    }
    std::string_view digits(listen);
    digits.remove_prefix(colon + 1);
    int port = -1;
    auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
    if (ec != std::errc() || end != digits.data() + digits.size() || port < 0 || port > 65535) {
        throw bad();
    }
    return {host, port};
}

}  // namespace

void check_options(const http_options& o) {
    (void)parse_listen(o.listen);
    (void)parse_tokens(o.tokens);
    (void)parse_role(o.anonymous, "--http-anonymous");
}

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
}

void send_error(httplib::Response& res, int status, std::string_view code, const std::string& message) {
    send_json(res, status, {{"error_code", code}, {"error", message}});
}

void send_error(httplib::Response& res, errc code, const std::string& message) {
    send_error(res, status_of(code), to_string(code), message);
}

}  // namespace http

struct http_server::impl {
    http_options opts;
    std::shared_ptr<const metrics_hub> hub;
    std::shared_ptr<spdlog::logger> log;
    std::map<std::string, std::pair<std::string, http::role>> tokens;
    http::role anonymous = http::role::none;
    std::shared_ptr<const http::api_env> env;
    std::shared_ptr<http::session_store> sessions = std::make_shared<http::session_store>();
    http::refusal_log refusals;
    http::pool_limits limits;
    http::bounded_pool* pool = nullptr;  // set when the server starts
    http::router srv;
    std::string url;
    std::thread thread;

    impl(http_options o, zmq::context_t& ctx, std::shared_ptr<const metrics_hub> h, std::shared_ptr<spdlog::logger> l)
        : opts(std::move(o)), hub(std::move(h)), log(std::move(l)), refusals(log) {
        tokens = http::parse_tokens(opts.tokens);
        anonymous = http::parse_role(opts.anonymous, "--http-anonymous");
        auto e = std::make_shared<http::api_env>(
            http::api_env{http::loop_bridge(ctx, opts.loop_endpoint), hub,
                          [this](const httplib::Request& req, httplib::Response& res, http::role need) {
                              return allow(req, res, need);
                          },
                          std::make_shared<std::atomic<std::size_t>>(0), limits.threads / 4, dashboard_env()});

        env = e;
        routes(env);
        bind();
        thread = std::thread([this] { srv.listen_after_bind(); });
        // stop() is a no-op until the server runs: a broker destroyed right
        // after construction must not leave the listener behind.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        while (!srv.is_running() && std::chrono::steady_clock::now() < deadline) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    }

    ~impl() {
        env->dash.events->close();
        env->bridge.stop();
        srv.stop();
        if (thread.joinable()) {
            thread.join();
        }
    }

    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    bool allow(const httplib::Request& req, httplib::Response& res, http::role need) {
        auto secret = http::bearer(req);
        if (secret.empty()) {
            if (auto s = session_of(req)) {
                return allow_session(req, res, need, *s);
            }
        }
        http::role have = anonymous;
        if (!secret.empty()) {
            auto it = tokens.find(secret);
            if (it == tokens.end()) {
                refusals.note(req, 401, "unknown token");
                http::send_error(res, 401, "unauthorized", "unknown token");
                return false;
            }
            have = it->second.second;
        }
        if (have >= need) {
            return true;
        }
        if (secret.empty()) {
            refusals.note(req, 401, "no token");
            res.set_header("WWW-Authenticate", "Bearer");
            http::send_error(res, 401, "unauthorized", "this endpoint needs 'Authorization: Bearer <token>'");
        } else {
            const auto& name = tokens.find(secret)->second.first;
            refusals.note(req, 403, "token '" + name + "' has the read role; this needs write");
            http::send_error(res, 403, "forbidden", "token '" + name + "' has the read role; this needs write");
        }
        return false;
    }

    // ---- the dashboard: sessions and the event stream ----

    http::dashboard_env dashboard_env() {
        return {
            [this](const std::string& secret) -> std::optional<std::pair<std::string, http::role>> {
                auto it = tokens.find(secret);
                if (it == tokens.end()) {
                    return std::nullopt;
                }
                return it->second;
            },
            [this](const httplib::Request& req) { return who(req); },
            sessions,
            opts.events ? opts.events : std::make_shared<event_hub>(),
            std::make_shared<std::atomic<std::size_t>>(0),
            limits.threads / 4,
            [this](const httplib::Request& req, int status, std::string_view why) { refusals.note(req, status, why); }};
    }

    // A request with the dashboard's session cookie. Its connection is
    // closed after the answer: cpp-httplib 0.11 wakes every 10 ms while a
    // keep-alive connection is idle, and a browser keeps one open between
    // the dashboard's refreshes (one a second), which cost ~0.6% of a core
    // per connection; a new connection costs ~1 ms of CPU once.
    static bool from_browser(const httplib::Request& req) {
        return !http::cookie_value(req, http::session_cookie).empty();
    }

    std::optional<http::session> session_of(const httplib::Request& req) {
        auto id = http::cookie_value(req, http::session_cookie);
        return id.empty() ? std::nullopt : sessions->find(id);
    }

    // A request the session cookie authorises. A browser sends the cookie
    // on its own, so one that changes something must also show it comes
    // from the dashboard (the CSRF header or a same-origin Origin).
    bool allow_session(const httplib::Request& req, httplib::Response& res, http::role need, const http::session& s) {
        bool reads = req.method == "GET" || req.method == "HEAD";
        if (!reads && !http::same_origin(req)) {
            refusals.note(req, 403, "session cookie without the CSRF header");
            http::send_error(res, 403, "forbidden",
                             "a request authorised by the session cookie must carry the " +
                                 std::string(http::csrf_header) + " header or a same-origin Origin");
            return false;
        }
        if (s.r >= need) {
            return true;
        }
        refusals.note(req, 403, "token '" + s.name + "' has the read role; this needs write");
        http::send_error(res, 403, "forbidden", "token '" + s.name + "' has the read role; this needs write");
        return false;
    }

    http::identity who(const httplib::Request& req) {
        if (auto secret = http::bearer(req); !secret.empty()) {
            auto it = tokens.find(secret);
            return it == tokens.end() ? http::identity{"", http::role::none, "token"}
                                      : http::identity{it->second.first, it->second.second, "token"};
        }
        if (auto s = session_of(req)) {
            return {s->name, s->r, "session"};
        }
        return {"", anonymous, "anonymous"};
    }

    // No group of clients may hold every thread: reads and idle keep-alive
    // waits end after a few seconds, connections past the pool's bound are
    // refused, a connection is closed after its answer while others wait,
    // and long-polls may take only a quarter of the threads.
    void limit() {
        srv.new_task_queue = [this] {
            pool = new http::bounded_pool(limits);  // owned by cpp-httplib's listen loop
            return pool;
        };
        srv.set_read_timeout(std::chrono::seconds(5));
        srv.set_write_timeout(std::chrono::seconds(5));
        srv.set_keep_alive_timeout(2);
        srv.set_keep_alive_max_count(100);
        srv.set_pre_routing_handler([](const httplib::Request& req, httplib::Response& res) {
            http::prepare_request(req);
            if (!http::bounded_pool::refusing()) {
                return httplib::Server::HandlerResponse::Unhandled;
            }
            res.set_header("Retry-After", "1");
            http::send_error(res, errc::unavailable, "the HTTP server is busy; retry in a moment");
            http::close_after(res);
            return httplib::Server::HandlerResponse::Handled;
        });
        srv.set_post_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
            http::add_security_headers(res);
            if (pool->busy() || from_browser(req)) {
                http::close_after(res);
            }
        });
    }

    void routes(const std::shared_ptr<const http::api_env>& api) {
        limit();
        srv.set_payload_max_length(opts.max_body_bytes);
        srv.set_tcp_nodelay(true);  // headers and body go out in separate writes: no Nagle delay between them
        http::answer_failures_in_json(srv, log, opts.max_body_bytes);
        srv.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
        srv.Get("/metrics", [api](const httplib::Request& req, httplib::Response& res) {
            if (api->allow(req, res, http::role::read)) {
                auto cluster = api->hub->cluster();
                res.set_content(render_prometheus(*api->hub->latest(), cluster.get()),
                                "text/plain; version=0.0.4; charset=utf-8");
            }
        });
        for (const auto& a : http::web_assets()) {
            auto serve = [&a](const httplib::Request&, httplib::Response& res) {
                res.set_content(std::string(a.data), std::string(a.content_type));
                res.set_header("Cache-Control", "no-cache");
            };
            srv.Get(std::string(a.path), serve);
            if (a.path == "/index.html") {
                srv.Get("/", serve);
            }
        }
        http::add_api_routes(srv, api);
        http::add_dash_routes(srv, api);
    }

    void health(httplib::Response& res) {
        auto s = hub->latest();
        bool full = s->store_fill > 0.95;
        http::send_json(res, full ? 503 : 200,
                        {{"status", full ? "degraded" : "ok"},
                         {"role", opts.role},
                         {"store", {{"status", full ? "full" : "ok"}, {"fill", s->store_fill}}},
                         {"uptime_ms", s->time_ms - s->started_ms}});
    }

    void bind() {
        auto [host, port] = http::parse_listen(opts.listen);
        if (port == 0) {
            port = srv.bind_to_any_port(host);
        } else if (!srv.bind_to_port(host, port)) {
            port = -1;
        }
        if (port <= 0) {
            throw std::runtime_error("cannot bind HTTP on " + opts.listen);
        }
        url = "http://" + (host == "0.0.0.0" ? std::string("127.0.0.1") : host) + ":" + std::to_string(port);
    }
};

http_server::http_server(http_options o, zmq::context_t& ctx, std::shared_ptr<const metrics_hub> hub,
                         std::shared_ptr<spdlog::logger> log)
    : impl_(std::make_unique<impl>(std::move(o), ctx, std::move(hub), std::move(log))) {}

http_server::~http_server() = default;

const std::string& http_server::url() const { return impl_->url; }

}  // namespace taskmill::broker
