// What one peer can make the broker hold, against a real broker process:
// replies a client never reads, and connections past the open-files limit.
#include "harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iostream>
#include <sstream>

#include <gtest/gtest.h>

#include <taskmill/protocol/frame.hpp>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

// Under AddressSanitizer the broker's heap is ASan's: freed memory waits in
// its quarantine and malloc_trim does not apply, so RSS says nothing about
// what the broker holds.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool rss_tells_what_is_held = false;
#else
constexpr bool rss_tells_what_is_held = true;
#endif

// VmRSS of a process, in KiB.
uint64_t rss_kib(int pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("VmRSS:", 0) == 0) {
            return std::stoull(line.substr(6));
        }
    }
    return 0;
}

// utime + stime of a process, in seconds.
double cpu_seconds(int pid) {
    auto text = read_file("/proc/" + std::to_string(pid) + "/stat");
    std::istringstream in(text.substr(text.rfind(')') + 2));  // the name may hold spaces
    std::string field;
    uint64_t utime = 0;
    uint64_t stime = 0;
    for (int i = 3; i <= 15 && in >> field; ++i) {
        if (i == 14) utime = std::stoull(field);
        if (i == 15) stime = std::stoull(field);
    }
    return static_cast<double>(utime + stime) / static_cast<double>(::sysconf(_SC_CLK_TCK));
}

// A request from a DEALER that waits for room rather than drop it.
void send_blocking(zmq::socket_t& s, std::string_view command, const std::string& body) {
    (void)s.send(zmq::buffer(tp::signature), zmq::send_flags::sndmore);
    (void)s.send(zmq::buffer(command), zmq::send_flags::sndmore);
    (void)s.send(zmq::buffer(body), zmq::send_flags::none);
}

int tcp_port(const std::string& endpoint) { return std::stoi(endpoint.substr(endpoint.rfind(':') + 1)); }

std::size_t count(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

class Resources : public ::testing::Test {
protected:
    temp_dir tmp;
};

// A client that sends 100,000 requests and reads none of the replies: the
// broker keeps at most --client-hwm of them and goes on serving others.
TEST_F(Resources, RepliesAClientNeverReadsAreBounded) {
    broker_process broker(tmp.path() / "data");
    wire_client other(broker.ep().frontend);
    auto ids = other.submit({task("nobody.serves")});  // stays queued
    ASSERT_EQ(ids.size(), 1u);
    auto id = ids[0];
    ASSERT_TRUE(other.status(id).has_value());
    const auto before = rss_kib(broker.proc().pid());

    zmq::context_t ctx(1);
    zmq::socket_t flood(ctx, zmq::socket_type::dealer);
    flood.set(zmq::sockopt::linger, 0);
    flood.set(zmq::sockopt::rcvhwm, 1);  // keep the replies in the broker, not here
    flood.set(zmq::sockopt::rcvbuf, 4096);
    flood.connect(broker.ep().frontend);
    constexpr int n = 100000;
    tp::request rq;
    rq.id = id;
    for (int i = 1; i <= n; ++i) {
        rq.req = static_cast<uint64_t>(i);
        send_blocking(flood, tp::cmd::status, tp::encode(rq));
    }
    // Its last request cancels the task: once that shows, all were handled.
    tp::request cancel;
    cancel.id = id;
    cancel.req = n + 1;
    send_blocking(flood, tp::cmd::cancel, tp::encode(cancel));
    ASSERT_TRUE(wait_until(
        [&] {
            auto t = other.status(id);
            return t && t->state == "CANCELLED";
        },
        120s))
        << "the flood was not handled in time";
    const auto after = rss_kib(broker.proc().pid());
    const auto grown = after > before ? after - before : 0;
    std::cout << "broker RSS " << before << " KiB -> " << after << " KiB (+" << grown << " KiB) after " << n
              << " unread replies\n";
    if (rss_tells_what_is_held) {
        EXPECT_LT(grown, 20u * 1024) << "the broker holds the unread replies";
    }
    auto t0 = std::chrono::steady_clock::now();
    EXPECT_TRUE(other.status(id).has_value());
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 2s) << "other clients wait behind the flood";
}

// At the open-files limit the broker closes the connections it cannot
// accept, says so once, keeps serving its clients and does not spin.
TEST_F(Resources, AtTheOpenFilesLimitTheBrokerLogsOnceKeepsServingAndDoesNotSpin) {
    broker_process broker(tmp.path() / "data");
    const int pid = broker.proc().pid();
    wire_client existing(broker.ep().frontend);
    auto ids = existing.submit({task("nobody.serves")});
    ASSERT_EQ(ids.size(), 1u);

    rlimit low{256, 256};
    ASSERT_EQ(::prlimit(pid, RLIMIT_NOFILE, &low, nullptr), 0) << std::strerror(errno);
    std::vector<int> fds;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(tcp_port(broker.ep().frontend)));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (int i = 0; i < 1100; ++i) {
        int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        ASSERT_GE(fd, 0);
        fds.push_back(fd);
        (void)::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    }
    ASSERT_TRUE(wait_until(
        [&] { return broker.proc().log_text().find("cannot accept connections") != std::string::npos; }, 10s))
        << broker.proc().log_text();

    // Over a two-second window: the existing client is served, the CPU idles.
    const double cpu0 = cpu_seconds(pid);
    const auto t0 = std::chrono::steady_clock::now();
    int answered = 0;
    while (std::chrono::steady_clock::now() - t0 < 2s) {
        auto t = existing.status(ids[0], 100ms);  // a long-poll that ends after 100 ms: paces the loop
        answered += t && t->state == "QUEUED" ? 1 : 0;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double busy = (cpu_seconds(pid) - cpu0) / wall;
    std::cout << "broker CPU at the limit: " << static_cast<int>(busy * 100) << "% of a core; " << answered
              << " requests answered\n";
    EXPECT_GE(answered, 10);
    EXPECT_LT(busy, 0.5) << "the broker spins at the open-files limit";
    auto log = broker.proc().log_text();
    EXPECT_EQ(count(log, "cannot accept connections"), 1u) << log;
    EXPECT_NE(log.find("open-files limit is 256"), std::string::npos) << log;
    for (int fd : fds) ::close(fd);

    // Those connections closed, their descriptors are free again: ZeroMQ
    // takes the listening socket back and a new client is served.
    wire_client late(broker.ep().frontend);
    EXPECT_TRUE(wait_until(
        [&] {
            auto t = late.status(ids[0], 100ms);
            return t && t->state == "QUEUED";
        },
        10s))
        << "a client connecting after the limit was raised is not served";
}

std::size_t open_fds(int pid) {
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) ++n;
    return n;
}

// Idle connections cost about 27 KiB each inside libzmq; once they close,
// the broker gives that memory back (glibc keeps it unless asked).
TEST_F(Resources, MemoryOfClosedConnectionsIsGivenBack) {
    if (!rss_tells_what_is_held) {
        GTEST_SKIP() << "RSS is ASan's quarantine here, not the broker's heap";
    }
    broker_process broker(tmp.path() / "data");
    const int pid = broker.proc().pid();
    wire_client warm(broker.ep().frontend);
    ASSERT_TRUE(warm.call(tp::cmd::stats, {}).has_value());
    const auto base = rss_kib(pid);
    const auto fds = open_fds(pid);
    constexpr std::size_t n = 600;
    zmq::context_t ctx(1);
    ctx.set(zmq::ctxopt::max_sockets, static_cast<int>(n + 64));
    std::vector<zmq::socket_t> idle;
    for (std::size_t i = 0; i < n; ++i) {
        idle.emplace_back(ctx, zmq::socket_type::dealer);
        idle.back().set(zmq::sockopt::linger, 0);
        idle.back().connect(broker.ep().frontend);
    }
    ASSERT_TRUE(wait_until([&] { return open_fds(pid) >= fds + n; }, 20s)) << open_fds(pid) - fds << " connected";
    ASSERT_TRUE(wait_until([&] { return rss_kib(pid) > base + n * 15; }, 10s)) << "idle connections cost nothing?";
    const auto held = rss_kib(pid);
    idle.clear();
    bool back = wait_until([&] { return rss_kib(pid) < base + (held - base) / 3; }, 15s);
    std::cout << "broker RSS " << base << " KiB, with " << n << " idle connections " << held
              << " KiB, after they closed " << rss_kib(pid) << " KiB\n";
    EXPECT_TRUE(back) << "the memory of closed connections is kept";
}

// The broker raises its soft open-files limit to the hard one at start.
TEST_F(Resources, TheSoftOpenFilesLimitIsRaisedToTheHardOne) {
    rlimit mine{};
    ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &mine), 0);
    if (mine.rlim_max <= 1024) {
        GTEST_SKIP() << "the hard limit is " << mine.rlim_max << ": nothing to raise to";
    }
    rlimit low = mine;
    low.rlim_cur = 1024;
    ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);  // inherited by the broker
    std::unique_ptr<broker_process> broker;
    try {
        broker = std::make_unique<broker_process>(tmp.path() / "data");
    } catch (...) {
        ::setrlimit(RLIMIT_NOFILE, &mine);
        throw;
    }
    ::setrlimit(RLIMIT_NOFILE, &mine);
    rlimit theirs{};
    ASSERT_EQ(::prlimit(broker->proc().pid(), RLIMIT_NOFILE, nullptr, &theirs), 0);
    EXPECT_EQ(theirs.rlim_cur, mine.rlim_max);
}

}  // namespace
