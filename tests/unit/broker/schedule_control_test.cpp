// Schedule control on the simulated clock: SCHEDULE_TRIGGER fires once and
// leaves the planned fires alone, SCHEDULE_PAUSE stops fires (across a
// restart), SCHEDULE_RESUME plans the next fire from now, and SCHEDULES
// shows paused, last and next fire and misfires.
#include <gtest/gtest.h>

#include <algorithm>

#include <nlohmann/json.hpp>

#include <taskmill/broker/schedule.hpp>

#include "engine_harness.hpp"
#include "schedule/schedule_runtime.hpp"

using namespace tmtest;
using nlohmann::json;

namespace {

tb::schedule_config every(const std::string& name, const std::string& period) {
    tb::schedule_config c;
    c.name = name;
    c.handler = "t.tick";
    c.every = period;
    return c;
}

tb::schedule_config cron(const std::string& name, const std::string& expr) {
    tb::schedule_config c;
    c.name = name;
    c.handler = "t.tick";
    c.cron = expr;
    return c;
}

engine_harness with(std::vector<tb::schedule_config> schedules) {
    auto cfg = sim_config();
    cfg.schedules = std::move(schedules);
    return engine_harness(cfg);
}

// When the schedule's tasks were created, in ms since the harness started.
std::vector<int64_t> fire_times(engine_harness& h, const std::string& name) {
    tp::request rq;
    rq.tag = "schedule:" + name;
    rq.limit = 1000;
    std::vector<int64_t> out;
    for (const auto& t : h.call(tp::cmd::tasks, rq).tasks) {
        out.push_back(t.created_ms - sim_epoch_ms);
    }
    std::sort(out.begin(), out.end());
    return out;
}

json listed(engine_harness& h, std::size_t i = 0) {
    auto rep = h.call(tp::cmd::schedules, tp::request{});
    EXPECT_TRUE(rep.ok) << rep.error;
    return json::from_msgpack(rep.data).at("schedules").at(i);
}

tp::reply control(engine_harness& h, std::string_view command, const std::string& name) {
    tp::request rq;
    rq.name = name;
    return h.call(command, rq);
}

int64_t at(int64_t ms) { return sim_epoch_ms + ms; }

bool pause_stored(engine_harness& h, const std::string& name) {
    auto txn = h.store().begin(false);
    return txn->get(tb::table::settings, "schedule/" + name).has_value();
}

uint64_t counter(engine_harness& h, const std::string& name) {
    auto stats = h.call(tp::cmd::stats, tp::request{});
    return stats.stats ? stats.stats->counters[name] : 0;
}

}  // namespace

TEST(ScheduleControl, TriggerFiresOnceNowAndTheCronStaysOnTime) {
    auto h = with({cron("quarter", "*/15 * * * *")});
    h.subscribe("schedule.");
    h.advance(300'000);
    auto rep = control(h, tp::cmd::schedule_trigger, "quarter");
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_EQ(rep.ids.size(), 1u);
    auto task = h.status(rep.ids[0]);
    EXPECT_EQ(task.handler, "t.tick");
    EXPECT_EQ(task.tags, std::vector<std::string>{"schedule:quarter"});
    EXPECT_EQ(task.state, "QUEUED");
    auto events = h.events("schedule.");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].topic, "schedule.triggered");
    EXPECT_EQ(events[0].body.at("task"), rep.ids[0]);
    EXPECT_EQ(events[0].body.at("schedule"), "quarter");
    auto s = listed(h);
    EXPECT_EQ(s.at("last_fire_ms"), at(300'000));
    EXPECT_EQ(s.at("next_fire_ms"), at(900'000)) << "the cron's own fire is not moved";
    EXPECT_EQ(counter(h, "schedule_fires"), 1u);
    EXPECT_EQ(counter(h, "schedule_triggers"), 1u);
    h.advance(3'300'000);
    EXPECT_EQ(fire_times(h, "quarter"), (std::vector<int64_t>{300'000, 900'000, 1'800'000, 2'700'000, 3'600'000}));
    EXPECT_EQ(listed(h).at("misfires"), 0);
}

// A trigger is stored like a fire: a restart keeps its last fire time and
// the cron's plan.
TEST(ScheduleControl, ATriggerSurvivesARestartWithoutMovingTheCron) {
    auto h = with({cron("quarter", "*/15 * * * *")});
    h.advance(60'000);
    ASSERT_TRUE(control(h, tp::cmd::schedule_trigger, "quarter").ok);
    h.restart(60'000);
    EXPECT_EQ(listed(h).at("last_fire_ms"), at(60'000));
    EXPECT_EQ(listed(h).at("next_fire_ms"), at(900'000));
    h.advance(780'000);
    EXPECT_EQ(fire_times(h, "quarter"), (std::vector<int64_t>{60'000, 900'000}));
}

TEST(ScheduleControl, UnknownOrMissingNamesAreRefused) {
    auto h = with({every("tick", "1m")});
    for (auto command : {tp::cmd::schedule_trigger, tp::cmd::schedule_pause, tp::cmd::schedule_resume}) {
        auto rep = control(h, command, "nope");
        EXPECT_FALSE(rep.ok) << command;
        EXPECT_EQ(rep.error_code, "not_found") << command;
        EXPECT_NE(rep.error.find("nope"), std::string::npos) << rep.error;
        rep = control(h, command, "");
        EXPECT_EQ(rep.error_code, "invalid_argument") << command;
    }
    EXPECT_TRUE(fire_times(h, "tick").empty());
}

TEST(ScheduleControl, ATriggerWhileNewWorkIsRefusedIsRefused) {
    auto h = with({every("tick", "1m")});
    h.hold_new_work(10'000, "test hold");
    auto rep = control(h, tp::cmd::schedule_trigger, "tick");
    EXPECT_EQ(rep.error_code, "unavailable");
    EXPECT_TRUE(fire_times(h, "tick").empty());
}

TEST(ScheduleControl, PauseStopsFiresAcrossARestart) {
    auto h = with({every("tick", "1s")});
    h.subscribe("schedule.");
    h.advance(1000);
    EXPECT_EQ(fire_times(h, "tick"), std::vector<int64_t>{1000});
    auto rep = control(h, tp::cmd::schedule_pause, "tick");
    ASSERT_TRUE(rep.ok) << rep.error;
    auto shown = json::from_msgpack(rep.data);
    EXPECT_EQ(shown.at("name"), "tick");
    EXPECT_EQ(shown.at("paused"), true);
    EXPECT_EQ(shown.at("next_fire_ms"), 0);
    EXPECT_EQ(shown.at("last_fire_ms"), at(1000));
    EXPECT_TRUE(pause_stored(h, "tick"));
    auto events = h.events("schedule.");
    ASSERT_EQ(events.size(), 2u);
    EXPECT_EQ(events[1].topic, "schedule.paused");
    EXPECT_EQ(control(h, tp::cmd::schedule_pause, "tick").note, "already paused");
    h.advance(5000);
    EXPECT_EQ(fire_times(h, "tick"), std::vector<int64_t>{1000});
    h.restart(10'000);
    h.advance(5000);
    EXPECT_EQ(fire_times(h, "tick"), std::vector<int64_t>{1000}) << "the pause outlives the engine";
    EXPECT_EQ(listed(h).at("paused"), true);
    EXPECT_EQ(listed(h).at("misfires"), 0) << "fires that fall in a pause are not misfires";
}

TEST(ScheduleControl, ResumePlansTheNextFireFromNow) {
    auto h = with({cron("hourly", "0 * * * *")});
    h.subscribe("schedule.");
    h.advance(600'000);
    ASSERT_TRUE(control(h, tp::cmd::schedule_pause, "hourly").ok);
    h.advance(9'000'000);  // 2h40: the 1h and 2h fires fell in the pause
    EXPECT_TRUE(fire_times(h, "hourly").empty());
    h.restart(0);
    auto rep = control(h, tp::cmd::schedule_resume, "hourly");
    ASSERT_TRUE(rep.ok) << rep.error;
    auto shown = json::from_msgpack(rep.data);
    EXPECT_EQ(shown.at("paused"), false);
    EXPECT_EQ(shown.at("next_fire_ms"), at(10'800'000)) << "3h: the first fire time after now";
    EXPECT_FALSE(pause_stored(h, "hourly"));
    h.advance(0);
    EXPECT_TRUE(fire_times(h, "hourly").empty()) << "what fell in the pause is not caught up";
    h.advance(1'200'000);
    EXPECT_EQ(fire_times(h, "hourly"), std::vector<int64_t>{10'800'000});
    EXPECT_EQ(listed(h).at("misfires"), 0);
    auto events = h.events("schedule.resumed");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].body.at("next_ms"), at(10'800'000));
    EXPECT_EQ(control(h, tp::cmd::schedule_resume, "hourly").note, "not paused");
}

// Misfires: the fire times that got no fire of their own. A late fire
// stands for the ones it collapsed; a fire skipped while new work is
// refused counts too. The count is stored with the fire times.
TEST(ScheduleControl, MisfiresCountCollapsedAndSkippedFires) {
    auto h = with({every("tick", "1s"), cron("minute", "* * * * *")});
    h.advance(1000);
    h.restart(3300);  // down for 3.3 periods: 2000, 3000 and 4000 missed
    h.advance(0);
    EXPECT_EQ(fire_times(h, "tick"), (std::vector<int64_t>{1000, 4300}));
    EXPECT_EQ(listed(h, 0).at("misfires"), 2) << "4300 fired for 2000; 3000 and 4000 had none";
    h.hold_new_work(1500, "test hold");
    h.advance(1000);  // 5300 skipped
    EXPECT_EQ(listed(h, 0).at("misfires"), 3);
    h.restart(0);
    EXPECT_EQ(listed(h, 0).at("misfires"), 3) << "kept across a restart";
    h.restart(600'000);  // ten minutes down: the cron missed 10 fire times
    h.advance(0);
    EXPECT_EQ(listed(h, 1).at("misfires"), 9) << "one fire now for the first; nine without one";
}

// An older store's schedule meta (last fire, anchor) reads as no misfires.
TEST(ScheduleControl, OlderScheduleMetaReadsWithoutMisfires) {
    auto s = tb::make_schedule(every("t", "1m"));
    std::string old_meta = tb::encode_schedule_meta(s).substr(0, 16);
    EXPECT_TRUE(tb::decode_schedule_meta(old_meta));
    EXPECT_EQ(tb::decode_schedule_misfires(old_meta), 0u);
    s.misfires = 7;
    EXPECT_EQ(tb::decode_schedule_misfires(tb::encode_schedule_meta(s)), 7u);
}
