// drain and ready: the modes that watch a broker instead of loading it.
#include <chrono>
#include <optional>
#include <thread>

#include "bench.hpp"
#include "measure.hpp"

namespace taskmill::bench {

namespace {

using std::chrono::milliseconds;

// Tasks of `queue` not finished yet (ready + delayed + running); nullopt
// if the broker does not answer.
std::optional<uint64_t> outstanding(client::client& c, const std::string& queue) {
    auto s = c.stats();
    if (!s) {
        return std::nullopt;
    }
    for (const auto& q : s->queues) {
        if (q.name == queue) {
            return q.ready + q.delayed + q.running;
        }
    }
    return 0;
}

int64_t epoch_ms() {
    return std::chrono::duration_cast<milliseconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

// Polls STATS until `queue` is empty. The rate counts from the last poll
// that still saw the full backlog, so the start-up of a host started after
// this mode counts against the drain by at most one poll period.
nlohmann::json run_drain(const bench_options& o) {
    client::client c(o.endpoint);
    const auto give_up = steady::now() + o.deadline;
    const auto poll = milliseconds(50);
    auto initial = outstanding(c, o.queue);
    if (!initial) {
        return {{"mode", o.mode}, {"ok", false}, {"error", "the broker does not answer STATS"}};
    }
    auto last_full = steady::now();
    uint64_t left = *initial;
    bool started = false;
    while (left > 0 && steady::now() < give_up) {
        std::this_thread::sleep_for(poll);  // a polling period, not synchronisation
        auto now_left = outstanding(c, o.queue);
        if (!now_left) {
            continue;
        }
        if (!started && *now_left >= *initial) {
            last_full = steady::now();
        } else {
            started = true;
        }
        left = *now_left;
    }
    const auto end = steady::now();
    const auto secs = seconds_between(last_full, end);
    nlohmann::json j{{"mode", o.mode},
                     {"ok", left == 0},
                     {"queue", o.queue},
                     {"initial", *initial},
                     {"left", left},
                     {"drain_s", secs},
                     {"drain_tps", secs > 0 ? static_cast<double>(*initial - left) / secs : 0.0}};
    if (left != 0) {
        j["error"] = "the queue did not drain before the deadline";
    }
    return j;
}

// Waits until the broker answers a PING, then a STATS (which reads the
// store), and reports when, as wall-clock epoch ms so a script can subtract
// the moment it started the broker. ZeroMQ retries a connect every 100 ms,
// which bounds the resolution.
nlohmann::json run_ready(const bench_options& o) {
    const auto t0 = steady::now();
    client::client_options co;
    co.endpoint = o.endpoint;
    client::client c(co);
    const auto give_up = t0 + o.deadline;
    while (steady::now() < give_up) {
        if (c.ping(milliseconds(1000))) {
            break;
        }
    }
    const auto pinged = steady::now();
    const auto ping_epoch = epoch_ms();
    auto left = outstanding(c, o.queue);
    const auto statted = steady::now();
    nlohmann::json j{{"mode", o.mode},
                     {"ok", pinged < give_up && left.has_value()},
                     {"ping_epoch_ms", ping_epoch},
                     {"stats_epoch_ms", epoch_ms()},
                     {"ping_ms", ms_between(t0, pinged)},
                     {"stats_ms", ms_between(t0, statted)},
                     {"queue", o.queue},
                     {"queued", left.value_or(0)}};
    if (!left) {
        j["error"] = "the broker did not answer before the deadline";
    }
    return j;
}

}  // namespace taskmill::bench
