// schedule_engine as a client of task_ops: driven by a fake engine on a
// simulated clock, with the in-memory store for its table. No broker, no
// waiting for real time.
#include <gtest/gtest.h>

#include "fake_task_ops.hpp"
#include "schedule/schedule_engine.hpp"

using namespace tmtest;

namespace {

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
    schedule_engine s(cfg, ops, quiet_log());
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
        schedule_engine s(cfg, ops, quiet_log());
        ops.set_time(t0);
        s.recover();
        ops.set_time(t0 + 60'000);
        s.fire_due();
    }
    schedule_engine again(cfg, ops, quiet_log());
    ops.set_time(t0 + 90'000);
    again.recover();
    EXPECT_EQ(again.next_fire_ms(), t0 + 120'000);  // not a period after this start
    ops.set_time(t0 + 10 * 60'000);                 // missed eight: fires once
    again.fire_due();
    EXPECT_EQ(ops.submitted.size(), 2u);
}

TEST(ScheduleEngine, ARefusedFireIsSkippedNotRepeated) {
    fake_ops ops;
    std::vector<schedule_config> cfg{every_minute()};
    schedule_engine s(cfg, ops, quiet_log());
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
    schedule_engine s(cfg, ops, quiet_log());
    ops.set_time(t0);
    s.recover();
    protocol::request rq;
    rq.req = 7;
    s.list("client-1", rq);
    ASSERT_EQ(ops.replies.size(), 1u);
    EXPECT_EQ(ops.replies[0].peer, "client-1");
    EXPECT_EQ(ops.replies[0].command, taskmill::protocol::cmd::schedules);
    EXPECT_EQ(ops.replies[0].rep.req, 7u);
    EXPECT_FALSE(ops.replies[0].rep.data.empty());
}
