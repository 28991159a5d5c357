// Schedules: [schedule.NAME] sections of broker.ini, fire-time bookkeeping
// (misfire policy), and a real broker firing an `every = 1s` schedule and
// not double-firing across a restart.
#include <gtest/gtest.h>

#include <fstream>

#include <taskmill/broker/schedule.hpp>

#include "broker_harness.hpp"
#include "schedule/schedule_runtime.hpp"

using namespace tmtest;

namespace {

std::string write_ini(const temp_dir& d, const std::string& text) {
    auto p = (d.path / "broker.ini").string();
    std::ofstream(p) << text;
    return p;
}

std::string read_error(const std::string& file) {
    try {
        tb::read_schedule_sections(file);
    } catch (const std::exception& e) {
        return e.what();
    }
    return {};
}

tb::schedule_config every(const std::string& name, const std::string& period) {
    tb::schedule_config c;
    c.name = name;
    c.handler = "t.tick";
    c.every = period;
    c.payload_json = R"({"n": 1})";
    return c;
}

}  // namespace

TEST(ScheduleConfig, ReadsSectionsAndBlanksThemForTheOptionParser) {
    temp_dir d;
    auto f = write_ini(d,
                       "data-dir = x\n"
                       "[schedule.nightly]\n"
                       "handler = demo.sleep\n"
                       "payload = {\"ms\": 5}\n"
                       "cron = \"0 3 * * *\"\n"
                       "timezone = Europe/Paris\n"
                       "[schedule.tick]\n"
                       "handler = echo.echo\n"
                       "every = 30s\n"
                       "queue = fast\n");
    auto s = tb::read_schedule_sections(f);
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].name, "nightly");
    EXPECT_EQ(s[0].cron, "0 3 * * *");
    EXPECT_EQ(s[0].timezone, "Europe/Paris");
    EXPECT_EQ(s[0].payload_json, "{\"ms\": 5}");
    EXPECT_EQ(s[1].every, "30s");
    EXPECT_EQ(s[1].queue, "fast");
    auto rest = tb::without_schedule_sections(f);
    EXPECT_EQ(rest.find("schedule"), std::string::npos);
    EXPECT_EQ(std::count(rest.begin(), rest.end(), '\n'), 10);
    EXPECT_NE(rest.find("data-dir = x"), std::string::npos);
}

TEST(ScheduleConfig, ErrorsNameFileLineAndReason) {
    temp_dir d;
    auto f = write_ini(d, "[schedule.bad]\nhandler = a.b\ncron = 0 25 * * *\n");
    EXPECT_EQ(read_error(f), f + ":3: schedule bad: cron '0 25 * * *': hour field: 25 is out of range 0-23");
    f = write_ini(d, "[schedule.bad]\nhandler = a.b\nevery = 10y\n");
    EXPECT_NE(read_error(f).find(f + ":3: schedule bad: every = '10y'"), std::string::npos) << read_error(f);
    f = write_ini(d, "[schedule.bad]\nhandler = a.b\nevery = 1s\nwhen = now\n");
    EXPECT_NE(read_error(f).find(f + ":4: unknown key 'when'"), std::string::npos) << read_error(f);
    f = write_ini(d, "\n[schedule.bad]\nevery = 1s\n");
    EXPECT_NE(read_error(f).find(f + ":2: schedule bad: handler"), std::string::npos) << read_error(f);
    f = write_ini(d, "[schedule.bad]\nhandler = a.b\nevery = 1s\ncron = * * * * *\n");
    EXPECT_NE(read_error(f).find("exactly one of"), std::string::npos) << read_error(f);
    f = write_ini(d, "[schedule.bad]\nhandler = a.b\ncron = 0 3 * * *\ntimezone = Nowhere/City\n");
    EXPECT_NE(read_error(f).find(f + ":4:"), std::string::npos) << read_error(f);
    f = write_ini(d, "[schedule.bad]\nhandler = a.b\nevery = 1s\npayload = {oops\n");
    EXPECT_NE(read_error(f).find(f + ":4: schedule bad: payload is not valid JSON"), std::string::npos);
    // Before: a deep payload crashed make_schedule in to_msgpack, and an
    // every near 2^63 ms overflowed the next fire time.
    f = write_ini(d, "[schedule.bad]\nhandler = a.b\nevery = 1s\npayload = " + std::string(100000, '[') +
                         std::string(100000, ']') + "\n");
    EXPECT_NE(read_error(f).find("deeper than 128"), std::string::npos) << read_error(f).substr(0, 200);
    f = write_ini(d, "[schedule.bad]\nhandler = a.b\nevery = 3651d\n");
    EXPECT_NE(read_error(f).find("longer than 10 years"), std::string::npos) << read_error(f);
    f = write_ini(d, "[schedule.a]\nhandler = a.b\nevery = 1s\n[schedule.a]\nhandler = a.b\nevery = 2s\n");
    EXPECT_NE(read_error(f).find(f + ":4: schedule a already defined at line 1"), std::string::npos);
}

TEST(ScheduleRuntime, EveryKeepsCadenceAndCollapsesMissedRuns) {
    auto s = tb::make_schedule(every("t", "1s"));
    tb::restore_schedule(s, std::nullopt, 10'000);  // first seen: one period from now
    EXPECT_EQ(s.next_ms, 11'000);
    EXPECT_FALSE(tb::schedule_due(s, 10'999));
    EXPECT_TRUE(tb::schedule_due(s, 11'000));
    tb::schedule_fired(s, 11'020);  // a little late: cadence kept
    EXPECT_EQ(s.next_ms, 12'000);
    EXPECT_EQ(s.last_fire_ms, 11'020);
    tb::schedule_fired(s, 15'500);  // far behind: one fire, then from now
    EXPECT_EQ(s.next_ms, 16'500);
}

TEST(ScheduleRuntime, RestoredScheduleFiresAMissedRunOnceAtStart) {
    auto s = tb::make_schedule(every("t", "1m"));
    tb::restore_schedule(s, std::pair<int64_t, int64_t>{60'000, 60'000}, 600'000);
    EXPECT_EQ(s.last_fire_ms, 60'000);
    EXPECT_TRUE(tb::schedule_due(s, 600'000));  // missed while down
    tb::schedule_fired(s, 600'000);
    EXPECT_EQ(s.next_ms, 660'000);
    EXPECT_FALSE(tb::schedule_due(s, 600'001));  // only once
    // Not missed: a restart before the next fire time does not fire.
    auto r = tb::make_schedule(every("t", "1m"));
    tb::restore_schedule(r, std::pair<int64_t, int64_t>{600'000, 600'000}, 630'000);
    EXPECT_FALSE(tb::schedule_due(r, 630'000));
    EXPECT_EQ(r.next_ms, 660'000);
    auto meta = tb::decode_schedule_meta(tb::encode_schedule_meta(s));
    ASSERT_TRUE(meta);
    EXPECT_EQ(meta->first, 600'000);
}

namespace {

class Schedule : public broker_test {
protected:
    // Same data folder, fresh inproc endpoints (an inproc name is released
    // asynchronously after its socket closes).
    void restart() {
        stop();
        auto schedules = cfg_.schedules;
        cfg_ = test_config(dir_.path.string());
        cfg_.schedules = schedules;
        start();
    }
    std::size_t fired(client& c, const std::string& name) {
        tp::request rq;
        rq.tag = "schedule:" + name;
        rq.limit = 1000;
        return c.call(tp::cmd::tasks, rq).tasks.size();
    }
};

}  // namespace

TEST_F(Schedule, EverySecondFiresAboutOnceASecond) {
    cfg_.schedules = {every("tick", "1s")};
    auto t0 = std::chrono::steady_clock::now();
    start();
    client c(ctx_, fe());
    // Watch for 3.5 s: fires at about 1, 2 and 3 s.
    while (std::chrono::steady_clock::now() - t0 < 3500ms) {
        std::this_thread::sleep_for(50ms);
    }
    auto n = fired(c, "tick");
    EXPECT_GE(n, 2u);
    EXPECT_LE(n, 4u);
    tp::request rq;
    rq.tag = "schedule:tick";
    auto tasks = c.call(tp::cmd::tasks, rq).tasks;
    ASSERT_FALSE(tasks.empty());
    EXPECT_EQ(tasks[0].handler, "t.tick");
    auto list = c.call("SCHEDULES", tp::request{});
    ASSERT_TRUE(list.ok);
    EXPECT_NE(list.data.find("tick"), std::string::npos);
}

TEST_F(Schedule, RestartDoesNotDoubleFire) {
    cfg_.schedules = {every("slow", "3s")};
    start();
    std::size_t before = 0;
    {
        client c(ctx_, fe());
        auto until = std::chrono::steady_clock::now() + 5s;
        while (fired(c, "slow") == 0 && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(20ms);
        }
        before = fired(c, "slow");
        ASSERT_EQ(before, 1u);
    }
    // Restart right after the fire: the next one is ~3 s away, so nothing
    // fires at start.
    restart();
    client c(ctx_, fe());
    auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < 1500ms) {
        std::this_thread::sleep_for(50ms);
    }
    EXPECT_EQ(fired(c, "slow"), before);
}

TEST_F(Schedule, AMissedRunFiresOnceAtStart) {
    cfg_.schedules = {every("missed", "1s")};
    start();
    {
        client c(ctx_, fe());
        auto until = std::chrono::steady_clock::now() + 5s;
        while (fired(c, "missed") == 0 && std::chrono::steady_clock::now() < until) {
            std::this_thread::sleep_for(20ms);
        }
        ASSERT_EQ(fired(c, "missed"), 1u);
    }
    stop();
    // Down for ~3.3 periods: the restart fires once, not three times.
    std::this_thread::sleep_for(3300ms);  // the outage under test, not a synchronisation
    restart();
    client c(ctx_, fe());
    auto until = std::chrono::steady_clock::now() + 2s;
    while (fired(c, "missed") < 2 && std::chrono::steady_clock::now() < until) {
        std::this_thread::sleep_for(10ms);
    }
    EXPECT_EQ(fired(c, "missed"), 2u);
}
