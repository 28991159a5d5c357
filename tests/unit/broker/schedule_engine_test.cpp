// schedule_engine as a client of task_ops: driven by a fake engine on a
// simulated clock, with the in-memory store for its table. No broker, no
// waiting for real time.
#include <gtest/gtest.h>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "schedule/schedule_engine.hpp"

using namespace taskmill;
using namespace taskmill::broker;

namespace {

// What schedule_engine sees of the engine: a clock, a task list, counters,
// events and the turn's transaction.
class fake_ops final : public task_ops {
public:
    fake_ops() : store_(make_memory_store()), txn_(store_->begin(true)), bus_(events_) {}

    int64_t now() const override { return now_; }
    task_id new_id() override {
        task_id id{};
        id[15] = static_cast<uint8_t>(++ids_);
        return id;
    }
    std::optional<std::string> new_work_refused() override { return refuse_; }
    task_record submit(const protocol::task_spec& spec) override {
        submitted.push_back(spec);
        task_record r;
        r.id = new_id();
        r.handler = spec.handler;
        return r;
    }
    std::optional<task_record> find(const task_id&) override { return std::nullopt; }
    void cancel(const task_id&, const std::string&) override {}
    bool workers_connected() const override { return false; }
    bool runnable(const std::string&) const override { return false; }
    void count(const std::string& counter) override { ++counters[counter]; }
    event_bus& events() override { return bus_; }
    void reply(const std::string& peer, std::string_view command, const protocol::reply& r) override {
        replies.push_back({peer, std::string(command), r});
    }
    void reply_error(const std::string&, std::string_view, uint64_t, errc, const std::string&) override {}
    std::size_t max_body() const override { return 1 << 20; }
    std::optional<std::string> get(table t, std::string_view key) override {
        auto v = txn_->get(t, key);
        return v ? std::optional(*v) : std::nullopt;
    }
    void put(table t, std::string_view key, std::string_view value) override { ASSERT_TRUE(txn_->put(t, key, value)); }
    void scan(table t, const scan_fn& fn) override { ASSERT_TRUE(txn_->scan(t, "", false, fn)); }

    void set_time(int64_t t) {
        now_ = t;
        bus_.set_time(t);
    }
    struct sent {
        std::string peer;
        std::string command;
        protocol::reply rep;
    };
    std::vector<protocol::task_spec> submitted;
    std::map<std::string, int> counters;
    std::vector<sent> replies;
    event_list events_;
    std::optional<std::string> refuse_;

private:
    std::unique_ptr<store> store_;
    std::unique_ptr<transaction> txn_;
    event_bus bus_;
    int64_t now_ = 0;
    int ids_ = 0;
};

spdlog::logger& quiet() {
    static spdlog::logger log("schedule-engine-test", std::make_shared<spdlog::sinks::null_sink_mt>());
    return log;
}

schedule_config every_minute() {
    schedule_config c;
    c.name = "tick";
    c.handler = "echo.echo";
    c.every = "1m";
    return c;
}

constexpr int64_t t0 = 1'800'000'000'000;

}  // namespace

TEST(ScheduleEngine, FiresOncePerPeriodAsATaggedTask) {
    fake_ops ops;
    std::vector<schedule_config> cfg{every_minute()};
    schedule_engine s(cfg, ops, quiet());
    ops.set_time(t0);
    s.recover();
    EXPECT_EQ(s.next_fire_ms(), t0 + 60'000);
    EXPECT_TRUE(ops.get(table::schedules, "tick"));  // a new schedule is stored at once

    ops.events().subscription(true, "schedule.");
    ops.set_time(t0 + 59'999);
    s.fire_due();
    EXPECT_TRUE(ops.submitted.empty());
    ops.set_time(t0 + 60'000);
    s.fire_due();
    s.fire_due();  // the same instant again: no second fire
    ASSERT_EQ(ops.submitted.size(), 1u);
    EXPECT_EQ(ops.submitted[0].handler, "echo.echo");
    EXPECT_EQ(ops.submitted[0].tags, std::vector<std::string>{"schedule:tick"});
    EXPECT_EQ(ops.counters["schedule_fires"], 1);
    EXPECT_EQ(s.next_fire_ms(), t0 + 120'000);
    ASSERT_EQ(ops.events_.size(), 1u);
    EXPECT_EQ(ops.events_[0].first, "schedule.fired");
}

TEST(ScheduleEngine, ARestartCarriesOnFromTheStoredFireTimes) {
    fake_ops ops;
    std::vector<schedule_config> cfg{every_minute()};
    {
        schedule_engine s(cfg, ops, quiet());
        ops.set_time(t0);
        s.recover();
        ops.set_time(t0 + 60'000);
        s.fire_due();
    }
    schedule_engine again(cfg, ops, quiet());
    ops.set_time(t0 + 90'000);
    again.recover();
    EXPECT_EQ(again.next_fire_ms(), t0 + 120'000);  // not a period after this start
    ops.set_time(t0 + 10 * 60'000);                  // missed eight: fires once
    again.fire_due();
    EXPECT_EQ(ops.submitted.size(), 2u);
}

TEST(ScheduleEngine, ARefusedFireIsSkippedNotRepeated) {
    fake_ops ops;
    std::vector<schedule_config> cfg{every_minute()};
    schedule_engine s(cfg, ops, quiet());
    ops.set_time(t0);
    s.recover();
    ops.refuse_ = "storage is 96% full";
    ops.set_time(t0 + 60'000);
    s.fire_due();
    EXPECT_TRUE(ops.submitted.empty());
    EXPECT_EQ(ops.counters["schedule_skips"], 1);
    EXPECT_EQ(s.next_fire_ms(), t0 + 120'000);
}

TEST(ScheduleEngine, ListsItsSchedules) {
    fake_ops ops;
    std::vector<schedule_config> cfg{every_minute()};
    schedule_engine s(cfg, ops, quiet());
    ops.set_time(t0);
    s.recover();
    protocol::request rq;
    rq.req = 7;
    s.list("client-1", rq);
    ASSERT_EQ(ops.replies.size(), 1u);
    EXPECT_EQ(ops.replies[0].peer, "client-1");
    EXPECT_EQ(ops.replies[0].command, "SCHEDULES");
    EXPECT_EQ(ops.replies[0].rep.req, 7u);
    EXPECT_FALSE(ops.replies[0].rep.data.empty());
}
