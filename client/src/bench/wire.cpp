// wire and wake: the modes that measure below the client library, so that a
// latency figure can be split into what the client library adds, what the
// broker and the worker add, and what one thread wake-up costs on this
// machine.
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <thread>

#include <zmq.hpp>

#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

#include "bench.hpp"
#include "measure.hpp"

namespace taskmill::bench {

namespace {

using std::chrono::microseconds;

// The next message on `s` within `until`, or nullopt.
std::optional<protocol::message> next(zmq::socket_t& s, steady::time_point until) {
    for (;;) {
        if (auto in = protocol::try_recv(s, false)) {
            if (in->msg) return std::move(*in->msg);
            continue;  // malformed: not ours to judge here
        }
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - steady::now());
        if (left.count() <= 0) return std::nullopt;
        zmq::pollitem_t items[] = {{s.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 1, left);
    }
}

std::string submit_body(uint64_t req, const bench_options& o, const std::string& queue, bool notify) {
    protocol::request r;
    r.req = req;
    protocol::task_spec t;
    t.handler = o.handler;
    t.queue = queue;
    t.notify = notify;
    r.tasks.push_back(std::move(t));
    return protocol::encode(r);
}

// p50 / p99 in µs of `n` calls of `round_trip`, after o.warmup untimed
// ones; nullopt if one of them failed.
std::optional<std::pair<double, double>> time_round_trips(const bench_options& o, std::size_t n,
                                                          const std::function<bool(uint64_t)>& round_trip) {
    std::vector<double> us;
    us.reserve(n);
    for (std::size_t i = 0; i < o.warmup + n; ++i) {
        const auto t0 = steady::now();
        if (!round_trip(i)) return std::nullopt;
        if (i >= o.warmup) us.push_back(std::chrono::duration<double, std::micro>(steady::now() - t0).count());
    }
    std::sort(us.begin(), us.end());
    return std::pair{percentile(us, 0.50), percentile(us, 0.99)};
}

// Two threads passing a token back and forth through eventfds, pinned to
// CPUs `mine` and `theirs`: a round trip is two wake-ups. The waits are real
// sleeps, so on another CPU each wake-up includes waking that CPU.
double wake_round_trip_us(std::size_t n, int mine, int theirs) {
    const int a = ::eventfd(0, EFD_CLOEXEC);
    const int b = ::eventfd(0, EFD_CLOEXEC);
    if (a < 0 || b < 0) throw std::runtime_error("eventfd failed");
    auto pin = [](int cpu) {
        cpu_set_t one;
        CPU_ZERO(&one);
        CPU_SET(static_cast<unsigned>(cpu), &one);
        ::pthread_setaffinity_np(::pthread_self(), sizeof one, &one);
    };
    cpu_set_t before;
    ::pthread_getaffinity_np(::pthread_self(), sizeof before, &before);
    pin(mine);
    std::thread peer([&] {
        pin(theirs);
        uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            if (::read(a, &v, sizeof v) != sizeof v || ::write(b, &v, sizeof v) != sizeof v) break;
        }
    });
    std::vector<double> us;
    us.reserve(n);
    uint64_t v = 1;
    for (std::size_t i = 0; i < n; ++i) {
        const auto t0 = steady::now();
        if (::write(a, &v, sizeof v) != sizeof v || ::read(b, &v, sizeof v) != sizeof v) break;
        us.push_back(std::chrono::duration<double, std::micro>(steady::now() - t0).count());
    }
    peer.join();
    ::pthread_setaffinity_np(::pthread_self(), sizeof before, &before);
    ::close(a);
    ::close(b);
    std::sort(us.begin(), us.end());
    return percentile(us, 0.50);
}

// The first two CPUs this process may run on (the second is -1 if only one).
std::pair<int, int> two_cpus() {
    cpu_set_t set;
    ::pthread_getaffinity_np(::pthread_self(), sizeof set, &set);
    std::pair<int, int> cpus{-1, -1};
    for (int c = 0; c < CPU_SETSIZE; ++c) {
        if (!CPU_ISSET(c, &set)) continue;
        if (cpus.first < 0) {
            cpus.first = c;
        } else {
            cpus.second = c;
            break;
        }
    }
    return cpus;
}

}  // namespace

// Round trips over a bare DEALER speaking the wire protocol (docs/PROTOCOL.md),
// without the client library's I/O thread: PING (broker only), SUBMIT to a
// queue nobody serves (broker + its commit), and SUBMIT with notify until
// DONE (broker + worker).
nlohmann::json run_wire(const bench_options& o) {
    zmq::context_t ctx(1);
    zmq::socket_t s(ctx, zmq::socket_type::dealer);
    s.set(zmq::sockopt::linger, 0);
    s.connect(o.endpoint);
    const auto give_up = steady::now() + o.deadline;
    auto reply_to = [&](std::string_view command, const std::string& body, int replies) {
        if (!protocol::send(s, {}, command, body)) return false;
        for (int i = 0; i < replies; ++i) {
            if (!next(s, give_up)) return false;
        }
        return true;
    };
    auto ping = time_round_trips(o, o.count, [&](uint64_t i) {
        protocol::request r;
        r.req = i;
        return reply_to(protocol::cmd::ping, protocol::encode(r), 1);
    });
    auto ack = time_round_trips(o, o.count, [&](uint64_t i) {
        return reply_to(protocol::cmd::submit, submit_body(i, o, "bench-wire-unserved", false), 1);
    });
    auto done = time_round_trips(o, o.count, [&](uint64_t i) {
        return reply_to(protocol::cmd::submit, submit_body(i, o, o.queue, true), 2);  // the ack, then DONE
    });
    if (!ping || !ack || !done) {
        return {{"mode", o.mode}, {"ok", false}, {"error", "the broker did not answer before the deadline"}};
    }
    return {{"mode", o.mode},
            {"ok", true},
            {"count", o.count},
            {"wire_ping_p50_us", ping->first},
            {"wire_ping_p99_us", ping->second},
            {"wire_ack_p50_us", ack->first},
            {"wire_ack_p99_us", ack->second},
            {"wire_done_p50_us", done->first},
            {"wire_done_p99_us", done->second}};
}

// What one thread wake-up costs here: a sleeping thread on another CPU (on
// a VM whose idle vCPUs halt, the wake goes through the hypervisor) and on
// the same CPU.
nlohmann::json run_wake(const bench_options& o) {
    const auto [first, second] = two_cpus();
    nlohmann::json j{{"mode", o.mode},
                     {"ok", true},
                     {"count", o.count},
                     {"wake_same_cpu_us", wake_round_trip_us(o.count, first, first) / 2}};
    if (second >= 0) j["wake_other_cpu_us"] = wake_round_trip_us(o.count, first, second) / 2;
    return j;
}

}  // namespace taskmill::bench
