// The broker's HTTP side in process: the JSON API (submit, result with
// long-poll, cancel, list), tokens and roles, malformed input, and the
// /metrics counters against the tasks a fake worker actually ran.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "broker_harness.hpp"

namespace {

using namespace tmtest;
using nlohmann::json;

constexpr const char* writer = "w-secret";
constexpr const char* reader = "r-secret";

bool wait_for(const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > deadline) {
            return false;
        }
        std::this_thread::sleep_for(20ms);  // polling interval, not synchronisation
    }
    return true;
}

struct http_reply {
    int status = 0;
    json body;
    std::string text;
};

// Raw TCP connections to the broker's HTTP port, held open until the end
// of the test: the clients that try to take every HTTP thread.
class raw_connections {
public:
    explicit raw_connections(const std::string& url) : port_(std::stoi(url.substr(url.rfind(':') + 1))) {}
    ~raw_connections() {
        for (int fd : fds_) ::close(fd);
    }
    raw_connections(const raw_connections&) = delete;
    raw_connections& operator=(const raw_connections&) = delete;

    // Opens `n` connections and writes `head` on each once it connects
    // (nothing when empty); returns how many got it within `budget`.
    std::size_t open(std::size_t n, const std::string& head, std::chrono::milliseconds budget) {
        std::vector<pollfd> pending;
        for (std::size_t i = 0; i < n; ++i) {
            int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) break;
            fds_.push_back(fd);
            sockaddr_in a{};
            a.sin_family = AF_INET;
            a.sin_port = htons(static_cast<uint16_t>(port_));
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);  // EINPROGRESS
            pending.push_back({fd, POLLOUT, 0});
        }
        std::size_t sent = 0;
        auto deadline = std::chrono::steady_clock::now() + budget;
        while (!pending.empty() && std::chrono::steady_clock::now() < deadline) {
            if (::poll(pending.data(), pending.size(), 100) <= 0) continue;
            for (auto it = pending.begin(); it != pending.end();) {
                if ((it->revents & POLLOUT) == 0) {
                    ++it;
                    continue;
                }
                if (head.empty() ||
                    ::send(it->fd, head.data(), head.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(head.size())) {
                    ++sent;
                }
                it = pending.erase(it);
            }
        }
        return sent;
    }

private:
    int port_;
    std::vector<int> fds_;
};

// One raw TCP connection to the broker's HTTP port, for what a client
// library hides: whether the server keeps the connection after an answer.
class raw_client {
public:
    explicit raw_client(const std::string& url) {
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(std::stoi(url.substr(url.rfind(':') + 1))));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        connected_ = fd_ >= 0 && ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    }
    ~raw_client() {
        if (fd_ >= 0) ::close(fd_);
    }
    raw_client(const raw_client&) = delete;
    raw_client& operator=(const raw_client&) = delete;

    bool connected() const { return connected_; }
    bool send(const std::string& text) {
        return ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size());
    }
    // The head of the next answer and its body (by Content-Length), or ""
    // if the connection ended or `wait` passed first.
    std::string answer(std::chrono::milliseconds wait) {
        auto deadline = std::chrono::steady_clock::now() + wait;
        for (;;) {
            if (auto end = buf_.find("\r\n\r\n"); end != std::string::npos) {
                std::smatch m;
                const std::string head = buf_.substr(0, end + 4);
                std::size_t body = 0;
                if (std::regex_search(head, m, std::regex("[Cc]ontent-[Ll]ength: *([0-9]+)"))) {
                    body = std::stoul(m[1]);
                }
                if (buf_.size() >= head.size() + body) {
                    auto out = buf_.substr(0, head.size() + body);
                    buf_.erase(0, out.size());
                    return out;
                }
            }
            if (!read_until(deadline)) {
                return "";
            }
        }
    }
    // Whether `needle` arrives (in what was read so far or after) within `wait`.
    bool received(const std::string& needle, std::chrono::milliseconds wait) {
        auto deadline = std::chrono::steady_clock::now() + wait;
        while (buf_.find(needle) == std::string::npos) {
            if (!read_until(deadline)) {
                return false;
            }
        }
        return true;
    }
    const std::string& text() const { return buf_; }
    // Whether the server ends the connection within `wait` (nothing more
    // comes, then end of stream).
    bool closed_within(std::chrono::milliseconds wait) {
        auto deadline = std::chrono::steady_clock::now() + wait;
        while (read_until(deadline)) {
        }
        return eof_;
    }

private:
    // Reads what comes before `deadline`; false at end of stream or timeout.
    bool read_until(std::chrono::steady_clock::time_point deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        pollfd p{fd_, POLLIN, 0};
        if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
            return false;
        }
        char chunk[4096];
        auto n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) {
            eof_ = true;
            return false;
        }
        buf_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    int fd_ = -1;
    bool connected_ = false;
    bool eof_ = false;
    std::string buf_;
};

// How long a fresh client took to get 200 from /health, retrying until
// `deadline`; nullopt if it never did.
std::optional<std::chrono::milliseconds> health_time(const std::string& url, std::chrono::milliseconds deadline) {
    auto started = std::chrono::steady_clock::now();
    httplib::Client c(url);
    c.set_connection_timeout(std::chrono::seconds(1));
    c.set_read_timeout(std::chrono::seconds(1));
    while (std::chrono::steady_clock::now() - started < deadline) {
        if (auto r = c.Get("/health"); r && r->status == 200) {
            return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
        }
    }
    return std::nullopt;
}

class HttpApi : public ::testing::Test {
protected:
    zmq::context_t ctx{1};
    temp_dir dir;
    // What a test's own log sink writes to: declared before the broker, so
    // it outlives the broker thread's last line.
    std::shared_ptr<std::ostringstream> log_out;
    std::unique_ptr<running_broker> broker;
    std::unique_ptr<httplib::Client> http;
    std::shared_ptr<spdlog::logger> log;  // the broker's logger when set before start()

    // Sends the broker's log (set up before start()) to log_out; the sink,
    // to flush before reading.
    std::shared_ptr<spdlog::sinks::ostream_sink_mt> capture_log() {
        log_out = std::make_shared<std::ostringstream>();
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(*log_out);
        log = std::make_shared<spdlog::logger>("refusals", sink);
        return sink;
    }

    void start(const std::string& anonymous = "none", uint32_t list_scan_budget = 20000) {
        auto cfg = test_config(dir.path.string());
        cfg.list_scan_budget = list_scan_budget;
        cfg.http = "127.0.0.1:0";
        cfg.http_tokens = {std::string("ops:write:") + writer, std::string("viewer:read:") + reader};
        cfg.http_anonymous = anonymous;
        broker = std::make_unique<running_broker>(ctx, cfg, log);
        ASSERT_EQ(broker->endpoints().http.rfind("http://127.0.0.1:", 0), 0u) << broker->endpoints().http;
        http = std::make_unique<httplib::Client>(broker->endpoints().http);
        http->set_read_timeout(std::chrono::seconds(20));
    }

    static http_reply answer(const httplib::Result& r) {
        http_reply out;
        if (!r) {
            ADD_FAILURE() << "HTTP request failed: " << httplib::to_string(r.error());
            return out;
        }
        out.status = r->status;
        out.text = r->body;
        out.body = json::parse(r->body, nullptr, false);
        return out;
    }
    static httplib::Headers auth(const char* token) {
        if (token == nullptr) {
            return {};
        }
        return {{"Authorization", std::string("Bearer ") + token}};
    }
    http_reply get(const std::string& path, const char* token = reader) { return answer(http->Get(path, auth(token))); }
    http_reply post(const std::string& path, const std::string& body, const char* token = writer) {
        return answer(http->Post(path, auth(token), body, "application/json"));
    }
    std::string submit(const json& task) {
        auto r = post("/api/v1/tasks", task.dump());
        EXPECT_EQ(r.status, 201) << r.text;
        return r.status == 201 ? r.body["ids"][0].get<std::string>() : std::string();
    }
    // A sample's value in the Prometheus text ("name{labels}" exactly as
    // rendered); -1 when absent.
    double sample(const std::string& text, const std::string& key) {
        std::istringstream in(text);
        std::string line;
        while (std::getline(in, line)) {
            if (line.rfind(key + " ", 0) == 0) {
                return std::stod(line.substr(key.size() + 1));
            }
        }
        return -1;
    }
};

TEST_F(HttpApi, SubmitWaitForResultCancelAndList) {
    start();
    fake_worker w(ctx, broker->endpoints().backend, "host:1");
    w.hello({handler("t.echo")}, 4, {"default"});

    auto id = submit({{"handler", "t.echo"}, {"payload", {{"n", 7}}}, {"tags", {"batch-1"}}});
    ASSERT_EQ(id.size(), 32u);
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    auto payload = json::from_msgpack(items[0].payload);
    EXPECT_EQ(payload["n"], 7) << "the JSON payload reaches the worker as msgpack";

    // Long-poll: the result request is answered when the worker reports.
    std::thread reporter([&] {
        auto bytes = json::to_msgpack(json{{"doubled", 14}});
        w.result(items[0], "ok", std::string(bytes.begin(), bytes.end()));
    });
    auto res = get("/api/v1/tasks/" + id + "/result?wait_ms=10000");
    reporter.join();
    ASSERT_EQ(res.status, 200) << res.text;
    EXPECT_EQ(res.body["state"], "SUCCEEDED");
    EXPECT_EQ(res.body["final"], true);
    EXPECT_EQ(res.body["result"]["doubled"], 14);

    // Nobody serves "parked": those tasks stay QUEUED and can be cancelled.
    auto a = submit({{"handler", "t.echo"}, {"queue", "parked"}});
    auto b = submit({{"handler", "t.echo"}, {"queue", "parked"}, {"tags", {"bulk"}}});
    auto c = submit({{"handler", "t.echo"}, {"queue", "parked"}, {"tags", {"bulk"}}});
    auto pending = get("/api/v1/tasks/" + a + "/result");
    EXPECT_EQ(pending.status, 202) << "not final yet: " << pending.text;
    EXPECT_EQ(pending.body["final"], false);

    auto del = answer(http->Post("/api/v1/tasks/" + a + "/cancel", auth(writer), "", "application/json"));
    ASSERT_EQ(del.status, 200) << del.text;
    EXPECT_EQ(get("/api/v1/tasks/" + a).body["state"], "CANCELLED");
    auto by_tag = post("/api/v1/cancel", R"({"tag": "bulk"})");
    ASSERT_EQ(by_tag.status, 200) << by_tag.text;
    EXPECT_EQ(by_tag.body["ids"].size(), 2u);
    EXPECT_EQ(get("/api/v1/tasks/" + b).body["state"], "CANCELLED");
    EXPECT_EQ(get("/api/v1/tasks/" + c).body["state"], "CANCELLED");

    auto list = get("/api/v1/tasks?state=CANCELLED&queue=parked");
    ASSERT_EQ(list.status, 200) << list.text;
    EXPECT_EQ(list.body["tasks"].size(), 3u);
    auto tagged = get("/api/v1/tasks?tag=batch-1");
    ASSERT_EQ(tagged.body["tasks"].size(), 1u);
    EXPECT_EQ(tagged.body["tasks"][0]["id"], id);
    EXPECT_EQ(get("/api/v1/tasks?state=NOPE").status, 400);
    EXPECT_EQ(get("/api/v1/tasks?limit=abc").status, 400);
    EXPECT_EQ(get("/api/v1/tasks/0123").status, 400) << "bad id, same error as the ZeroMQ path";
    EXPECT_EQ(get("/api/v1/tasks/0123456789abcdef0123456789abcdef").status, 404);

    auto workers = get("/api/v1/workers");
    ASSERT_EQ(workers.body["workers"].size(), 1u);
    EXPECT_EQ(workers.body["workers"][0]["handlers"][0]["name"], "t.echo");
    auto stats = get("/api/v1/stats");
    EXPECT_EQ(stats.body["states"]["SUCCEEDED"], 1);
    EXPECT_EQ(stats.body["states"]["CANCELLED"], 3);
}

// A bulk body's since/until may be text, read as the listing reads its
// query (what the dashboard sends for "everything matching the filter").
TEST_F(HttpApi, BulkFiltersReadTimesAsTheListingDoes) {
    start();
    auto id = submit({{"handler", "t.echo"}, {"queue", "parked"}});
    auto cancel = post("/api/v1/tasks/cancel", R"({"queue": "parked", "since": "1h30m"})");
    ASSERT_EQ(cancel.status / 100, 2) << cancel.text;
    ASSERT_TRUE(wait_for([&] { return get("/api/v1/tasks/" + id).body.value("state", "") == "CANCELLED"; }, 5s));
    auto later = post("/api/v1/tasks/delete", R"({"state": "CANCELLED", "since": "2099-01-01T00:00:00Z"})");
    ASSERT_EQ(later.status / 100, 2) << later.text;
    const std::string job = later.body["job"]["id"].dump();
    ASSERT_TRUE(wait_for([&] { return get("/api/v1/jobs/" + job).body.value("state", "") == "done"; }, 5s))
        << get("/api/v1/jobs/" + job).text;
    EXPECT_EQ(get("/api/v1/jobs/" + job).body["matched"], 0) << "nothing finished after 2099";
    auto bad = post("/api/v1/tasks/delete", R"({"state": "CANCELLED", "since": "yesterday"})");
    EXPECT_EQ(bad.status, 400);
    EXPECT_NE(bad.text.find("since: time 'yesterday'"), std::string::npos) << bad.text;
    EXPECT_EQ(post("/api/v1/tasks/delete", R"({"since": 5})").status, 400) << "a number is since_ms, not since";
    EXPECT_EQ(get("/api/v1/tasks/" + id).body.value("state", ""), "CANCELLED") << "the future window deleted nothing";
}

TEST_F(HttpApi, TokensAndRoles) {
    start();
    auto health = answer(http->Get("/health"));
    EXPECT_EQ(health.status, 200) << "health needs no token";
    EXPECT_EQ(health.body["status"], "ok");
    EXPECT_EQ(health.body["store"]["status"], "ok");
    EXPECT_TRUE(health.body.contains("role"));

    const std::string task = R"({"handler": "t.echo"})";
    EXPECT_EQ(post("/api/v1/tasks", task, nullptr).status, 401);
    EXPECT_EQ(post("/api/v1/tasks", task, "wrong").status, 401);
    auto forbidden = post("/api/v1/tasks", task, reader);
    EXPECT_EQ(forbidden.status, 403);
    EXPECT_EQ(forbidden.body["error_code"], "forbidden");
    EXPECT_EQ(get("/api/v1/stats", nullptr).status, 401);
    EXPECT_EQ(get("/metrics", nullptr).status, 401);
    EXPECT_EQ(get("/api/v1/stats", reader).status, 200);
    EXPECT_EQ(get("/metrics", reader).status, 200);
    EXPECT_EQ(answer(http->Delete("/api/v1/tasks/0123456789abcdef0123456789abcdef", auth(reader))).status, 403);
    // None of the refused submits got through.
    EXPECT_EQ(get("/api/v1/stats").body["states"].value("QUEUED", 0), 0);
    EXPECT_EQ(post("/api/v1/tasks", task, writer).status, 201);
}

TEST_F(HttpApi, AnonymousReadWhenConfigured) {
    start("read");
    EXPECT_EQ(get("/api/v1/stats", nullptr).status, 200);
    EXPECT_EQ(post("/api/v1/tasks", R"({"handler": "t.echo"})", nullptr).status, 401);
}

TEST_F(HttpApi, MalformedRequestsGet400AndChangeNothing) {
    start();
    struct bad_case {
        std::string body;
        std::string expect;
    };
    const std::vector<bad_case> cases = {
        {R"({"handler": "t.echo", )", "malformed JSON"},
        {"", "malformed JSON"},
        {R"([1, 2])", "must be a JSON object"},
        {R"({"handler": 5})", "handler must be a string"},
        {R"({"payload": {}})", "handler is required"},
        {R"({"handler": "t.echo", "priorty": 3})", "unknown field 'priorty'"},
        {R"({"handler": "t.echo", "priority": 11})", "priority"},
        {R"({"handler": "t.echo", "timeout_ms": "soon"})", "timeout_ms must be an integer"},
        {R"({"handler": "no dots"})", "handler"},
        {R"({"tasks": [{"handler": "t.echo"}, {"handler": 1}]})", "task 1"},
        {R"({"tasks": []})", "non-empty"},
        {R"({"handler": "t.echo", "payload": 1e400})", "malformed JSON"},
        {R"({"handler": "t.echo", "timeout_ms": 9223372036854775807})", "timeout_ms"},
        {R"({"handler": "t.echo", "delay_ms": 315360000001})", "delay_ms"},
        {R"({"handler": "t.echo", "payload": )" + std::string(100000, '[') + std::string(100000, ']') + "}",
         "deeper than 128"},
    };
    for (const auto& c : cases) {
        auto r = post("/api/v1/tasks", c.body);
        EXPECT_EQ(r.status, 400) << c.body << " -> " << r.text;
        EXPECT_EQ(r.body["error_code"], "invalid_argument") << c.body;
        EXPECT_NE(r.body["error"].get<std::string>().find(c.expect), std::string::npos) << c.body << " -> " << r.text;
    }
    EXPECT_EQ(post("/api/v1/cancel", R"({"id": 1})").status, 400);
    auto stats = get("/api/v1/stats");
    EXPECT_EQ(stats.body["counters"].value("submitted", 0), 0) << stats.text;
    EXPECT_TRUE(get("/api/v1/tasks").body["tasks"].empty());
}

TEST_F(HttpApi, WorkflowsSubmitStatusCancel) {
    start();
    auto r = post(
        "/api/v1/workflows",
        R"({"steps": [{"name": "a", "handler": "t.echo"}, {"name": "b", "handler": "t.echo", "depends_on": ["a"]}]})");
    ASSERT_EQ(r.status, 201) << r.text;
    auto id = r.body["ids"][0].get<std::string>();
    auto st = get("/api/v1/workflows/" + id);
    ASSERT_EQ(st.status, 200) << st.text;
    EXPECT_EQ(st.body.value("state", ""), "RUNNING") << st.text;
    EXPECT_EQ(post("/api/v1/workflows", R"({"steps": )").status, 400);
    EXPECT_EQ(post("/api/v1/workflows", R"({"steps": []})", reader).status, 403);
    auto del = answer(http->Delete("/api/v1/workflows/" + id, auth(writer)));
    EXPECT_EQ(del.status, 200) << del.text;
    EXPECT_NE(get("/api/v1/workflows/" + id).body.value("state", ""), "RUNNING");
    EXPECT_EQ(get("/api/v1/schedules").status, 200);
}

// Before: JSON nested 100,000 levels crashed the broker in to_msgpack, and
// so did rendering a stored result nested that deep.
TEST_F(HttpApi, DeepValuesAreRefusedOrShownAsErrors) {
    start();
    const auto deep = std::string(100000, '[') + std::string(100000, ']');
    auto wf = post("/api/v1/workflows", deep);
    EXPECT_EQ(wf.status, 400) << wf.text.substr(0, 200);
    auto retries = post("/api/v1/workflows", R"({"steps": [{"name": "a", "handler": "t.echo", "retries": 2.7}]})");
    EXPECT_EQ(retries.status, 400) << retries.text;
    EXPECT_NE(retries.text.find("integer"), std::string::npos) << retries.text;

    fake_worker w(ctx, broker->endpoints().backend, "host:1");
    w.hello({handler("t.echo")}, 1, {"default"});
    auto id = submit({{"handler", "t.echo"}});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    w.result(items[0], "ok", std::string(100000, '\x91') + '\xc0');
    ASSERT_TRUE(wait_for([&] { return get("/api/v1/tasks/" + id).body.value("state", "") == "SUCCEEDED"; }, 5s));
    auto detail = get("/api/v1/tasks/" + id);
    ASSERT_EQ(detail.status, 200);
    EXPECT_NE(detail.body["result"].value("msgpack_error", "").find("deeper than 128"), std::string::npos)
        << detail.text;
    auto list = get("/api/v1/tasks");
    ASSERT_EQ(list.status, 200) << list.text;
    EXPECT_TRUE(list.body["tasks"][0]["result"].contains("msgpack_error")) << list.text;
    EXPECT_EQ(get("/api/v1/tasks/" + id + "/result").status, 200);
}

TEST_F(HttpApi, DashboardFilesAreServed) {
    start();
    auto page = http->Get("/");
    ASSERT_TRUE(page);
    EXPECT_EQ(page->status, 200);
    EXPECT_NE(page->body.find("<script type=\"module\" src=\"/app.js\">"), std::string::npos);
    // Every module app.js imports, directly or not, is served as JavaScript.
    std::vector<std::string> modules = {"/app.js"};
    std::set<std::string> seen;
    const std::regex import_re(R"re(from "\.(/[a-z_]+\.js)")re");
    while (!modules.empty()) {
        auto path = modules.back();
        modules.pop_back();
        if (!seen.insert(path).second) {
            continue;
        }
        auto js = http->Get(path);
        ASSERT_TRUE(js) << path;
        EXPECT_EQ(js->status, 200) << path;
        EXPECT_NE(js->get_header_value("Content-Type").find("javascript"), std::string::npos) << path;
        for (std::sregex_iterator it(js->body.begin(), js->body.end(), import_re), end; it != end; ++it) {
            modules.push_back((*it)[1]);
        }
    }
    EXPECT_GE(seen.size(), 5u) << "app.js imports the pages";
    EXPECT_TRUE(seen.count("/page_overview.js")) << "the overview reads /api/v1/stats";
    EXPECT_NE(http->Get("/page_overview.js")->body.find("/api/v1/stats"), std::string::npos);
    EXPECT_EQ(http->Get("/style.css")->status, 200);
}

TEST_F(HttpApi, TheBearerSchemeIsMatchedInAnyCase) {
    start();
    for (const std::string scheme : {"Bearer", "bearer", "BEARER", "bEaReR"}) {
        auto r = answer(http->Get("/api/v1/stats", {{"Authorization", scheme + " " + reader}}));
        EXPECT_EQ(r.status, 200) << scheme << ": " << r.text;
    }
    EXPECT_EQ(answer(http->Get("/api/v1/stats", {{"Authorization", std::string("Basic ") + reader}})).status, 401);
    EXPECT_EQ(answer(http->Get("/api/v1/stats", {{"Authorization", std::string("Bearer") + reader}})).status, 401);
}

TEST_F(HttpApi, EveryAnswerCarriesSecurityHeaders) {
    start();
    for (const std::string path : {"/", "/index.html", "/app.js", "/style.css", "/health", "/api/v1/stats", "/nope"}) {
        auto r = http->Get(path, auth(reader));
        ASSERT_TRUE(r) << path;
        auto csp = r->get_header_value("Content-Security-Policy");
        EXPECT_NE(csp.find("default-src 'self'"), std::string::npos) << path << ": " << csp;
        EXPECT_NE(csp.find("frame-ancestors 'none'"), std::string::npos) << path << ": " << csp;
        EXPECT_EQ(r->get_header_value("X-Content-Type-Options"), "nosniff") << path;
        EXPECT_EQ(r->get_header_value("X-Frame-Options"), "DENY") << path;
        EXPECT_EQ(r->get_header_value("Referrer-Policy"), "no-referrer") << path;
    }
}

// 401 and 403 are logged, one line a second at most, with the ones left
// out counted in the next line; the client's path is escaped.
TEST_F(HttpApi, RefusalsAreLoggedAtMostOnceASecond) {
    auto sink = capture_log();
    auto& out = log_out;
    start();
    auto lines = [&] {
        sink->flush();
        auto text = out->str();
        std::vector<std::string> found;
        std::istringstream in(text);
        for (std::string line; std::getline(in, line);) {
            if (line.find("http refused") != std::string::npos) found.push_back(line);
        }
        return found;
    };
    EXPECT_EQ(get("/api/v1/stats", nullptr).status, 401);
    ASSERT_EQ(lines().size(), 1u) << out->str();
    EXPECT_NE(lines()[0].find("status=401"), std::string::npos) << lines()[0];
    EXPECT_NE(lines()[0].find("no token"), std::string::npos) << lines()[0];
    auto started = std::chrono::steady_clock::now();
    for (int i = 0; i < 200; ++i) {
        EXPECT_EQ(get("/api/v1/tasks/x%0Afake", "wrong").status, 401);
    }
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - started).count();
    EXPECT_LE(lines().size(), static_cast<std::size_t>(seconds + 2)) << out->str();
    EXPECT_EQ(out->str().find("\nfake"), std::string::npos) << "a raw newline from the path: " << out->str();
    // After a quiet second, the next refusal is logged with the count.
    ASSERT_TRUE(wait_for(
        [&] {
            EXPECT_EQ(post("/api/v1/tasks", R"({"handler": "t.echo"})", reader).status, 403);
            return lines().back().find("status=403") != std::string::npos;
        },
        5s))
        << out->str();
    EXPECT_NE(lines().back().find("more since the last line"), std::string::npos) << lines().back();
    EXPECT_NE(lines().back().find("viewer"), std::string::npos) << "the token's name, never its secret";
    EXPECT_EQ(out->str().find(reader), std::string::npos) << "a secret in the log";
}

// The dashboard's login is a way to try tokens too: its refusals are logged
// like every other 401 and 403, never with the secret tried.
TEST_F(HttpApi, FailedLoginsAreLoggedAsRefusals) {
    auto sink = capture_log();
    auto& out = log_out;
    start();
    auto logged = [&](const std::string& what) {
        sink->flush();
        return out->str().find(what) != std::string::npos;
    };
    const httplib::Headers csrf = {{"X-Taskmill-CSRF", "1"}};
    auto r = http->Post("/api/v1/login", csrf, R"({"token": "guessed-secret"})", "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_TRUE(logged("status=401")) << out->str();
    EXPECT_TRUE(logged("login with an unknown token")) << out->str();
    EXPECT_FALSE(logged("guessed-secret")) << "a secret in the log: " << out->str();
    // One line a second: the page-less login shows once the second is over.
    ASSERT_TRUE(wait_for(
        [&] {
            auto page_less = http->Post("/api/v1/login", R"({"token": "r-secret"})", "application/json");
            EXPECT_TRUE(page_less && page_less->status == 403);
            return logged("status=403");
        },
        5s))
        << out->str();
}

// The HTTP threads are few; no group of clients may take them all. Each
// attack below stays in place while a fresh client asks for /health.
class HttpStarvation : public HttpApi {};

TEST_F(HttpStarvation, SlowLorisConnectionsLeaveHealthAnswering) {
    start();
    raw_connections loris(broker->endpoints().http);
    // Headers begun, never finished, no token.
    EXPECT_EQ(loris.open(24, "GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nX-Slow: ", 5s), 24u);
    auto took = health_time(broker->endpoints().http, 3s);
    ASSERT_TRUE(took.has_value()) << "/health starved by 24 half-sent requests";
    EXPECT_LT(took->count(), 3000);
}

TEST_F(HttpStarvation, LongPollsTakeOnlyAQuarterOfTheThreads) {
    start();
    auto id = submit({{"handler", "t.echo"}, {"queue", "parked"}});  // nobody serves "parked": it waits
    std::atomic<int> refused{0};
    std::atomic<int> answered{0};
    std::vector<std::thread> polls;
    for (int i = 0; i < 24; ++i) {
        polls.emplace_back([&] {
            httplib::Client c(broker->endpoints().http);
            c.set_read_timeout(std::chrono::seconds(30));
            auto r = c.Get("/api/v1/tasks/" + id + "/result?wait_ms=25000", auth(reader));
            if (r && r->status == 503 && json::parse(r->body, nullptr, false)["error_code"] == "unavailable") {
                ++refused;
            } else if (r) {
                ++answered;
            }
        });
    }
    // No ASSERT before the joins below: a failed one would leave the
    // threads running.
    EXPECT_TRUE(wait_for([&] { return refused.load() == 16; }, 10s)) << "refused " << refused.load();
    auto took = health_time(broker->endpoints().http, 3s);
    EXPECT_TRUE(took.has_value()) << "/health starved by long-polls";
    EXPECT_EQ(get("/api/v1/stats").status, 200) << "the API too";
    // Ending the task answers the 8 that wait.
    EXPECT_EQ(answer(http->Post("/api/v1/tasks/" + id + "/cancel", auth(writer), "", "application/json")).status, 200);
    for (auto& t : polls) t.join();
    EXPECT_EQ(answered.load(), 8);
}

TEST_F(HttpStarvation, TwoThousandKeepAliveConnectionsLeaveHealthAnswering) {
    start();
    raw_connections flood(broker->endpoints().http);
    auto started = std::chrono::steady_clock::now();
    // Each asks once, keeps its connection and never reads the answer; a
    // tenth never says anything at all.
    EXPECT_GE(flood.open(1800, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 20s), 1700u);
    EXPECT_GE(flood.open(200, "", 20s), 190u);
    auto opened = std::chrono::steady_clock::now() - started;
    auto took = health_time(broker->endpoints().http, 5s);
    ASSERT_TRUE(took.has_value()) << "/health starved by 2,000 keep-alive connections";
    std::cout << "opened 2000 connections in " << std::chrono::duration_cast<std::chrono::milliseconds>(opened).count()
              << " ms; /health then took " << took->count() << " ms\n";
}

// Same fixture, its own suite name for filtering.
// The loop reads a bounded number of tasks per TASKS request; the API goes
// on from where it stopped, and hands `next` out when `limit` cut the list.
TEST_F(HttpApi, ListingPagesThroughABoundedScan) {
    start("none", 2);
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) ids.push_back(submit({{"handler", "t.echo"}, {"queue", "parked"}}));
    submit({{"handler", "t.echo"}, {"queue", "other"}});  // newest, filtered out

    auto all = get("/api/v1/tasks?queue=parked");
    ASSERT_EQ(all.status, 200) << all.text;
    ASSERT_EQ(all.body["tasks"].size(), 5u) << "two tasks read per request, yet all five listed";
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(all.body["tasks"][i]["id"], ids[4 - i]);  // newest first
    EXPECT_FALSE(all.body.contains("next"));

    auto page = get("/api/v1/tasks?queue=parked&limit=2");
    ASSERT_EQ(page.body["tasks"].size(), 2u);
    ASSERT_TRUE(page.body.contains("next"));
    auto rest = get("/api/v1/tasks?queue=parked&before=" + page.body["next"].get<std::string>());
    ASSERT_EQ(rest.body["tasks"].size(), 3u) << rest.text;
    EXPECT_EQ(rest.body["tasks"][0]["id"], ids[2]);
    EXPECT_EQ(get("/api/v1/tasks?before=nope").status, 400);
}

// One request reads the index at most 4 times (max_listing_trips): a
// listing the scan budget cuts short answers what it found and a cursor.
TEST_F(HttpApi, AListingStopsAfterFourReadsAndHandsOutACursor) {
    start("none", 1);
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) ids.push_back(submit({{"handler", "t.echo"}, {"queue", "parked"}}));
    auto first = get("/api/v1/tasks?queue=parked");
    ASSERT_EQ(first.status, 200) << first.text;
    ASSERT_EQ(first.body["tasks"].size(), 4u) << "one task read per trip, four trips";
    ASSERT_TRUE(first.body.contains("next"));
    auto rest = get("/api/v1/tasks?queue=parked&before=" + first.body["next"].get<std::string>());
    ASSERT_EQ(rest.body["tasks"].size(), 2u) << rest.text;
    EXPECT_EQ(rest.body["tasks"][1]["id"], ids[0]);
}

// The list honours every filter of TASKS, and refuses a query parameter it
// does not know instead of listing everything.
TEST_F(HttpApi, ListingHonoursHandlerAndTimeAndRefusesUnknownParameters) {
    start("none", 2);
    auto a = submit({{"handler", "t.echo"}, {"queue", "parked"}});
    auto b = submit({{"handler", "t.other@2"}, {"queue", "parked"}});
    auto other = get("/api/v1/tasks?handler=t.other");
    ASSERT_EQ(other.status, 200) << other.text;
    ASSERT_EQ(other.body["tasks"].size(), 1u);
    EXPECT_EQ(other.body["tasks"][0]["id"], b);
    EXPECT_EQ(get("/api/v1/tasks?handler=t.echo&since=1h").body["tasks"].size(), 1u);
    EXPECT_EQ(get("/api/v1/tasks?queue=parked&since=2000-01-01T00:00:00Z").body["tasks"].size(), 2u);
    EXPECT_EQ(get("/api/v1/tasks?queue=parked&until=2000-01-01").body["tasks"].size(), 0u);
    EXPECT_EQ(get("/api/v1/tasks?state=QUEUED&handler=t.echo").body["tasks"][0]["id"], a);
    struct bad {
        std::string query;
        std::string says;
    };
    for (const auto& c : std::vector<bad>{{"hander=t.echo", "unknown query parameter hander"},
                                          {"since=yesterday", "ISO 8601"},
                                          {"handler=t.echo@1", "without @version"},
                                          {"since=1h&until=2h", "before until"}}) {
        auto r = get("/api/v1/tasks?" + c.query);
        EXPECT_EQ(r.status, 400) << c.query;
        EXPECT_EQ(r.body["error_code"], "invalid_argument") << c.query;
        EXPECT_NE(r.body["error"].get<std::string>().find(c.says), std::string::npos) << r.text;
    }
}

class Metrics : public HttpApi {};

TEST_F(Metrics, CountersAndHistogramsMatchTheTasksRun) {
    start();
    fake_worker w(ctx, broker->endpoints().backend, "host:2");
    w.hello({handler("t.ok"), handler("t.bad")}, 8, {"default"});
    for (int i = 0; i < 3; ++i) {
        submit({{"handler", "t.ok"}});
    }
    submit({{"handler", "t.bad"}, {"retries", 0}});
    submit({{"handler", "t.bad@1"}, {"retries", 2}});  // retried once, then succeeds
    int ran = 0;
    bool retried = false;
    for (int turn = 0; turn < 10 && ran < 6; ++turn) {
        for (const auto& item : w.next_dispatch()) {
            ++ran;
            if (item.handler == "t.ok") {
                w.result(item, "ok");
            } else if (item.handler == "t.bad") {
                w.result(item, "fail", "", "permanent");
            } else if (!retried) {
                retried = true;
                w.result(item, "retry", "", "try again");
            } else {
                w.result(item, "ok");
            }
        }
    }
    ASSERT_EQ(ran, 6);
    submit({{"handler", "t.ok"}, {"queue", "parked"}, {"priority", 7}});
    submit({{"handler", "t.ok"}, {"queue", "parked"}, {"priority", 7}});
    submit({{"handler", "t.ok"}, {"queue", "parked"}});

    std::string text;
    ASSERT_TRUE(wait_for(
        [&] {
            text = get("/metrics").text;
            return sample(text, R"(taskmill_tasks_succeeded_total{handler="t.ok"})") == 3 &&
                   sample(text, R"(taskmill_tasks_succeeded_total{handler="t.bad"})") == 1;
        },
        5s))
        << text;
    EXPECT_EQ(sample(text, R"(taskmill_tasks_submitted_total{handler="t.ok"})"), 6);
    EXPECT_EQ(sample(text, R"(taskmill_tasks_submitted_total{handler="t.bad"})"), 2) << "versions fold into the name";
    EXPECT_EQ(sample(text, R"(taskmill_tasks_failed_total{handler="t.bad"})"), 1);
    EXPECT_EQ(sample(text, R"(taskmill_tasks_retried_total{handler="t.bad"})"), 1);
    EXPECT_EQ(sample(text, R"(taskmill_task_run_seconds_count{handler="t.bad"})"), 3) << "every attempt is timed";
    EXPECT_EQ(sample(text, R"(taskmill_task_run_seconds_bucket{handler="t.ok",le="+Inf"})"), 3);
    EXPECT_EQ(sample(text, R"(taskmill_task_queue_wait_seconds_count{handler="t.ok"})"), 3);
    EXPECT_EQ(sample(text, R"(taskmill_queue_depth{queue="parked",priority="7"})"), 2);
    EXPECT_EQ(sample(text, R"(taskmill_queue_depth{queue="parked",priority="0"})"), 1);
    EXPECT_EQ(sample(text, R"(taskmill_tasks{queue="default",state="SUCCEEDED"})"), 4);
    EXPECT_EQ(sample(text, R"(taskmill_tasks{queue="default",state="FAILED"})"), 1);
    EXPECT_EQ(sample(text, "taskmill_workers"), 1);
    EXPECT_EQ(sample(text, "taskmill_worker_slots"), 8);
    EXPECT_EQ(sample(text, "taskmill_worker_free_slots"), 8);
    EXPECT_EQ(sample(text, R"(taskmill_plugin_loaded{plugin="test",version="1.0.0"})"), 1) << text;
    EXPECT_GE(sample(text, "taskmill_store_commit_seconds_count"), 1);
    EXPECT_GT(sample(text, "taskmill_store_used_bytes"), 0);

    auto m = get("/api/v1/metrics");
    ASSERT_EQ(m.status, 200);
    auto per_s = m.body["finished_per_s"];
    ASSERT_EQ(per_s.size(), 300u);
    uint64_t total = 0;
    for (const auto& v : per_s) {
        total += v.get<uint64_t>();
    }
    EXPECT_EQ(total, 5u) << "four successes and one failure in the last five minutes";
}

}  // namespace

// ---- queue control and flow limits ----

TEST_F(HttpApi, QueuesPauseResumeAndLimits) {
    start();
    auto none = get("/api/v1/queues");
    ASSERT_EQ(none.status, 200) << none.text;
    EXPECT_EQ(none.body["queues"], json::array());

    EXPECT_EQ(post("/api/v1/queues/emails/pause", "", reader).status, 403) << "a change needs the write role";
    auto paused = post("/api/v1/queues/emails/pause", "");
    ASSERT_EQ(paused.status, 200) << paused.text;
    EXPECT_EQ(paused.body["name"], "emails");
    EXPECT_EQ(paused.body["paused"], true);

    auto limited = answer(http->Put("/api/v1/queues/emails/limits", auth(writer),
                                    R"({"rate": "6000/m", "burst": 20, "max_running": 8})", "application/json"));
    ASSERT_EQ(limited.status, 200) << limited.text;
    EXPECT_EQ(limited.body["limits"], (json{{"rate", 100.0}, {"burst", 20}, {"max_running", 8}}));
    auto rate_off = post("/api/v1/queues/emails/limits", R"({"rate": 0})");
    ASSERT_EQ(rate_off.status, 200) << rate_off.text;
    EXPECT_EQ(rate_off.body["limits"], (json{{"rate", nullptr}, {"burst", nullptr}, {"max_running", 8}}));

    auto handler_cap = post("/api/v1/handlers/img.resize/limits", R"({"max_running": 4})");
    ASSERT_EQ(handler_cap.status, 200) << handler_cap.text;
    EXPECT_EQ(handler_cap.body["name"], "img.resize");
    EXPECT_EQ(handler_cap.body["limits"]["max_running"], 4);

    for (const char* bad : {R"({"rate": -1})", R"({"rate": "fast"})", R"({"speed": 1})", R"({})", R"([1])",
                            R"({"burst": -2})", R"({"max_running": 1.5})"}) {
        auto r = post("/api/v1/queues/emails/limits", bad);
        EXPECT_EQ(r.status, 400) << bad << " -> " << r.text;
        EXPECT_EQ(r.body["error_code"], "invalid_argument") << r.text;
    }
    EXPECT_EQ(post("/api/v1/handlers/nodot/limits", R"({"rate": 1})").status, 400);
    EXPECT_EQ(post("/api/v1/handlers/a.b@2/limits", R"({"rate": 1})").status, 400);

    auto all = get("/api/v1/queues");
    ASSERT_EQ(all.body["queues"].size(), 1u) << all.text;
    EXPECT_EQ(all.body["queues"][0]["paused"], true);
    EXPECT_EQ(all.body["queues"][0]["limits"]["max_running"], 8);
    auto resumed = post("/api/v1/queues/emails/resume", "");
    ASSERT_EQ(resumed.status, 200) << resumed.text;
    EXPECT_EQ(resumed.body["paused"], false);
    auto stats = get("/api/v1/stats");
    ASSERT_EQ(stats.body["handlers"].size(), 1u) << stats.text;
    EXPECT_EQ(stats.body["handlers"][0]["name"], "img.resize");
}

// ---- the dashboard: login sessions, CSRF, whoami, the event stream ----

namespace {

// "taskmill_session=ID; ..." of a Set-Cookie header -> "taskmill_session=ID".
std::string cookie_pair(const std::string& set_cookie) { return set_cookie.substr(0, set_cookie.find(';')); }

httplib::Headers page_headers(const std::string& cookie, bool csrf = true) {
    httplib::Headers h = {{"Cookie", cookie}};
    if (csrf) {
        h.emplace("X-Taskmill-CSRF", "1");
    }
    return h;
}

}  // namespace

TEST_F(HttpApi, LoginTradesTheTokenForAnHttpOnlySessionCookie) {
    start();
    const httplib::Headers csrf = {{"X-Taskmill-CSRF", "1"}};
    auto no_header = answer(http->Post("/api/v1/login", R"({"token": "r-secret"})", "application/json"));
    EXPECT_EQ(no_header.status, 403) << "a login must come from the page: " << no_header.text;
    EXPECT_EQ(answer(http->Post("/api/v1/login", csrf, R"({"token": "nope"})", "application/json")).status, 401);
    EXPECT_EQ(answer(http->Post("/api/v1/login", csrf, R"({"secret": "r-secret"})", "application/json")).status, 400);

    auto r = http->Post("/api/v1/login", csrf, R"({"token": "r-secret"})", "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(json::parse(r->body), (json{{"role", "read"}, {"name", "viewer"}, {"via", "session"}}));
    auto set_cookie = r->get_header_value("Set-Cookie");
    EXPECT_EQ(set_cookie.rfind("taskmill_session=", 0), 0u) << set_cookie;
    for (const char* attr : {"; HttpOnly", "; SameSite=Strict", "; Path=/"}) {
        EXPECT_NE(set_cookie.find(attr), std::string::npos) << attr << " in " << set_cookie;
    }
    EXPECT_EQ(set_cookie.find(reader), std::string::npos) << "the cookie is not the token";
    auto cookie = cookie_pair(set_cookie);

    auto stats = answer(http->Get("/api/v1/stats", page_headers(cookie, false)));
    EXPECT_EQ(stats.status, 200) << "a read needs no CSRF header: " << stats.text;
    auto me = answer(http->Get("/api/v1/whoami", page_headers(cookie)));
    EXPECT_EQ(me.body, (json{{"role", "read"}, {"name", "viewer"}, {"via", "session"}})) << me.text;
    auto write = answer(http->Post("/api/v1/queues/q/pause", page_headers(cookie), "", "application/json"));
    EXPECT_EQ(write.status, 403) << "a read session may not write: " << write.text;

    auto anonymous = answer(http->Get("/api/v1/whoami"));
    EXPECT_EQ(anonymous.body, (json{{"role", "none"}, {"name", nullptr}, {"via", "anonymous"}})) << anonymous.text;
    auto by_token = answer(http->Get("/api/v1/whoami", auth(writer)));
    EXPECT_EQ(by_token.body, (json{{"role", "write"}, {"name", "ops"}, {"via", "token"}})) << by_token.text;

    auto out = http->Post("/api/v1/logout", page_headers(cookie), "", "application/json");
    ASSERT_TRUE(out);
    EXPECT_EQ(out->status, 200);
    EXPECT_NE(out->get_header_value("Set-Cookie").find("Max-Age=0"), std::string::npos);
    EXPECT_EQ(answer(http->Get("/api/v1/stats", page_headers(cookie))).status, 401) << "the session is gone";
    EXPECT_EQ(answer(http->Get("/api/v1/whoami", page_headers(cookie))).body["role"], "none");
}

// The page's requests (the session cookie) end their connection after the
// answer: cpp-httplib wakes every 10 ms while a keep-alive connection is
// idle, and a browser would keep one open between the page's refreshes.
// A client with a token keeps its connection for the next request.
TEST_F(HttpApi, ThePagesConnectionsCloseAfterEachAnswer) {
    start();
    auto r = http->Post("/api/v1/login", {{"X-Taskmill-CSRF", "1"}}, R"({"token": "r-secret"})", "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << r->body;
    const auto cookie = cookie_pair(r->get_header_value("Set-Cookie"));
    const std::string url = broker->endpoints().http;

    raw_client page(url);
    ASSERT_TRUE(page.connected());
    ASSERT_TRUE(page.send("GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nCookie: " + cookie + "\r\n\r\n"));
    auto first = page.answer(10s);
    EXPECT_EQ(first.rfind("HTTP/1.1 200", 0), 0u) << first;
    EXPECT_NE(first.find("Connection: close"), std::string::npos) << first;
    EXPECT_TRUE(page.closed_within(10s)) << "the page's connection stayed open";

    raw_client script(url);
    ASSERT_TRUE(script.connected());
    const std::string ask =
        std::string("GET /api/v1/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ") + reader + "\r\n\r\n";
    for (int i = 0; i < 3; ++i) {
        ASSERT_TRUE(script.send(ask));
        auto a = script.answer(10s);
        EXPECT_EQ(a.rfind("HTTP/1.1 200", 0), 0u) << "request " << i << " on one connection: " << a;
        EXPECT_EQ(a.find("Connection: close"), std::string::npos) << a;
    }
}

TEST_F(HttpApi, AWriteAuthorisedByTheCookieNeedsTheCsrfHeaderOrItsOrigin) {
    start();
    auto r = http->Post("/api/v1/login", {{"Origin", broker->endpoints().http}}, R"({"token": "w-secret"})",
                        "application/json");
    ASSERT_TRUE(r);
    ASSERT_EQ(r->status, 200) << "a same-origin Origin is enough: " << r->body;
    auto cookie = cookie_pair(r->get_header_value("Set-Cookie"));

    auto forged = answer(http->Post("/api/v1/queues/q/pause", page_headers(cookie, false), "", "application/json"));
    EXPECT_EQ(forged.status, 403) << forged.text;
    auto other_site = page_headers(cookie, false);
    other_site.emplace("Origin", "http://evil.example");
    EXPECT_EQ(answer(http->Post("/api/v1/queues/q/pause", other_site, "", "application/json")).status, 403);
    EXPECT_EQ(get("/api/v1/queues").body["queues"].size(), 0u) << "nothing was paused";

    auto page = answer(http->Post("/api/v1/queues/q/pause", page_headers(cookie), "", "application/json"));
    ASSERT_EQ(page.status, 200) << page.text;
    EXPECT_EQ(page.body["paused"], true);
    auto same_origin = page_headers(cookie, false);
    same_origin.emplace("Origin", broker->endpoints().http);
    EXPECT_EQ(answer(http->Post("/api/v1/queues/q/resume", same_origin, "", "application/json")).status, 200);
    EXPECT_EQ(
        answer(http->Delete("/api/v1/tasks/00000000000000000000000000000000", page_headers(cookie, false))).status, 403)
        << "DELETE is a write too";
}

TEST_F(HttpApi, TheEventStreamSendsTheLoopsEventsAsServerSentEvents) {
    start();
    std::mutex mu;
    std::string text;
    std::atomic<bool> attached{false};
    std::string id;
    httplib::Client stream(broker->endpoints().http);
    stream.set_read_timeout(std::chrono::seconds(20));
    std::thread reader_thread([&] {
        auto r = stream.Get("/api/v1/events", auth(reader), [&](const char* data, std::size_t n) {
            std::lock_guard lock(mu);
            text.append(data, n);
            attached = true;
            return text.find("task.cancelled") == std::string::npos;  // stop once the cancel is seen
        });
        if (r) {
            ADD_FAILURE() << "the stream ended on its own: " << r->status;
        }
    });
    ASSERT_TRUE(wait_for([&] { return attached.load(); }, 5s));
    id = submit({{"handler", "t.echo"}, {"queue", "sse-q"}});
    EXPECT_EQ(post("/api/v1/tasks/" + id + "/cancel", "").status, 200);
    reader_thread.join();
    std::lock_guard lock(mu);
    EXPECT_NE(text.find("retry: 2000"), std::string::npos) << text;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, std::regex(R"(id: (\d+)\ndata: (\{[^\n]*"task.queued"[^\n]*\})\n\n)")))
        << text;
    auto queued = json::parse(m[2].str());
    EXPECT_EQ(queued["id"], id);
    EXPECT_EQ(queued["queue"], "sse-q");
    EXPECT_EQ(queued["state"], "QUEUED");
    EXPECT_NE(text.find(R"("type":"task.cancelled")"), std::string::npos) << text;
}

// A browser accepts gzip and brotli; the stream must not be compressed,
// or the compressor holds the events until kilobytes gather, and holds the
// keep-alives that find a reader gone: every closed tab would keep a
// stream (a thread, a socket, a slot) for its whole life.
TEST_F(HttpApi, TheEventStreamIsNeverCompressedAndNoticesAReaderGone) {
    start();
    const std::string head = std::string("GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ") + reader +
                             "\r\nAccept-Encoding: gzip, deflate, br\r\n\r\n";
    for (int i = 0; i < 9; ++i) {  // one more than the cap of streams
        raw_client c(broker->endpoints().http);
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send(head));
        ASSERT_TRUE(wait_for([&] { return c.received("\r\n\r\n", 100ms); }, 5s)) << "stream " << i;
        EXPECT_NE(c.text().find("200 OK"), std::string::npos) << "stream " << i << ": " << c.text();
        EXPECT_EQ(c.text().find("Content-Encoding"), std::string::npos) << c.text();
        EXPECT_TRUE(c.received("retry: 2000", 5s)) << "the first lines come at once: " << c.text();
        auto id = submit({{"handler", "t.echo"}, {"queue", "sse-plain"}});
        EXPECT_TRUE(c.received(id, 5s)) << "an event comes at once: " << c.text();
    }  // each reader leaves; the broker notices at its next write
}

// Brotli at cpp-httplib's quality (11) cost the broker most of its CPU
// with a dashboard open: a client that accepts it gets gzip instead.
TEST_F(HttpApi, ABrowsersAnswersAreGzipNotBrotli) {
    start();
    for (const std::string path : {"/api/v1/tasks?limit=50", "/"}) {
        raw_client c(broker->endpoints().http);
        ASSERT_TRUE(c.connected());
        ASSERT_TRUE(c.send("GET " + path + " HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer " + reader +
                           "\r\nAccept-Encoding: gzip, deflate, br, zstd\r\nConnection: close\r\n\r\n"));
        auto head = c.answer(5s);
        ASSERT_NE(head.find("200 OK"), std::string::npos) << path << ": " << head;
        EXPECT_NE(head.find("Content-Encoding: gzip"), std::string::npos) << path << ": " << head;
        EXPECT_EQ(head.find("Content-Encoding: br"), std::string::npos) << path << ": " << head;
    }
    raw_client only_br(broker->endpoints().http);
    ASSERT_TRUE(only_br.send(std::string("GET /api/v1/tasks?limit=50 HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ") +
                             reader + "\r\nAccept-Encoding: br\r\nConnection: close\r\n\r\n"));
    auto head = only_br.answer(5s);
    ASSERT_NE(head.find("200 OK"), std::string::npos) << head;
    EXPECT_EQ(head.find("Content-Encoding"), std::string::npos) << "plain, then: " << head;
}

TEST_F(HttpApi, EventStreamsPastTheCapAreRefusedWithJson) {
    start();
    raw_connections streams(broker->endpoints().http);
    const std::string head =
        std::string("GET /api/v1/events HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer ") + reader + "\r\n\r\n";
    ASSERT_EQ(streams.open(8, head, 5s), 8u);
    http_reply refused;
    ASSERT_TRUE(wait_for(
        [&] {
            httplib::Client c(broker->endpoints().http);
            c.set_read_timeout(std::chrono::seconds(5));
            // A stream that opens (200) is dropped at once; a refusal is read.
            int status = 0;
            std::string body;
            c.Get(
                "/api/v1/events", auth(reader),
                [&](const httplib::Response& r) {
                    status = r.status;
                    return r.status != 200;
                },
                [&](const char* data, std::size_t n) {
                    body.append(data, n);
                    return true;
                });
            refused = {status, json::parse(body, nullptr, false), body};
            return status == 503;
        },
        10s));
    EXPECT_NE(refused.text.find("too many event streams"), std::string::npos) << refused.text;
    EXPECT_EQ(get("/health", nullptr).status, 200) << "streams leave threads for the rest";
    EXPECT_EQ(get("/api/v1/stats").status, 200);
}

TEST_F(HttpApi, TaskDetailShowsTheCheckpointSize) {
    start();
    fake_worker w(ctx, broker->endpoints().backend, "host:1");
    w.hello({handler("t.echo")}, 1, {"default"});
    auto id = submit({{"handler", "t.echo"}});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(get("/api/v1/tasks/" + id).body["checkpoint_size"], 0);
    tp::control cp;
    cp.req = 1;
    cp.id = items[0].id;
    cp.data = std::string(1234, 'c');
    w.send(tp::cmd::checkpoint, tp::encode(cp));
    ASSERT_TRUE(w.expect(tp::cmd::checkpoint).has_value());
    auto detail = get("/api/v1/tasks/" + id);
    EXPECT_EQ(detail.body["checkpoint_size"], 1234) << detail.text;
    EXPECT_FALSE(get("/api/v1/tasks").body["tasks"][0].contains("checkpoint_size")) << "not in lists";
}
