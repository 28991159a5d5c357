// What the dashboard needs beyond the API a script uses: logging in with a
// token (a session cookie, so the page never keeps the token), who the
// page speaks for, and the live event stream (Server-Sent Events).
#include <charconv>
#include <chrono>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "http/event_hub.hpp"
#include "http/http_session.hpp"

namespace taskmill::broker::http {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// A stream ends after this long; the browser reconnects at once, with
// Last-Event-ID, so no event is lost and no thread is held for ever.
constexpr auto stream_life = 5min;
// How long a stream waits for events before it looks at its connection.
constexpr auto stream_wait = 1s;
// Silence after which a comment line is sent, so proxies keep the
// connection and a reader that left is noticed.
constexpr auto keep_alive_every = 5s;
constexpr std::size_t events_per_write = 256;

std::string_view role_name(role r) { return r == role::write ? "write" : r == role::read ? "read" : "none"; }

json identity_json(const identity& who) {
    return {{"role", role_name(who.r)}, {"name", who.name.empty() ? json(nullptr) : json(who.name)}, {"via", who.via}};
}

bool from_page(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    if (same_origin(req)) {
        return true;
    }
    env.dash.refused(req, 403, "login or logout without the CSRF header or the same Origin");
    send_error(res, 403, "forbidden",
               std::string("a login or logout from a browser must carry the ") + std::string(csrf_header) +
                   " header or an Origin equal to the broker's address");
    return false;
}

void login(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    if (!from_page(env, req, res)) {
        return;
    }
    auto body = protocol::parse_json<json>(req.body, "the request body");
    if (!body) {
        send_error(res, body.error().code, body.error().message);
        return;
    }
    if (!body->is_object() || body->size() != 1 || !body->contains("token") || !(*body)["token"].is_string()) {
        send_error(res, errc::invalid_argument, R"(login needs {"token": "..."})");
        return;
    }
    auto found = env.dash.token((*body)["token"].get<std::string>());
    if (!found) {
        env.dash.refused(req, 401, "login with an unknown token");
        send_error(res, 401, "unauthorized", "unknown token");
        return;
    }
    auto id = env.dash.sessions->open(found->first, found->second);
    res.set_header("Set-Cookie", session_cookie_header(id));
    res.set_header("Cache-Control", "no-store");
    send_json(res, 200, identity_json({found->first, found->second, "session"}));
}

void logout(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    if (!from_page(env, req, res)) {
        return;
    }
    if (auto id = cookie_value(req, session_cookie); !id.empty()) {
        env.dash.sessions->close(id);
    }
    res.set_header("Set-Cookie", session_cookie_header(""));
    send_json(res, 200, {{"role", "none"}});
}

// One place of the env's stream cap, held for the life of the stream.
class stream_slot {
public:
    explicit stream_slot(const api_env& env) : count_(env.dash.streams) {
        if (count_->fetch_add(1) >= env.dash.max_streams) {
            count_->fetch_sub(1);
            count_.reset();
        }
    }
    ~stream_slot() {
        if (count_) {
            count_->fetch_sub(1);
        }
    }
    stream_slot(const stream_slot&) = delete;
    stream_slot& operator=(const stream_slot&) = delete;
    explicit operator bool() const { return count_ != nullptr; }

private:
    std::shared_ptr<std::atomic<std::size_t>> count_;
};

// "id: N\ndata: {...}\n\n" for each event; `dropped` first when the
// reader fell behind.
std::string sse_text(const event_hub::batch& b) {
    std::string out;
    if (b.dropped > 0) {
        out += "event: dropped\ndata: " + json({{"dropped", b.dropped}}).dump() + "\n\n";
    }
    auto id = b.next - b.events.size();
    for (const auto& [topic, body] : b.events) {
        auto data = protocol::msgpack_to_json(body, protocol::max_nesting);
        if (!data.is_object()) {
            data = {{"type", topic}};
        }
        out += "id: " + std::to_string(id++) + "\ndata: " + data.dump(-1, ' ', false, json::error_handler_t::replace) +
               "\n\n";
    }
    return out;
}

struct stream_state {
    stream_state(const api_env& env) : slot(env), reader(*env.dash.events) {}
    stream_slot slot;
    event_hub::reader reader;
    std::chrono::steady_clock::time_point end = std::chrono::steady_clock::now() + stream_life;
    std::chrono::steady_clock::time_point last_write = std::chrono::steady_clock::now();
    bool started = false;
};

// Whether the stream goes on after this call.
bool stream_step(stream_state& st, httplib::DataSink& sink) {
    if (!st.started) {
        st.started = true;
        // The browser waits 2 s before it reconnects after the stream ends.
        return sink.write(": taskmill events\nretry: 2000\n\n", 30);
    }
    auto b = st.reader.wait(stream_wait, events_per_write);
    auto now = std::chrono::steady_clock::now();
    if (b.closed || now >= st.end) {
        sink.done();
        return true;
    }
    std::string text = sse_text(b);
    if (text.empty() && now - st.last_write >= keep_alive_every) {
        text = ": keep-alive\n\n";
    }
    if (text.empty()) {
        return sink.is_writable();
    }
    st.last_write = now;
    return sink.write(text.data(), text.size());
}

void events(const std::shared_ptr<const api_env>& env, const httplib::Request& req, httplib::Response& res) {
    auto st = std::make_shared<stream_state>(*env);
    if (!st->slot) {
        res.set_header("Retry-After", "5");
        send_error(res, errc::unavailable,
                   "too many event streams open (at most " + std::to_string(env->dash.max_streams) +
                       "); poll the API instead");
        return;
    }
    if (auto last = req.get_header_value("Last-Event-ID"); !last.empty()) {
        uint64_t n = 0;
        auto [p, ec] = std::from_chars(last.data(), last.data() + last.size(), n);
        if (ec == std::errc() && p == last.data() + last.size()) {
            st->reader.resume_after(n);
        }
    }
    res.set_header("Cache-Control", "no-store");
    res.set_header("X-Accel-Buffering", "no");  // a proxy must pass events on at once
    // Exactly "text/event-stream", which cpp-httplib never compresses: with
    // a parameter it would gzip or brotli the stream for a browser, and the
    // compressor would hold the events (and the keep-alives that find a
    // reader gone) until kilobytes of them had gathered. SSE is UTF-8 by
    // definition.
    res.set_chunked_content_provider(
        "text/event-stream", [env, st](std::size_t, httplib::DataSink& sink) { return stream_step(*st, sink); });
}

}  // namespace

void add_dash_routes(router& srv, const std::shared_ptr<const api_env>& env) {
    const auto& e = *env;
    srv.Post("/api/v1/login", [&e](const httplib::Request& req, httplib::Response& res) { login(e, req, res); });
    srv.Post("/api/v1/logout", [&e](const httplib::Request& req, httplib::Response& res) { logout(e, req, res); });
    srv.Get("/api/v1/whoami", [&e](const httplib::Request& req, httplib::Response& res) {
        send_json(res, 200, identity_json(e.dash.who(req)));
    });
    srv.Get("/api/v1/events", guarded(env, role::read, [env](const httplib::Request& req, httplib::Response& res) {
                events(env, req, res);
            }));
}

}  // namespace taskmill::broker::http
