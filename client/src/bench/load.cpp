// throughput, latency and backlog: the modes that submit tasks.
#include <sys/resource.h>

#include <algorithm>
#include <deque>
#include <functional>
#include <future>

#include "bench.hpp"
#include "measure.hpp"

namespace taskmill::bench {

namespace {

using handles = std::vector<client::task_handle>;

client::client_options client_opts(const bench_options& o) {
    client::client_options co;
    co.endpoint = o.endpoint;
    co.max_batch = std::max<std::size_t>(o.batch, 1);
    // A full window of sync commits under load can take long on a noisy VM.
    co.request_timeout = std::min<std::chrono::milliseconds>(std::chrono::milliseconds(30000), o.deadline);
    return co;
}

nlohmann::json failed(const bench_options& o, const std::string& why) {
    return {{"mode", o.mode}, {"ok", false}, {"error", why}};
}

struct submit_outcome {
    std::string error;  // empty = every task acked
    std::size_t acked = 0;
};

// Submits o.count tasks in batches of o.batch with at most o.window batches
// awaiting their durable ack, like a producer that streams work; each acked
// batch goes to `on_acked`.
submit_outcome submit_pipelined(client::client& c, const bench_options& o,
                                const std::function<void(handles&)>& on_acked) {
    submit_outcome out;
    std::deque<std::future<result<handles>>> inflight;
    auto settle_oldest = [&] {
        auto r = inflight.front().get();
        inflight.pop_front();
        if (!r) {
            if (out.error.empty()) {
                out.error = r.error().message;
            }
            return;
        }
        out.acked += r->size();
        on_acked(*r);
    };
    const auto batch = std::max<std::size_t>(o.batch, 1);
    for (std::size_t next = 0; next < o.count && out.error.empty();) {
        std::vector<client::task_options> tasks;
        const auto end = std::min(o.count, next + batch);
        tasks.reserve(end - next);
        for (; next < end; ++next) {
            tasks.push_back(make_task(o.handler, o.queue, next));
        }
        inflight.push_back(c.submit_async(std::move(tasks)));
        if (inflight.size() >= std::max<std::size_t>(o.window, 1)) {
            settle_oldest();
        }
    }
    while (!inflight.empty()) {
        settle_oldest();
    }
    return out;
}

// CPU time (user + system) this process has used so far, in microseconds.
double process_cpu_us() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto us = [](const timeval& t) { return static_cast<double>(t.tv_sec) * 1e6 + static_cast<double>(t.tv_usec); };
    return us(u.ru_utime) + us(u.ru_stime);
}

// Untimed round trips so connections, worker threads and caches are warm.
std::string warm_up(client::client& c, const bench_options& o) {
    for (std::size_t i = 0; i < o.warmup; ++i) {
        auto h = c.submit(make_task(o.handler, o.queue, i));
        if (!h) {
            return "warm-up submit: " + h.error().message;
        }
        auto t = h->get(o.deadline);
        if (!t) {
            return "warm-up wait: " + t.error().message;
        }
    }
    return {};
}

}  // namespace

nlohmann::json run_throughput(const bench_options& o) {
    client::client c(client_opts(o));
    if (auto e = warm_up(c, o); !e.empty()) {
        return failed(o, e);
    }
    completion_counter done;
    // A real producer keeps nothing but its callbacks: the client holds a
    // handle with pending then() callbacks until they have run.
    const double cpu_before = process_cpu_us();
    const auto start = steady::now();
    auto sub = submit_pipelined(c, o, [&](handles& hs) {
        for (auto& h : hs) {
            done.watch(h);
        }
    });
    const auto enqueued = steady::now();
    const bool all = sub.error.empty() && done.wait_for(o.count, start + o.deadline);
    const auto finished = steady::now();
    // Every thread of this process (producer, I/O, callbacks) over the timed part.
    const double client_cpu_us = process_cpu_us() - cpu_before;
    nlohmann::json j{{"mode", o.mode},
                     {"ok", all && done.failed() == 0},
                     {"count", o.count},
                     {"batch", o.batch},
                     {"window", o.window},
                     {"acked", sub.acked},
                     {"succeeded", done.succeeded()},
                     {"failed", done.failed()},
                     {"enqueue_s", seconds_between(start, enqueued)},
                     {"total_s", seconds_between(start, finished)},
                     {"enqueue_tps", static_cast<double>(sub.acked) / seconds_between(start, enqueued)},
                     {"throughput_tps", static_cast<double>(done.succeeded()) / seconds_between(start, finished)},
                     {"client_cpu_us", client_cpu_us},
                     {"client_cpu_us_per_task", o.count ? client_cpu_us / static_cast<double>(o.count) : 0.0}};
    if (!sub.error.empty()) {
        j["error"] = sub.error;
    } else if (!all) {
        j["error"] = "not every result arrived before the deadline";
    } else if (done.failed() > 0) {
        j["error"] = done.first_error();
    }
    return j;
}

nlohmann::json run_latency(const bench_options& o) {
    client::client c(client_opts(o));
    if (auto e = warm_up(c, o); !e.empty()) {
        return failed(o, e);
    }
    std::vector<double> ms;
    std::vector<double> ack_ms;  // submit until the durable ack: the share of the round trip before the result
    ms.reserve(o.count);
    ack_ms.reserve(o.count);
    const auto stop_at = steady::now() + o.deadline;
    std::string error;
    for (std::size_t i = 0; i < o.count && steady::now() < stop_at; ++i) {
        const auto t0 = steady::now();
        auto h = c.submit(make_task(o.handler, o.queue, i));
        if (!h) {
            error = "submit: " + h.error().message;
            break;
        }
        ack_ms.push_back(ms_between(t0, steady::now()));
        auto t = h->get(o.deadline);
        if (!t || !t->succeeded()) {
            error = t ? "task " + t->id + " ended " + t->state : "wait: " + t.error().message;
            break;
        }
        ms.push_back(ms_between(t0, steady::now()));
    }
    const auto n = ms.size();
    std::sort(ms.begin(), ms.end());
    std::sort(ack_ms.begin(), ack_ms.end());
    double sum = 0;
    for (double v : ms) {
        sum += v;
    }
    nlohmann::json j{{"mode", o.mode},
                     {"ok", error.empty() && n == o.count},
                     {"count", n},
                     {"p50_ms", percentile(ms, 0.50)},
                     {"p90_ms", percentile(ms, 0.90)},
                     {"p99_ms", percentile(ms, 0.99)},
                     {"max_ms", n ? ms.back() : 0.0},
                     {"ack_p50_ms", percentile(ack_ms, 0.50)},
                     {"ack_p99_ms", percentile(ack_ms, 0.99)},
                     {"mean_ms", n ? sum / static_cast<double>(n) : 0.0}};
    if (!error.empty()) {
        j["error"] = error;
    } else if (n != o.count) {
        j["error"] = "deadline passed after " + std::to_string(n) + " round trips";
    }
    return j;
}

nlohmann::json run_backlog(const bench_options& o) {
    client::client c(client_opts(o));
    const auto start = steady::now();
    // Handles are dropped at once: a producer of a backlog does not wait.
    auto sub = submit_pipelined(c, o, [](handles& hs) { hs.clear(); });
    const auto elapsed = seconds_between(start, steady::now());
    nlohmann::json j{{"mode", o.mode},
                     {"ok", sub.error.empty()},
                     {"count", o.count},
                     {"queue", o.queue},
                     {"acked", sub.acked},
                     {"submit_s", elapsed},
                     {"submit_tps", static_cast<double>(sub.acked) / elapsed}};
    if (!sub.error.empty()) {
        j["error"] = sub.error;
    }
    return j;
}

}  // namespace taskmill::bench
