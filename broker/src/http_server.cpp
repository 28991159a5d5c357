// http_server: binding, tokens, /health, /metrics, the dashboard's static
// files; the API routes are in http_api.cpp.
#include "http_server.hpp"

#include <chrono>
#include <map>
#include <stdexcept>
#include <thread>

#include <spdlog/spdlog.h>

#include "http_assets.hpp"
#include "http_routes.hpp"

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
        default: return 500;
    }
}

role parse_role(const std::string& s, const std::string& what) {
    if (s == "read") return role::read;
    if (s == "write") return role::write;
    if (s == "none") return role::none;
    throw std::runtime_error(what + ": role must be read or write, not '" + s + "'");
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

std::string bearer(const httplib::Request& req) {
    auto h = req.get_header_value("Authorization");
    constexpr std::string_view prefix = "Bearer ";
    if (h.size() > prefix.size() && std::string_view(h).substr(0, prefix.size()) == prefix) {
        return h.substr(prefix.size());
    }
    return {};
}

}  // namespace

void send_json(httplib::Response& res, int status, const nlohmann::json& body) {
    res.status = status;
    res.set_content(body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n", "application/json");
}

void send_error(httplib::Response& res, int status, std::string_view code, const std::string& message) {
    send_json(res, status, {{"error", {{"code", code}, {"message", message}}}});
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
    httplib::Server srv;
    std::string url;
    std::thread thread;

    impl(http_options o, zmq::context_t& ctx, std::shared_ptr<const metrics_hub> h, std::shared_ptr<spdlog::logger> l)
        : opts(std::move(o)), hub(std::move(h)), log(std::move(l)) {
        tokens = http::parse_tokens(opts.tokens);
        anonymous = http::parse_role(opts.anonymous, "--http-anonymous");
        env = std::make_shared<http::api_env>(http::api_env{
            http::loop_bridge(ctx, opts.loop_endpoint), hub,
            [this](const httplib::Request& req, httplib::Response& res, http::role need) { return allow(req, res, need); }});
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
        http::role have = anonymous;
        if (!secret.empty()) {
            auto it = tokens.find(secret);
            if (it == tokens.end()) {
                http::send_error(res, 401, "unauthorized", "unknown token");
                return false;
            }
            have = it->second.second;
        }
        if (have >= need) {
            return true;
        }
        if (secret.empty()) {
            res.set_header("WWW-Authenticate", "Bearer");
            http::send_error(res, 401, "unauthorized", "this endpoint needs 'Authorization: Bearer <token>'");
        } else {
            http::send_error(res, 403, "forbidden",
                             "token '" + tokens.find(secret)->second.first + "' has the read role; this needs write");
        }
        return false;
    }

    void routes(const std::shared_ptr<const http::api_env>& api) {
        srv.new_task_queue = [] { return new httplib::ThreadPool(16); };  // long-polls hold a thread each
        srv.set_payload_max_length(opts.max_body_bytes);
        srv.set_tcp_nodelay(true);  // headers and body go out in separate writes: no Nagle delay between them
        srv.set_exception_handler([this](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            log->error("http internal error: {}", what);
            http::send_error(res, errc::internal, "internal error: " + what);
        });
        srv.Get("/health", [this](const httplib::Request&, httplib::Response& res) { health(res); });
        srv.Get("/metrics", [api](const httplib::Request& req, httplib::Response& res) {
            if (api->allow(req, res, http::role::read)) {
                res.set_content(render_prometheus(*api->hub->latest()), "text/plain; version=0.0.4; charset=utf-8");
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
        auto colon = opts.listen.rfind(':');
        if (colon == std::string::npos) {
            throw std::runtime_error("--http must be ADDR:PORT, not '" + opts.listen + "'");
        }
        auto host = opts.listen.substr(0, colon);
        if (host.empty() || host == "*") {
            host = "0.0.0.0";
        }
        int port = -1;
        try {
            port = std::stoi(opts.listen.substr(colon + 1));
        } catch (const std::exception&) {
        }
        if (port < 0 || port > 65535) {
            throw std::runtime_error("--http must be ADDR:PORT, not '" + opts.listen + "'");
        }
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
