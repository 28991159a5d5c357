// The store a 0.1.0 broker left behind (tests/data/store-v1/README.md),
// recovered by the engine on the simulated clock from a few minutes after
// that broker stopped (store_v1_test.cpp reads it through a real broker):
// what was running is queued again, and every stored time (a retry's, a
// delay's, the schedules') comes due exactly when it said it would.
#include <gtest/gtest.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

namespace fs = std::filesystem;

constexpr int64_t day_ms = 86'400'000;
constexpr int64_t dec_1_ms = 1'796'083'200'000;        // 2026-12-01T00:00:00Z
constexpr int64_t restart_ms = dec_1_ms + 78'000'000;  // 21:40:00Z, four minutes after the stop

// Task ids from tests/data/store-v1/tasks.json.
const std::string running_step = "01a233894ac10000ccf5cee3be884616";   // demo.sleep, step `slow`
const std::string retrying = "01a2338949ca00003cf05acc489ba92f";       // ETA 21:36:16.051
const std::string delayed_a_day = "01a2338920350000055912348c6eb54f";  // ETA 2026-12-02T21:35:54.421Z
const std::string delayed_ten_years = "01a2338948a80000a0af9671e756a063";
const std::string keyed = "01a233891d8500006443363373463a78";  // key idem-1
const std::string open_flow = "01a233894ab80000fc9902cc00e4c6db";

tb::schedule_config schedule(const std::string& name, const std::string& every, const std::string& cron,
                             const std::string& tz) {
    tb::schedule_config c;
    c.name = name;
    c.handler = "echo.echo";
    c.every = every;
    c.cron = cron;
    c.timezone = tz;
    return c;
}

class StoreV1OnTheClock : public ::testing::Test {
protected:
    StoreV1OnTheClock() {
        fs::copy_file(fs::path(TASKMILL_TEST_DATA) / "store-v1" / "data.mdb", dir_.path / "data.mdb");
        auto cfg = sim_config();
        // As its broker.ini.
        cfg.schedules = {schedule("every-hour", "1h", "", ""), schedule("nightly", "", "0 3 * * *", "Europe/Paris")};
        auto st = tb::open_lmdb_store(
            {.dir = dir_.path.string(), .map_size_bytes = 64ull << 20, .mode = tb::durability::none});
        h_ = std::make_unique<engine_harness>(cfg, std::move(st), restart_ms);
    }

    // When the tasks a schedule fired were created, oldest first.
    std::vector<int64_t> fired(const std::string& name) {
        tp::request rq;
        rq.tag = "schedule:" + name;
        std::vector<int64_t> out;
        for (const auto& t : h_->call(tp::cmd::tasks, rq).tasks) {
            out.insert(out.begin(), t.created_ms);
        }
        return out;
    }

    temp_dir dir_;
    std::unique_ptr<engine_harness> h_;
};

}  // namespace

TEST_F(StoreV1OnTheClock, WhatRanIsQueuedAgainAndAPastRetryIsDue) {
    // The store keeps a running task as it was queued (RUNNING lives in
    // memory): the lost attempt is the next one, not a second.
    auto step = h_->status(running_step);
    EXPECT_EQ(step.state, "QUEUED");
    EXPECT_EQ(step.attempts, 0u);
    EXPECT_EQ(h_->status(retrying).state, "QUEUED") << "its ETA passed while the broker was down";
    EXPECT_EQ(h_->status(delayed_ten_years).state, "PENDING");
    tp::request rq;
    rq.tasks = {task("echo.echo")};
    rq.tasks[0].key = "idem-1";
    EXPECT_EQ(h_->call(tp::cmd::submit, rq).ids, std::vector<std::string>{keyed});
}

TEST_F(StoreV1OnTheClock, ADelayedTaskComesDueAtItsStoredEta) {
    const int64_t eta = dec_1_ms + day_ms + 77'754'421;
    EXPECT_EQ(h_->status(delayed_a_day).eta_ms, eta);
    h_->advance(eta - restart_ms - 1);
    EXPECT_EQ(h_->status(delayed_a_day).state, "PENDING");
    h_->advance(1);
    EXPECT_EQ(h_->status(delayed_a_day).state, "QUEUED");
}

TEST_F(StoreV1OnTheClock, SchedulesFireAtTheTimesTheOldBrokerListed) {
    h_->advance(day_ms);
    // schedules.json: next_fire_ms of each, then every hour / every night.
    const int64_t hourly = 1'796'164'547'683;
    auto every_hour = fired("every-hour");
    ASSERT_FALSE(every_hour.empty());
    EXPECT_EQ(every_hour[0], hourly);
    EXPECT_EQ(every_hour[1], hourly + 3'600'000);
    EXPECT_EQ(fired("nightly"), std::vector<int64_t>{1'796'176'800'000});
}

TEST_F(StoreV1OnTheClock, TheOpenWorkflowFinishesWhenItsStepsDo) {
    auto& w = h_->connect_worker(1, {handler("demo.sleep"), handler("echo.echo")}, {.queues = {"default"}});
    auto slow = w.dispatched();
    ASSERT_EQ(slow.size(), 1u);
    EXPECT_EQ(slow[0].id, running_step);
    EXPECT_EQ(slow[0].attempt, 1u);
    w.result(slow[0], "ok", "\x02");
    auto after = w.dispatched();
    ASSERT_EQ(after.size(), 1u);
    EXPECT_EQ(after[0].handler, "echo.echo");
    w.result(after[0], "ok", "\x03");
    tp::request rq;
    rq.id = open_flow;
    auto rep = h_->call(tp::cmd::wf_status, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    auto status = nlohmann::json::from_msgpack(rep.data);
    EXPECT_EQ(status.at("state"), "SUCCEEDED");
    EXPECT_EQ(status.at("result"), (nlohmann::json{{"after", 3}}));
}
