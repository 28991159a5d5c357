// Chaos under keyed load: a seeded schedule of SIGKILLs to the broker, the
// host and single worker processes, while a client submits tasks with
// idempotency keys and resubmits whatever was not acknowledged once the
// broker is back. Bounded: ~40 s of chaos, then every acknowledged task
// must end SUCCEEDED (none lost), and each task of a killed worker must
// run again within 2 s (slots stay free: the load is well under capacity).
// TASKMILL_CHAOS_SEED picks another schedule.
#include <signal.h>

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include <taskmill/protocol/frame.hpp>

#include "harness.hpp"

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

using clock_type = std::chrono::steady_clock;

constexpr auto chaos_time = 40s;
constexpr ms rerun_bound = 2s;

uint32_t chaos_seed() {
    const char* s = std::getenv("TASKMILL_CHAOS_SEED");
    return s != nullptr ? static_cast<uint32_t>(std::strtoul(s, nullptr, 10)) : 20261201u;
}

class chaos_run {
public:
    explicit chaos_run(uint32_t seed) : rng_(seed) {
        broker_ = std::make_unique<broker_process>(data(), broker_args(), "broker-0.log");
        ep_ = broker_->ep();
        client_ = std::make_unique<wire_client>(ep_.frontend);
        start_host();
    }

    // Submits a small keyed batch; unacknowledged tasks wait for a retry.
    void submit_some() {
        std::uniform_int_distribution<int> ms(10, 120);
        for (int i = 0; i < 2; ++i) {
            auto t = task("demo.sleep", {{"ms", ms(rng_)}});
            t.key = "chaos-" + std::to_string(next_key_++);
            pending_.push_back(t);
        }
        flush_pending(1s);
    }

    // Resubmits the unacknowledged tasks (same keys: the broker creates
    // each at most once).
    void flush_pending(ms timeout) {
        if (pending_.empty()) return;
        auto ids = client_->submit(pending_, timeout);
        if (ids.size() != pending_.size()) return;
        for (std::size_t i = 0; i < ids.size(); ++i) {
            auto [it, fresh] = acked_.emplace(pending_[i].key, ids[i]);
            EXPECT_EQ(it->second, ids[i]) << "key " << pending_[i].key << " made two tasks";
        }
        pending_.clear();
    }

    void one_fault() {
        std::uniform_int_distribution<int> pick(0, 9);
        int p = pick(rng_);
        if (p < 6) kill_worker();
        else if (p < 8) kill_host();
        else kill_broker();
    }

    // The end: resubmit what is left, then every acknowledged task must
    // finish SUCCEEDED.
    void settle() {
        ASSERT_TRUE(wait_until(
            [&] {
                flush_pending(2s);
                return pending_.empty();
            },
            30s))
            << "submits not acknowledged";
        std::size_t lost = 0;
        auto deadline = clock_type::now() + 90s;
        for (const auto& [key, id] : acked_) {
            auto left = std::chrono::duration_cast<ms>(deadline - clock_type::now());
            auto t = client_->wait_final(id, std::max(left, 1ms));
            if (!t || t->state != "SUCCEEDED") {
                ++lost;
                ADD_FAILURE() << "acknowledged task " << id << " (" << key << ") ended "
                              << (t ? t->state + " " + t->error : std::string("not final"));
            }
        }
        EXPECT_EQ(lost, 0u);
        std::cout << "chaos: " << acked_.size() << " tasks acknowledged, " << kills_["worker"] << " worker, "
                  << kills_["host"] << " host, " << kills_["broker"] << " broker kills; " << reruns_.size()
                  << " reruns measured, slowest "
                  << (reruns_.empty() ? 0 : *std::max_element(reruns_.begin(), reruns_.end())) << " ms\n";
        for (auto r : reruns_) {
            EXPECT_LT(r, rerun_bound.count()) << "a killed worker's task waited " << r << " ms to run again";
        }
    }

    std::size_t acked() const { return acked_.size(); }

    // Paces the load: the next batch waits until at most half the slots
    // are taken (running plus ready), so a killed worker's task always finds
    // a free slot.
    void wait_for_room() {
        wait_until(
            [&] {
                auto rep = client_->call(tp::cmd::stats, {}, 1s);
                if (!rep || !rep->stats) return false;
                uint64_t ready = 0;
                for (const auto& q : rep->stats->queues) ready += q.ready;
                return rep->stats->slots > 0 && 2 * (rep->stats->busy + ready) < rep->stats->slots;
            },
            1s);
    }

private:
    fs::path data() const { return tmp_.path() / "data"; }
    static std::vector<std::string> broker_args() {
        // Killed workers are the point here, not poison tasks.
        return {"--max-crashes", "1000", "--heartbeat-ms", "200", "--liveness-ms", "3000"};
    }

    void start_host() { host_ = start_host_process(); }
    std::unique_ptr<process> start_host_process() {
        return taskmill::testing::start_host(
            tmp_.path(), {.backend = ep_.backend, .processes = 3, .concurrency = 2, .extra = {"--grace-ms", "2000"}},
            "host-" + std::to_string(hosts_++) + ".log");
    }

    // SIGKILL one worker process that runs something, then time how long
    // its tasks take to run again.
    void kill_worker() {
        tp::request rq;
        rq.state = "RUNNING";
        rq.limit = 100;
        auto running = client_->call(tp::cmd::tasks, rq, 2s);
        if (!running || running->tasks.empty()) return;
        const auto& victim_id = running->tasks.front().worker;
        int64_t pid = 0;
        for (const auto& w : client_->workers()) {
            if (w.id == victim_id) pid = w.pid;
        }
        if (pid <= 0) return;
        std::map<std::string, uint32_t> held;  // task -> attempts before the kill
        for (const auto& t : running->tasks) {
            if (t.worker == victim_id) held[t.id] = t.attempts;
        }
        if (::kill(static_cast<pid_t>(pid), SIGKILL) != 0) return;
        ++kills_["worker"];
        auto killed_at = clock_type::now();
        wait_until(
            [&] {
                for (auto it = held.begin(); it != held.end();) {
                    auto t = client_->status(it->first);
                    if (t && t->attempts > it->second && (t->state == "RUNNING" || is_final(t->state))) {
                        reruns_.push_back(std::chrono::duration_cast<ms>(clock_type::now() - killed_at).count());
                        it = held.erase(it);
                    } else if (t && is_final(t->state)) {
                        it = held.erase(it);  // it had finished before the kill
                    } else {
                        ++it;
                    }
                }
                return held.empty();
            },
            5s);
        for (const auto& [id, attempts] : held) {
            ADD_FAILURE() << "task " << id << " of the killed worker did not run again within 5 s";
        }
    }

    // SIGKILL the supervisor: its workers get SIGTERM, drain and leave;
    // a new host takes over.
    void kill_host() {
        host_->signal(SIGKILL);
        host_->wait_exit(10s);
        ++kills_["host"];
        start_host();
    }

    // SIGKILL the broker and start it again on the same ports and data.
    void kill_broker() {
        broker_->proc().signal(SIGKILL);
        broker_->proc().wait_exit(10s);
        ++kills_["broker"];
        old_brokers_.push_back(std::move(broker_));
        broker_ = std::make_unique<broker_process>(data(), broker_args(),
                                                   "broker-" + std::to_string(old_brokers_.size()) + ".log", &ep_);
        client_ = std::make_unique<wire_client>(ep_.frontend);
        flush_pending(2s);
    }

    temp_dir tmp_;
    std::mt19937 rng_;
    endpoints ep_;
    std::unique_ptr<broker_process> broker_;
    std::vector<std::unique_ptr<broker_process>> old_brokers_;
    std::unique_ptr<process> host_;
    std::unique_ptr<wire_client> client_;
    int hosts_ = 0;
    uint64_t next_key_ = 0;
    std::vector<tp::task_spec> pending_;
    std::map<std::string, std::string> acked_;  // key -> id
    std::map<std::string, int> kills_;
    std::vector<int64_t> reruns_;  // ms from a worker kill to its task's next run
};

}  // namespace

TEST(Chaos, RandomKillsUnderKeyedLoadLoseNoAcknowledgedTask) {
    auto seed = chaos_seed();
    std::cout << "chaos seed " << seed << " (TASKMILL_CHAOS_SEED)\n";
    chaos_run run(seed);
    std::mt19937 timing(seed ^ 0x9e3779b9u);
    std::uniform_int_distribution<int> gap_ms(1500, 3500);
    auto end = clock_type::now() + chaos_time;
    auto next_fault = clock_type::now() + ms(gap_ms(timing));
    while (clock_type::now() < end) {
        run.submit_some();
        if (clock_type::now() >= next_fault) {
            run.one_fault();
            next_fault = clock_type::now() + ms(gap_ms(timing));
        }
        run.wait_for_room();
    }
    ASSERT_GT(run.acked(), 0u);
    run.settle();
}
