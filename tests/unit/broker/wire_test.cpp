// The broker's answers to malformed input, driven over real sockets: frame
// counts, bodies that do not decode, bodies and frames over the limits.
// Every case ends with a request that must still be served.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <taskmill/protocol/peer_text.hpp>

#include "broker_harness.hpp"

using namespace tmtest;
using namespace std::string_literals;

namespace {

class WireTest : public broker_test {};

// Sends `n` frames of "x" as one message.
void send_frames(zmq::socket_t& s, std::size_t n) {
    for (std::size_t i = 0; i < n; ++i) {
        s.send(zmq::str_buffer("x"), i + 1 < n ? zmq::send_flags::sndmore : zmq::send_flags::none);
    }
}

tp::control control_of(const std::optional<received>& m) {
    auto c = m ? tp::decode_control(m->body)
               : taskmill::result<tp::control>(taskmill::fail(taskmill::errc::internal, "none"));
    EXPECT_TRUE(c.has_value());
    return c ? *c : tp::control{};
}

}  // namespace

// ---- frame counts (before: 16 frames or more wedged the loop for good) ----

TEST_F(WireTest, OverlongMessagesOnTheFrontendGetErrorAndTheBrokerServesOn) {
    start();
    client c(ctx_, fe());
    for (std::size_t n : {16u, 17u, 1000u}) {
        send_frames(c.socket(), n);
        auto m = c.recv();
        ASSERT_TRUE(m.has_value()) << n << " frames: no answer";
        EXPECT_EQ(m->command, tp::cmd::error);
        auto rep = tp::decode_reply(m->body);
        ASSERT_TRUE(rep.has_value());
        EXPECT_FALSE(rep->ok);
        EXPECT_EQ(rep->error_code, "invalid_argument");
        EXPECT_NE(rep->error.find("got " + std::to_string(n)), std::string::npos) << rep->error;
        EXPECT_TRUE(c.call(tp::cmd::ping, tp::request{}).ok) << n;
    }
}

TEST_F(WireTest, OverlongMessagesOnTheBackendGetErrorAndTheBrokerServesOn) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:1");
    w.hello({handler("a.b")}, 1);
    peer stranger(ctx_, be(), "stranger");
    for (std::size_t n : {16u, 17u, 1000u}) {
        send_frames(w.socket(), n);
        EXPECT_FALSE(control_of(w.expect(tp::cmd::error)).ok) << n;
        send_frames(stranger.socket(), n);
        auto m = stranger.recv();
        ASSERT_TRUE(m.has_value()) << n;
        EXPECT_EQ(m->command, tp::cmd::error);
    }
    auto ids = c.submit({task("a.b")});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].id, ids.at(0));
}

// ---- errors name the request (before: req 0, the caller timed out) ----

TEST_F(WireTest, AWronglyTypedFieldIsAnsweredWithTheRequestsReq) {
    start();
    client c(ctx_, fe());
    // {"req": 7, "tasks": [{"priority": "high"}]}
    c.send(tp::cmd::submit, "\x82\xa3req\x07\xa5tasks\x91\x81\xa8priority\xa4high"s);
    auto m = c.recv();
    ASSERT_TRUE(m.has_value());
    auto rep = tp::decode_reply(m->body);
    ASSERT_TRUE(rep.has_value());
    EXPECT_EQ(rep->req, 7u);
    EXPECT_EQ(rep->error_code, "invalid_argument");
    EXPECT_NE(rep->error.find("priority"), std::string::npos) << rep->error;
}

TEST_F(WireTest, ABodyOverTheLimitIsAnsweredWithTheRequestsReq) {
    cfg_.max_body_bytes = 1024;
    start();
    client c(ctx_, fe());
    tp::request rq;
    rq.tasks = {task("a.b")};
    rq.tasks[0].payload = std::string(2000, 'x');
    auto rep = c.call(tp::cmd::submit, rq);  // fails the test if no reply names its req
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.error_code, "too_large");
}

TEST_F(WireTest, CheckpointAndSpawnErrorsCarryTheirReq) {
    cfg_.max_body_bytes = 1024;
    start();
    fake_worker w(ctx_, be(), "node:1");
    w.hello({handler("a.b")}, 1);
    // {"req": 5, "id": 1}: a wrongly typed id.
    w.send(tp::cmd::checkpoint, "\x82\xa3req\x05\xa2id\x01"s);
    auto cp = control_of(w.expect(tp::cmd::checkpoint));
    EXPECT_EQ(cp.req, 5u);
    EXPECT_FALSE(cp.ok);
    EXPECT_NE(cp.error.find("id"), std::string::npos) << cp.error;
    // {"req": 6, "tasks": 1}
    w.send(tp::cmd::spawn, "\x82\xa3req\x06\xa5tasks\x01"s);
    auto sp = control_of(w.expect(tp::cmd::spawn));
    EXPECT_EQ(sp.req, 6u);
    EXPECT_FALSE(sp.ok);
    // A checkpoint over the body limit: answered as CHECKPOINT with its req.
    tp::control big;
    big.req = 9;
    big.id = std::string(32, 'a');
    big.data = std::string(4000, 'x');
    w.send(tp::cmd::checkpoint, tp::encode(big));
    auto over = control_of(w.expect(tp::cmd::checkpoint));
    EXPECT_EQ(over.req, 9u);
    EXPECT_FALSE(over.ok);
    EXPECT_NE(over.error.find("limit"), std::string::npos) << over.error;
}

TEST_F(WireTest, MalformedResultsProgressAndCreditGetError) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:1");
    w.hello({handler("a.b")}, 1);
    for (auto cmd : {tp::cmd::results, tp::cmd::progress, tp::cmd::credit}) {
        w.send(cmd, "\x01"s);  // not a map
        auto err = control_of(w.expect(tp::cmd::error));
        EXPECT_FALSE(err.ok) << cmd;
        EXPECT_FALSE(err.error.empty()) << cmd;
    }
    tp::control too_many;
    too_many.slots = 1u << 30;
    w.send(tp::cmd::credit, tp::encode(too_many));
    EXPECT_NE(control_of(w.expect(tp::cmd::error)).error.find("slots"), std::string::npos);
    // Still registered, still served.
    c.submit({task("a.b")});
    EXPECT_EQ(w.next_dispatch().size(), 1u);
}

// ---- peer text in the log (before: raw, unbounded, one line per event) ----

TEST_F(WireTest, PeerTextInTheLogIsEscapedBoundedAndRateLimited) {
    std::ostringstream text;
    auto log = std::make_shared<spdlog::logger>("wire-test", std::make_shared<spdlog::sinks::ostream_sink_mt>(text));
    log->set_level(spdlog::level::debug);
    log->set_pattern("[%l] %v");
    {
        tb::broker b(cfg_, log, &ctx_);
        std::thread loop([&] { b.run(); });
        fake_worker evil(ctx_, b.endpoints().backend, "evil\n[critical] fatal: forged");
        evil.hello({handler("a.b")}, 1);
        peer supervisor(ctx_, b.endpoints().backend, "host:supervisor");
        tp::control refused;
        refused.id = "host\n[critical] fatal";
        refused.note = "refused";
        refused.error = std::string(1u << 20, 'e');
        for (int i = 0; i < 10; ++i) {
            supervisor.send(tp::cmd::plugins, tp::encode(refused));
        }
        client c(ctx_, b.endpoints().frontend);
        for (int i = 0; i < 1000; ++i) {
            c.send(tp::cmd::submit, "\x01"s);
        }
        // Answered in order: once the PING is, every message above was read.
        EXPECT_TRUE(c.call(tp::cmd::ping, tp::request{}, 10s).ok);
        b.stop();
        loop.join();
    }
    auto all = text.str();
    std::istringstream lines(all);
    std::string line;
    int malformed = 0;
    while (std::getline(lines, line)) {
        EXPECT_EQ(line.rfind("[critical]", 0), std::string::npos) << "forged line: " << line;
        EXPECT_LT(line.size(), 2000u) << line.substr(0, 200);
        malformed += line.find("malformed") != std::string::npos ? 1 : 0;
    }
    EXPECT_NE(all.find("worker=evil\\x0a[critical] fatal: forged joined"), std::string::npos) << all.substr(0, 2000);
    EXPECT_NE(all.find("host=host\\x0a[critical] fatal refused"), std::string::npos) << all.substr(0, 2000);
    EXPECT_LT(all.size(), 40000u);  // ten 1 MiB errors and 1000 bad requests
    EXPECT_EQ(malformed, 1) << all.substr(0, 4000);
}

// ---- payload and result are msgpack or absent (before: an empty bin) ----

TEST_F(WireTest, NoPayloadIsNilAndNoResultIsAbsent) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "node:1");
    w.hello({handler("a.b")}, 2);
    auto spec = task("a.b");
    spec.payload.clear();
    ASSERT_EQ(c.submit({spec, spec}).size(), 2u);
    std::vector<tp::work_item> items;
    while (items.size() < 2) {
        auto more = w.next_dispatch();
        ASSERT_FALSE(more.empty());
        items.insert(items.end(), more.begin(), more.end());
    }
    EXPECT_EQ(items[0].payload, "\xc0");
    EXPECT_EQ(items[1].payload, "\xc0");
    w.result(items[0], "ok", "");                // the handler set no result
    w.result(items[1], "ok", items[1].payload);  // an echo
    auto none = c.status(items[0].id, 5000);
    EXPECT_EQ(none.state, "SUCCEEDED");
    EXPECT_FALSE(none.result.has_value());
    auto echoed = c.status(items[1].id, 5000);
    EXPECT_EQ(echoed.state, "SUCCEEDED");
    EXPECT_EQ(echoed.result, std::optional<std::string>("\xc0"));
}

// ---- frame size limit (before: none by default) ----

namespace {

// A raw TCP connection speaking just enough ZMTP 3.0 (NULL mechanism) to
// declare frames of any size, which no ZeroMQ socket would send.
class raw_zmtp {
public:
    explicit raw_zmtp(const std::string& endpoint) {
        auto colon = endpoint.rfind(':');
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(static_cast<uint16_t>(std::stoi(endpoint.substr(colon + 1))));
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        EXPECT_EQ(::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
        std::string greeting =
            "\xff"s + std::string(8, '\0') + "\x7f\x03\x00"s + "NULL" + std::string(16, '\0') + std::string(32, '\0');
        write(greeting);
        std::string ready =
            "\x05READY\x0bSocket-Type\x00\x00\x00\x06"
            "DEALER"s;
        write("\x04"s + static_cast<char>(ready.size()) + ready);
    }
    ~raw_zmtp() { ::close(fd_); }
    raw_zmtp(const raw_zmtp&) = delete;
    raw_zmtp& operator=(const raw_zmtp&) = delete;

    void write(const std::string& bytes) {
        EXPECT_EQ(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL), static_cast<ssize_t>(bytes.size()));
    }

    // One short frame; `more` says another follows.
    void frame(const std::string& body, bool more) {
        write(std::string(1, more ? '\x01' : '\x00') + static_cast<char>(body.size()) + body);
    }

    // Reads until `needle` arrived or the peer closed (returns what came).
    // An empty needle reads until the close.
    std::string read_until(const std::string& needle, std::chrono::milliseconds timeout, bool& closed) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        closed = false;
        while (needle.empty() || got_.find(needle) == std::string::npos) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            pollfd p{fd_, POLLIN, 0};
            if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0) {
                break;
            }
            char buf[4096];
            auto n = ::recv(fd_, buf, sizeof buf, 0);
            if (n <= 0) {
                closed = true;
                break;
            }
            got_.append(buf, static_cast<std::size_t>(n));
        }
        return got_;
    }

private:
    int fd_ = -1;
    std::string got_;
};

}  // namespace

TEST_F(WireTest, AFrameDeclaredFarOverTheBodyLimitDropsTheConnectionByDefault) {
    cfg_.frontend = "tcp://127.0.0.1:0";
    start();
    raw_zmtp raw(fe());
    // The handshake works (libzmq takes frames only once it has sent its
    // READY: wait for it), and a PING is answered.
    bool closed = false;
    ASSERT_NE(raw.read_until("ROUTER", 5s, closed).find("ROUTER"), std::string::npos);
    tp::request rq;
    rq.req = 1;
    raw.frame(std::string(tp::signature), true);
    raw.frame(std::string(tp::cmd::ping), true);
    raw.frame(tp::encode(rq), false);
    auto got = raw.read_until(std::string(tp::cmd::ping), 5s, closed);
    ASSERT_FALSE(closed) << "closed after " << got.size() << " bytes: " << tp::printable(got);
    // A frame declaring 1 GiB (long-frame header, 8-byte size, no data).
    raw.write("\x02\x00\x00\x00\x00\x40\x00\x00\x00"s);
    raw.read_until("", 5s, closed);
    EXPECT_TRUE(closed) << "the broker kept a connection that declared a 1 GiB frame";
    client c(ctx_, fe());
    EXPECT_TRUE(c.call(tp::cmd::ping, tp::request{}).ok);
}
