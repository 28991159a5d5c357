// Every failure of the broker's HTTP endpoint answers JSON {"error_code",
// "error"}: no route, a method the path lacks, a body over the limit
// whatever its type, malformed JSON, tokens, an exception in a handler, the
// long-poll cap, an error from the loop. And JSON bodies are read whatever
// their Content-Type, or with no Content-Length at all.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <httplib.h>
#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "broker_harness.hpp"
#include "http/http_router.hpp"

namespace {

using namespace tmtest;
using nlohmann::json;

constexpr const char* writer = "w-secret";
constexpr const char* reader = "r-secret";
constexpr std::size_t body_limit = 64 * 1024;

int port_of(const std::string& url) { return std::stoi(url.substr(url.rfind(':') + 1)); }

// Writes `request` on a fresh loopback connection and reads until the
// server closes it or `timeout` passes; returns what came back.
std::string raw_exchange(int port, const std::string& request, std::chrono::milliseconds timeout) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    std::string out;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
        ::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        char buf[4096];
        while (std::chrono::steady_clock::now() < deadline) {
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, 50) <= 0) continue;
            auto n = ::recv(fd, buf, sizeof buf, 0);
            if (n <= 0) break;
            out.append(buf, static_cast<std::size_t>(n));
            if (out.find("\r\n\r\n") != std::string::npos && out.back() == '\n') break;  // one JSON answer read
        }
    }
    ::close(fd);
    return out;
}

class HttpErrors : public ::testing::Test {
protected:
    zmq::context_t ctx{1};
    temp_dir dir;
    std::unique_ptr<running_broker> broker;
    std::unique_ptr<httplib::Client> http;

    void SetUp() override {
        auto cfg = test_config(dir.path.string());
        cfg.http = "127.0.0.1:0";
        cfg.http_tokens = {std::string("ops:write:") + writer, std::string("viewer:read:") + reader};
        cfg.max_body_bytes = body_limit;
        broker = std::make_unique<running_broker>(ctx, cfg);
        http = std::make_unique<httplib::Client>(broker->endpoints().http);
        http->set_read_timeout(std::chrono::seconds(20));
    }

    static httplib::Headers auth(const char* token) {
        return token == nullptr ? httplib::Headers{}
                                : httplib::Headers{{"Authorization", std::string("Bearer ") + token}};
    }

    // The answer's JSON error; fails the test unless it is one.
    static json error_of(const httplib::Result& r, int status) {
        if (!r) {
            ADD_FAILURE() << "no answer: " << httplib::to_string(r.error());
            return {};
        }
        EXPECT_EQ(r->status, status) << r->body;
        EXPECT_EQ(r->get_header_value("Content-Type"), "application/json") << r->status;
        auto j = json::parse(r->body, nullptr, false);
        EXPECT_TRUE(j.is_object() && j["error_code"].is_string() && j["error"].is_string()) << r->body;
        return j.is_object() ? j : json::object();
    }

    std::string submit(const json& task) {
        auto r = http->Post("/api/v1/tasks", auth(writer), task.dump(), "application/json");
        EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
        return r && r->status == 201 ? json::parse(r->body)["ids"][0].get<std::string>() : std::string();
    }
};

TEST_F(HttpErrors, NoRouteIs404Json) {
    EXPECT_EQ(error_of(http->Get("/nope", auth(reader)), 404)["error_code"], "not_found");
    auto e = error_of(http->Post("/api/v1/nothing", auth(writer), "{}", "application/json"), 404);
    EXPECT_EQ(e["error_code"], "not_found");
    EXPECT_NE(e.value("error", "").find("POST /api/v1/nothing"), std::string::npos) << e.dump();
    EXPECT_EQ(error_of(http->Get("/api/v1/tasks/0123456789abcdef0123456789abcdef", auth(reader)), 404)["error_code"],
              "not_found")
        << "a route's own 404 is kept";
}

TEST_F(HttpErrors, WrongMethodIs405WithAllow) {
    auto r = http->Delete("/api/v1/stats", auth(writer));
    EXPECT_EQ(error_of(r, 405)["error_code"], "method_not_allowed");
    EXPECT_EQ(r->get_header_value("Allow"), "GET, HEAD");
    r = http->Put("/api/v1/tasks", auth(writer), "{}", "application/json");
    EXPECT_EQ(error_of(r, 405)["error_code"], "method_not_allowed");
    EXPECT_EQ(r->get_header_value("Allow"), "POST, GET, HEAD");
    r = http->Get("/api/v1/tasks/0123456789abcdef0123456789abcdef/cancel", auth(reader));
    EXPECT_EQ(error_of(r, 405)["error_code"], "method_not_allowed");
    EXPECT_EQ(r->get_header_value("Allow"), "POST");
}

TEST_F(HttpErrors, BodyOverTheLimitIs413JsonWhateverTheContentType) {
    const std::string big = R"({"handler": "t.echo", "payload": ")" + std::string(body_limit, 'x') + "\"}";
    for (const char* type :
         {"application/json", "application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=xyz"}) {
        EXPECT_EQ(error_of(http->Post("/api/v1/tasks", auth(writer), big, type), 413)["error_code"], "too_large")
            << type;
        EXPECT_EQ(error_of(http->Post("/api/v1/nothing", auth(writer), big, type), 413)["error_code"], "too_large")
            << type << " on no route";
    }
    EXPECT_EQ(json::parse(http->Get("/api/v1/stats", auth(reader))->body)["counters"].value("submitted", 0), 0);
}

TEST_F(HttpErrors, JsonBodiesAreReadWhateverTheContentType) {
    // Over 8 KiB: httplib alone refuses a form body that size.
    const json task = {{"handler", "t.echo"}, {"queue", "parked"}, {"payload", std::string(20000, 'y')}};
    for (const char* type : {"application/json", "application/json; charset=utf-8", "text/plain",
                             "application/x-www-form-urlencoded", ""}) {
        auto r = http->Post("/api/v1/tasks", auth(writer), task.dump(), type);
        ASSERT_TRUE(r);
        EXPECT_EQ(r->status, 201) << "'" << type << "': " << r->body;
    }
    // A form body with '&' and '=' in it stays one JSON text.
    auto r = http->Post("/api/v1/tasks", auth(writer), R"({"handler": "t.echo", "payload": "a=1&b=2"})",
                        "application/x-www-form-urlencoded");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    auto id = json::parse(r->body)["ids"][0].get<std::string>();
    EXPECT_EQ(json::parse(http->Get("/api/v1/tasks/" + id, auth(reader))->body)["payload"], "a=1&b=2");
    // Multipart is not JSON: a JSON 400, not a split into parts.
    const std::string part = "--xyz\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n1\r\n--xyz--\r\n";
    EXPECT_EQ(error_of(http->Post("/api/v1/tasks", auth(writer), part, "multipart/form-data; boundary=xyz"),
                       400)["error_code"],
              "invalid_argument");
}

TEST_F(HttpErrors, APostWithoutContentLengthHasAnEmptyBody) {
    auto id = submit({{"handler", "t.echo"}, {"queue", "parked"}});
    // What `curl -X POST URL` sends: no Content-Length, no body.
    auto started = std::chrono::steady_clock::now();
    auto answer = raw_exchange(port_of(broker->endpoints().http),
                               "POST /api/v1/tasks/" + id + "/cancel HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                   writer + "\r\nConnection: close\r\n\r\n",
                               10s);
    EXPECT_EQ(answer.rfind("HTTP/1.1 200", 0), 0u) << answer;
    EXPECT_LT(std::chrono::steady_clock::now() - started, 3s) << "answered without waiting for the read timeout";
    EXPECT_EQ(json::parse(http->Get("/api/v1/tasks/" + id, auth(reader))->body)["state"], "CANCELLED");
    auto retried = raw_exchange(port_of(broker->endpoints().http),
                                "POST /api/v1/tasks/" + id + "/retry HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " +
                                    writer + "\r\nConnection: close\r\n\r\n",
                                10s);
    EXPECT_EQ(retried.rfind("HTTP/1.1 200", 0), 0u) << retried;
}

TEST_F(HttpErrors, BadJsonTokensAndLoopErrorsAreJson) {
    EXPECT_EQ(error_of(http->Post("/api/v1/tasks", auth(writer), "{nope", "application/json"), 400)["error_code"],
              "invalid_argument");
    EXPECT_EQ(error_of(http->Get("/api/v1/stats", auth(nullptr)), 401)["error_code"], "unauthorized");
    EXPECT_EQ(error_of(http->Get("/metrics", auth("wrong")), 401)["error_code"], "unauthorized");
    EXPECT_EQ(error_of(http->Post("/api/v1/tasks", auth(reader), "{}", "application/json"), 403)["error_code"],
              "forbidden");
    // The loop's own refusal: retrying a task that is not finished.
    auto id = submit({{"handler", "t.echo"}, {"queue", "parked"}});
    EXPECT_EQ(
        error_of(http->Post("/api/v1/tasks/" + id + "/retry", auth(writer), "", "application/json"), 409)["error_code"],
        "conflict");
}

// The hooks the broker installs, on a server with a route that throws.
TEST(HttpRouter, AnExceptionInAHandlerIs500Json) {
    taskmill::broker::http::router srv;
    taskmill::broker::http::answer_failures_in_json(srv, spdlog::null_logger_mt("http-router-test"), 1024);
    srv.Get("/boom", [](const httplib::Request&, httplib::Response&) { throw std::runtime_error("kaboom"); });
    int port = srv.bind_to_any_port("127.0.0.1");
    ASSERT_GT(port, 0);
    std::thread serving([&] { srv.listen_after_bind(); });
    httplib::Client c("127.0.0.1", port);
    auto r = c.Get("/boom");
    srv.stop();
    serving.join();
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 500);
    EXPECT_EQ(r->get_header_value("Content-Type"), "application/json");
    auto j = json::parse(r->body, nullptr, false);
    EXPECT_EQ(j["error_code"], "internal") << r->body;
    EXPECT_NE(j.value("error", "").find("kaboom"), std::string::npos) << r->body;
}

}  // namespace
