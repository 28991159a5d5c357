// broker.ini retention options and [queue.NAME] / [handler.NAME] sections,
// read the way taskmill-broker reads them; and the duration and rate texts
// they are written in.
#include <gtest/gtest.h>

#include <fstream>

#include <taskmill/broker/queue_config.hpp>
#include <taskmill/protocol/duration.hpp>

#include "broker_harness.hpp"
#include "options_harness.hpp"

using namespace tmtest;
namespace tp = taskmill::protocol;

TEST(Duration, ReadsUnitsAndSums) {
    EXPECT_EQ(*tp::parse_duration_ms("0"), 0);
    EXPECT_EQ(*tp::parse_duration_ms("250ms"), 250);
    EXPECT_EQ(*tp::parse_duration_ms("30s"), 30'000);
    EXPECT_EQ(*tp::parse_duration_ms("5m"), 300'000);
    EXPECT_EQ(*tp::parse_duration_ms("24h"), 86'400'000);
    EXPECT_EQ(*tp::parse_duration_ms("7d"), 7 * 86'400'000LL);
    EXPECT_EQ(*tp::parse_duration_ms("1h30m"), 5'400'000);
    EXPECT_EQ(*tp::parse_duration_ms("1m500ms"), 60'500);
}

TEST(Duration, RefusesWhatIsNotOne) {
    for (const char* bad : {"", "5", "h", "-1s", "1.5h", "5x", "1h 30m", "99999999999999999999d", "36600000d"}) {
        auto r = tp::parse_duration_ms(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, taskmill::errc::invalid_argument);
        EXPECT_NE(r.error().message.find("duration '"), std::string::npos) << r.error().message;
    }
}

TEST(Duration, FormatsWhatItReadsBack) {
    for (int64_t ms : {int64_t{0}, int64_t{250}, int64_t{90'000}, int64_t{86'400'000}, int64_t{93'784'005}}) {
        EXPECT_EQ(*tp::parse_duration_ms(tp::format_duration_ms(ms)), ms) << tp::format_duration_ms(ms);
    }
    EXPECT_EQ(tp::format_duration_ms(90'000), "1m30s");
    EXPECT_EQ(tp::format_duration_ms(-5), "0");
}

TEST(Rate, ReadsPerSecondMinuteHour) {
    EXPECT_DOUBLE_EQ(*tb::parse_rate("100/s"), 100);
    EXPECT_DOUBLE_EQ(*tb::parse_rate("60/m"), 1);
    EXPECT_DOUBLE_EQ(*tb::parse_rate("36/h"), 0.01);
    EXPECT_DOUBLE_EQ(*tb::parse_rate("2.5"), 2.5);
    for (const char* bad : {"", "0/s", "-1/s", "nan", "inf/s", "10/d", "x/s", "1e10/s", "5/"}) {
        EXPECT_FALSE(tb::parse_rate(bad)) << bad;
    }
}

TEST(QueueConfig, RetentionDefaultsAreADayAndAWeek) {
    temp_dir d;
    auto o = load(d, "data-dir = x\n");
    EXPECT_EQ(o.cfg.retention.succeeded_ms, tb::day_ms);
    EXPECT_EQ(o.cfg.retention.failed_ms, 7 * tb::day_ms);
    EXPECT_EQ(o.cfg.retention.cancelled_ms, 7 * tb::day_ms);
    EXPECT_EQ(o.cfg.retention.expired_ms, 7 * tb::day_ms);
}

TEST(QueueConfig, ReadsRetentionAndSections) {
    temp_dir d;
    auto o = load(d,
                  "retention-succeeded = 1h\n"
                  "retention-failed = 0\n"
                  "[queue.emails]\n"
                  "retention-succeeded = 10m\n"
                  "rate = 600/m\n"
                  "burst = 20\n"
                  "max-running = 3\n"
                  "[handler.img.resize]\n"
                  "max-running = 2\n");
    EXPECT_EQ(o.cfg.retention.succeeded_ms, 3'600'000);
    EXPECT_EQ(o.cfg.retention.failed_ms, 0);
    ASSERT_EQ(o.cfg.queues.size(), 1u);
    const auto& q = o.cfg.queues[0];
    EXPECT_EQ(q.name, "emails");
    EXPECT_EQ(q.retention.succeeded_ms, 600'000);
    EXPECT_FALSE(q.retention.failed_ms);
    EXPECT_DOUBLE_EQ(*q.flow.rate, 10);
    EXPECT_EQ(q.flow.burst, 20u);
    EXPECT_EQ(q.flow.max_running, 3u);
    ASSERT_EQ(o.cfg.handlers.size(), 1u);
    EXPECT_EQ(o.cfg.handlers[0].name, "img.resize");
    EXPECT_EQ(o.cfg.handlers[0].flow.max_running, 2u);
    EXPECT_FALSE(o.cfg.handlers[0].flow.rate);
}

TEST(QueueConfig, BadValuesNameTheirLine) {
    temp_dir d;
    EXPECT_NE(load_error(d, "retention-succeeded = forever\n").find("retention-succeeded"), std::string::npos);
    auto e = load_error(d, "[queue.q]\nrate = fast\n");
    EXPECT_NE(e.find("broker.ini:2"), std::string::npos) << e;
    EXPECT_NE(e.find("rate"), std::string::npos) << e;
    e = load_error(d, "[queue.q]\nmax-running = 0\n");
    EXPECT_NE(e.find("max-running"), std::string::npos) << e;
    e = load_error(d, "[queue.q]\ncolour = red\n");
    EXPECT_NE(e.find("unknown key 'colour'"), std::string::npos) << e;
    e = load_error(d, "[handler.img.resize@2]\nburst = 3\n");
    EXPECT_NE(e.find("not a handler name"), std::string::npos) << e;
    e = load_error(d, "[handler.img.resize]\nretention-failed = 1d\n");
    EXPECT_NE(e.find("unknown key"), std::string::npos) << e;
}
