// Schedules: [schedule.NAME] sections of broker.ini, fire-time bookkeeping
// (misfire policy), the engine firing them on the simulated clock (every,
// cron, time zones, restarts, catch-up), and one fire through a real loop.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>

#include <nlohmann/json.hpp>

#include <taskmill/broker/schedule.hpp>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "schedule/schedule_runtime.hpp"

using namespace tmtest;

namespace {

std::string write_ini(const temp_dir& d, const std::string& text) {
    auto p = (d.path / "broker.ini").string();
    std::ofstream(p) << text;
    return p;
}

// The schedules of `file` as taskmill-broker reads them: through the config
// loader, [schedule.*] sections handed to read_schedule_section.
struct read_config {
    std::string data_dir;
    std::vector<tb::schedule_config> schedules;
};

read_config read_schedules(const std::string& file) {
    namespace tc = taskmill::config;
    read_config out;
    std::string config_file;
    tc::loader l("broker");
    l.add("config", tc::text(config_file), "INI file", tc::scope::flag_only);
    l.add("data-dir", tc::text(out.data_dir), "folder");
    l.file_option("config");
    l.sections("schedule.", [&](const tc::section& s) { out.schedules.push_back(tb::read_schedule_section(s)); });
    const char* argv[] = {"broker", "--config", file.c_str()};
    l.load(3, argv, {});
    return out;
}

std::string read_error(const std::string& file) {
    try {
        read_schedules(file);
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

TEST(ScheduleConfig, ReadsSectionsBesideTheOtherOptions) {
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
    auto read = read_schedules(f);
    EXPECT_EQ(read.data_dir, "x");
    const auto& s = read.schedules;
    ASSERT_EQ(s.size(), 2u);
    EXPECT_EQ(s[0].name, "nightly");
    EXPECT_EQ(s[0].cron, "0 3 * * *");
    EXPECT_EQ(s[0].timezone, "Europe/Paris");
    EXPECT_EQ(s[0].payload_json, "{\"ms\": 5}");
    EXPECT_EQ(s[1].every, "30s");
    EXPECT_EQ(s[1].queue, "fast");
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
    EXPECT_NE(read_error(f).find(f + ":4: [schedule.a] already defined at line 1"), std::string::npos);
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

// The tasks a schedule fired, oldest first.
std::vector<tp::task_info> fired(engine_harness& h, const std::string& name) {
    tp::request rq;
    rq.tag = "schedule:" + name;
    rq.limit = 1000;
    auto tasks = h.call(tp::cmd::tasks, rq).tasks;
    std::reverse(tasks.begin(), tasks.end());
    return tasks;
}

// When they were fired, in ms since the harness started.
std::vector<int64_t> fire_times(engine_harness& h, const std::string& name) {
    std::vector<int64_t> out;
    for (const auto& t : fired(h, name)) {
        out.push_back(t.created_ms - sim_epoch_ms);
    }
    return out;
}

nlohmann::json listed(engine_harness& h) {
    auto rep = h.call(tp::cmd::schedules, tp::request{});
    EXPECT_TRUE(rep.ok) << rep.error;
    return nlohmann::json::from_msgpack(rep.data).at("schedules");
}

tb::schedule_config cron(const std::string& name, const std::string& expr, const std::string& tz = "") {
    tb::schedule_config c;
    c.name = name;
    c.handler = "t.tick";
    c.cron = expr;
    c.timezone = tz;
    return c;
}

}  // namespace

TEST(Schedule, EveryFiresOncePerPeriodOnTheDot) {
    auto cfg = sim_config();
    cfg.schedules = {every("tick", "1s")};
    engine_harness h(cfg);
    h.subscribe("schedule.");
    h.advance(3500);
    EXPECT_EQ(fire_times(h, "tick"), (std::vector<int64_t>{1000, 2000, 3000}));
    auto tasks = fired(h, "tick");
    ASSERT_EQ(tasks.size(), 3u);
    EXPECT_EQ(tasks[0].handler, "t.tick");
    EXPECT_EQ(tasks[0].state, "QUEUED");
    auto events = h.events("schedule.fired");
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[1].at_ms, sim_epoch_ms + 2000);
    EXPECT_EQ(events[1].body.at("planned_ms"), sim_epoch_ms + 2000);
    EXPECT_EQ(events[1].body.at("next_ms"), sim_epoch_ms + 3000);
    EXPECT_EQ(events[1].body.at("task"), tasks[1].id);
    auto list = listed(h);
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0].at("name"), "tick");
    EXPECT_EQ(list[0].at("every"), "1s");
    EXPECT_EQ(list[0].at("last_fire_ms"), sim_epoch_ms + 3000);
    EXPECT_EQ(list[0].at("next_fire_ms"), sim_epoch_ms + 4000);
}

// A new schedule is stored at once; it fires at its fire time, not a
// millisecond before, and a further turn at that instant fires nothing more.
TEST(Schedule, ANewScheduleIsStoredAtOnceAndFiresOnceAsATaggedTask) {
    auto cfg = sim_config();
    cfg.schedules = {every("tick", "1m")};
    engine_harness h(cfg);
    {
        auto txn = h.store().begin(false);
        EXPECT_TRUE(txn->get(tb::table::schedules, "tick").has_value());
    }
    EXPECT_EQ(listed(h)[0].at("next_fire_ms"), sim_epoch_ms + 60'000);
    h.subscribe("schedule.");
    h.advance(59'999);
    EXPECT_TRUE(fired(h, "tick").empty());
    h.advance(1);
    h.call(tp::cmd::ping, tp::request{});  // another turn at the same instant
    auto tasks = fired(h, "tick");
    ASSERT_EQ(tasks.size(), 1u);
    EXPECT_EQ(tasks[0].created_ms, sim_epoch_ms + 60'000);
    EXPECT_EQ(tasks[0].handler, "t.tick");
    EXPECT_EQ(tasks[0].tags, std::vector<std::string>{"schedule:tick"});
    auto stats = h.call(tp::cmd::stats, tp::request{});
    ASSERT_TRUE(stats.stats);
    EXPECT_EQ(stats.stats->counters["schedule_fires"], 1u);
    EXPECT_EQ(listed(h)[0].at("next_fire_ms"), sim_epoch_ms + 120'000);
    auto events = h.events("schedule.");
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(events[0].topic, "schedule.fired");
}

// The reply goes to the client that asked, under the request's number.
TEST(Schedule, SchedulesAnswersTheClientThatAsked) {
    auto cfg = sim_config();
    cfg.schedules = {every("tick", "1m")};
    engine_harness h(cfg);
    tp::request rq;
    rq.req = 7;
    h.request(tp::cmd::schedules, rq, "client-1");
    auto out = h.take("client-1");
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].to, tb::target::frontend);
    EXPECT_EQ(out[0].command, "SCHEDULES");
    auto rep = tp::decode_reply(out[0].body);
    ASSERT_TRUE(rep.has_value());
    EXPECT_TRUE(rep->ok) << rep->error;
    EXPECT_EQ(rep->req, 7u);
    EXPECT_FALSE(rep->data.empty());
    EXPECT_TRUE(h.take("client").empty());
}

TEST(Schedule, CronFiresAtTheMinutesItNames) {
    auto cfg = sim_config();
    cfg.schedules = {cron("quarter", "*/15 * * * *")};
    engine_harness h(cfg);
    h.advance(3'600'000);
    EXPECT_EQ(fire_times(h, "quarter"), (std::vector<int64_t>{900'000, 1'800'000, 2'700'000, 3'600'000}));
}

// 03:00 in Paris is 02:00 UTC in winter.
TEST(Schedule, CronReadsItsTimeZone) {
    auto cfg = sim_config();
    cfg.schedules = {cron("nightly", "0 3 * * *", "Europe/Paris")};
    engine_harness h(cfg);
    h.advance(2 * 86'400'000);
    EXPECT_EQ(fire_times(h, "nightly"), (std::vector<int64_t>{7'200'000, 86'400'000 + 7'200'000}));
    EXPECT_EQ(listed(h)[0].at("timezone"), "Europe/Paris");
}

TEST(Schedule, ARestartBeforeTheNextFireDoesNotFire) {
    auto cfg = sim_config();
    cfg.schedules = {every("slow", "3s")};
    engine_harness h(cfg);
    h.advance(3000);
    EXPECT_EQ(fire_times(h, "slow"), std::vector<int64_t>{3000});
    h.restart();
    h.advance(2999);
    EXPECT_EQ(fire_times(h, "slow"), std::vector<int64_t>{3000});
    h.advance(1);
    EXPECT_EQ(fire_times(h, "slow"), (std::vector<int64_t>{3000, 6000}));
}

// After a restart the next fire is the stored one, not a period after the
// start; many fires missed while down make one.
TEST(Schedule, ARestartCarriesOnFromTheStoredFireTime) {
    auto cfg = sim_config();
    cfg.schedules = {every("tick", "1m")};
    engine_harness h(cfg);
    h.advance(60'000);
    EXPECT_EQ(fire_times(h, "tick"), std::vector<int64_t>{60'000});
    h.restart(30'000);
    EXPECT_EQ(listed(h)[0].at("next_fire_ms"), sim_epoch_ms + 120'000) << "not a period after this start";
    h.restart(510'000);  // at 10 min: eight fires missed, and one due now
    h.advance(0);
    EXPECT_EQ(fire_times(h, "tick"), (std::vector<int64_t>{60'000, 600'000}));
    EXPECT_EQ(listed(h)[0].at("next_fire_ms"), sim_epoch_ms + 660'000) << "the cadence starts again from there";
}

// Misfire: runs missed while the broker was down fire once, at start, and
// the cadence starts again from there.
TEST(Schedule, RunsMissedWhileDownFireOnceAtStart) {
    auto cfg = sim_config();
    cfg.schedules = {every("missed", "1s")};
    engine_harness h(cfg);
    h.advance(1000);
    EXPECT_EQ(fire_times(h, "missed"), std::vector<int64_t>{1000});
    h.restart(3300);  // down for 3.3 periods
    h.advance(0);
    EXPECT_EQ(fire_times(h, "missed"), (std::vector<int64_t>{1000, 4300}));
    h.advance(2000);
    EXPECT_EQ(fire_times(h, "missed"), (std::vector<int64_t>{1000, 4300, 5300, 6300}));
}

// A fire that comes while new work is refused is skipped, not postponed:
// the schedule keeps its cadence and says so in its counters.
TEST(Schedule, AFireWhileNewWorkIsRefusedIsSkipped) {
    auto cfg = sim_config();
    cfg.schedules = {every("tick", "1s")};
    engine_harness h(cfg);
    h.hold_new_work(1500, "test hold");
    h.advance(1000);
    EXPECT_TRUE(fired(h, "tick").empty());
    EXPECT_EQ(listed(h)[0].at("next_fire_ms"), sim_epoch_ms + 2000) << "skipped, not retried";
    h.advance(2000);
    EXPECT_EQ(fire_times(h, "tick"), (std::vector<int64_t>{2000, 3000}));
    auto stats = h.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(stats.stats->counters["schedule_skips"], 1u);
    EXPECT_EQ(stats.stats->counters["schedule_fires"], 2u);
}

// Through the real loop: a schedule whose stored fire time is long past
// (the broker was down) fires at once when the broker starts, as a task
// any client can list.
TEST_F(broker_test, AScheduleDueAtStartFiresThroughTheLoop) {
    auto s = tb::make_schedule(every("due", "1h"));
    {
        auto st = tb::open_lmdb_store({.dir = cfg_.data_dir, .map_size_bytes = 64ull << 20});
        const int64_t long_ago = tb::now_ms() - 2 * 3'600'000;
        tb::restore_schedule(s, std::pair<int64_t, int64_t>{long_ago, long_ago}, long_ago);
        auto txn = st->begin(true);
        ASSERT_TRUE(txn->put(tb::table::schedules, "due", tb::encode_schedule_meta(s)));
        ASSERT_TRUE(txn->commit());
    }
    cfg_.schedules = {every("due", "1h")};
    start();
    client c(ctx_, fe());
    tp::request rq;
    rq.tag = "schedule:due";
    auto deadline = std::chrono::steady_clock::now() + 5s;
    std::vector<tp::task_info> tasks;
    while (tasks.empty() && std::chrono::steady_clock::now() < deadline) {
        tasks = c.call(tp::cmd::tasks, rq).tasks;
    }
    ASSERT_EQ(tasks.size(), 1u);
    EXPECT_EQ(tasks[0].handler, "t.tick");
    auto list = c.call(tp::cmd::schedules, tp::request{});
    ASSERT_TRUE(list.ok);
    auto listed = nlohmann::json::from_msgpack(list.data).at("schedules");
    EXPECT_GT(listed[0].at("next_fire_ms").get<int64_t>(), tb::now_ms() + 3'500'000) << "the next one an hour on";
}
