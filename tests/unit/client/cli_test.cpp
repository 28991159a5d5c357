// The taskmill binary: exit codes, usage errors, and output against a fake
// broker.
#include <sys/wait.h>

#include <array>
#include <cstdio>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fake_broker.hpp"

namespace {

using taskmill::test::fake_broker;
using taskmill::test::outgoing_msg;
namespace protocol = taskmill::protocol;

struct run_result {
    int code = -1;
    std::string out;  // stdout
    std::string err;  // stderr
};

std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) {
        q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    }
    return q + "'";
}

std::string slurp(const std::string& path) {
    std::string out;
    if (FILE* f = std::fopen(path.c_str(), "r")) {
        std::array<char, 4096> buf{};
        std::size_t n = 0;
        while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) {
            out.append(buf.data(), n);
        }
        std::fclose(f);
    }
    return out;
}

run_result run_cli(const std::vector<std::string>& args) {
    char err_path[] = "/tmp/taskmill-cli-err-XXXXXX";
    int fd = mkstemp(err_path);
    EXPECT_GE(fd, 0);
    ::close(fd);
    std::string cmd = quote(TASKMILL_CLI);
    for (const auto& a : args) {
        cmd += " " + quote(a);
    }
    cmd += " 2>" + std::string(err_path);
    run_result r;
    FILE* p = popen(cmd.c_str(), "r");
    EXPECT_NE(p, nullptr);
    std::array<char, 4096> buf{};
    std::size_t n = 0;
    while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) {
        r.out.append(buf.data(), n);
    }
    int status = pclose(p);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    r.err = slurp(err_path);
    std::remove(err_path);
    return r;
}

std::string dead_endpoint() {
    zmq::context_t ctx;
    zmq::socket_t probe(ctx, zmq::socket_type::router);
    probe.bind("tcp://127.0.0.1:*");
    return probe.get(zmq::sockopt::last_endpoint);
}

std::string msgpack_of(const nlohmann::json& j) {
    auto b = nlohmann::json::to_msgpack(j);
    return {b.begin(), b.end()};
}

TEST(Cli, UsageErrorsExitTwo) {
    EXPECT_EQ(run_cli({}).code, 2);
    EXPECT_EQ(run_cli({"frobnicate"}).code, 2);
    EXPECT_EQ(run_cli({"submit"}).code, 2);
    EXPECT_EQ(run_cli({"status"}).code, 2);
    EXPECT_EQ(run_cli({"--bogus", "stats"}).code, 2);
    EXPECT_EQ(run_cli({"submit", "echo.echo", "--priority", "x"}).code, 2);
    EXPECT_EQ(run_cli({"submit", "echo.echo", "--delay", "-1"}).code, 2);
    EXPECT_EQ(run_cli({"cancel"}).code, 2);
    EXPECT_EQ(run_cli({"workflow", "submit", "f.json"}).code, 2);
}

TEST(Cli, InvalidPayloadIsRejectedBeforeAnythingIsSent) {
    fake_broker broker([](const std::string&, const protocol::request&, std::vector<outgoing_msg>&) {});
    auto r = run_cli({"--broker", broker.endpoint(), "submit", "echo.echo", "--payload", "{\"a\": }"});
    EXPECT_EQ(r.code, 2);
    EXPECT_NE(r.err.find("invalid --payload JSON"), std::string::npos) << r.err;
    EXPECT_TRUE(broker.received().empty());
}

TEST(Cli, UnreachableBrokerExitsThree) {
    auto start = std::chrono::steady_clock::now();
    auto r = run_cli({"--broker", dead_endpoint(), "--timeout", "0.3", "ping"});
    EXPECT_EQ(r.code, 3);
    EXPECT_NE(r.err.find("unavailable"), std::string::npos) << r.err;
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(5));
    EXPECT_EQ(run_cli({"--broker", dead_endpoint(), "--timeout", "0.2", "--json", "status", "x"}).code, 3);
}

// A broker that knows "ok1" (SUCCEEDED) and "bad1" (FAILED); submits get
// id "new1" and an immediate DONE.
void scripted(const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
    auto m = fake_broker::reply_to(cmd, req);
    protocol::task_info t;
    t.handler = "echo.echo";
    t.queue = "default";
    t.attempts = 1;
    t.created_ms = 1'700'000'000'000;
    t.finished_ms = 1'700'000'000'250;
    t.tags = {"x"};
    if (cmd == protocol::cmd::submit) {
        m.body.ids = {"new1"};
        out.push_back(m);
        outgoing_msg done{std::string(protocol::cmd::done), {}};
        t.id = "new1";
        t.state = "SUCCEEDED";
        t.result = req.tasks.at(0).payload;  // an echo
        done.body.task = t;
        out.push_back(done);
        return;
    }
    if (cmd == protocol::cmd::status && (req.id == "ok1" || req.id == "bad1")) {
        t.id = req.id;
        t.state = req.id == "ok1" ? "SUCCEEDED" : "FAILED";
        if (req.id == "ok1") {
            t.result = msgpack_of({{"sum", 3}});
        } else {
            t.error = "permanent failure";
        }
        m.body.task = t;
    } else {
        m.body.ok = false;
        m.body.error_code = "not_found";
        m.body.error = "no task " + req.id;
    }
    out.push_back(m);
}

TEST(Cli, JsonStatusPrintsOneObject) {
    fake_broker broker(scripted);
    auto r = run_cli({"--broker", broker.endpoint(), "--json", "status", "ok1"});
    ASSERT_EQ(r.code, 0) << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["id"], "ok1");
    EXPECT_EQ(j["state"], "SUCCEEDED");
    EXPECT_EQ(j["result"]["sum"], 3);
    EXPECT_EQ(j["created"], "2023-11-14T22:13:20.000Z");
    EXPECT_EQ(j["finished"], "2023-11-14T22:13:20.250Z");
    EXPECT_TRUE(j["started"].is_null());
    EXPECT_TRUE(j["error"].is_null());
    EXPECT_TRUE(j["parent"].is_null());
    EXPECT_EQ(j["tags"], nlohmann::json::array({"x"}));
}

TEST(Cli, ResultExitCodes) {
    fake_broker broker(scripted);
    auto ok = run_cli({"--broker", broker.endpoint(), "result", "ok1"});
    EXPECT_EQ(ok.code, 0);
    EXPECT_EQ(nlohmann::json::parse(ok.out)["sum"], 3);
    auto bad = run_cli({"--broker", broker.endpoint(), "result", "bad1"});
    EXPECT_EQ(bad.code, 1);
    EXPECT_NE(bad.err.find("permanent failure"), std::string::npos) << bad.err;
    EXPECT_EQ(run_cli({"--broker", broker.endpoint(), "status", "missing"}).code, 2);
}

TEST(Cli, SubmitPrintsIdAndWaitPrintsStatus) {
    fake_broker broker(scripted);
    auto plain = run_cli({"--broker", broker.endpoint(), "submit", "echo.echo", "--payload", "{\"n\": 7}", "--tag", "a",
                          "--tag", "b", "--timeout", "2.5", "--priority", "4"});
    ASSERT_EQ(plain.code, 0) << plain.err;
    EXPECT_EQ(plain.out, "new1\n");
    const auto spec = broker.received().back().second.tasks.at(0);
    EXPECT_EQ(spec.tags, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(spec.timeout_ms, 2500);
    EXPECT_EQ(spec.priority, 4);
    EXPECT_EQ(spec.payload, msgpack_of({{"n", 7}}));

    auto json = run_cli({"--broker", broker.endpoint(), "--json", "submit", "echo.echo"});
    ASSERT_EQ(json.code, 0);
    EXPECT_EQ(nlohmann::json::parse(json.out), (nlohmann::json{{"id", "new1"}}));

    auto waited =
        run_cli({"--broker", broker.endpoint(), "--json", "submit", "echo.echo", "--payload", "[1,2]", "--wait"});
    ASSERT_EQ(waited.code, 0) << waited.err;
    auto j = nlohmann::json::parse(waited.out);
    EXPECT_EQ(j["state"], "SUCCEEDED");
    EXPECT_EQ(j["result"], nlohmann::json::array({1, 2}));
}

}  // namespace
