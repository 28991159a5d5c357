// Cron expressions: parsing, errors, and next fire times across month ends,
// leap days and the DST changes of a real time zone (tzdata).
#include <gtest/gtest.h>

#include <cctz/civil_time.h>
#include <cctz/time_zone.h>

#include "schedule/cron.hpp"

namespace tb = taskmill::broker;

namespace {

int64_t at(const char* zone, int y, int mo, int d, int h, int mi) {
    cctz::time_zone tz;
    EXPECT_TRUE(cctz::load_time_zone(zone, &tz));
    auto tp = cctz::convert(cctz::civil_second(y, mo, d, h, mi, 0), tz);
    return static_cast<int64_t>(tp.time_since_epoch().count()) * 1000;
}
int64_t utc(int y, int mo, int d, int h, int mi) { return at("UTC", y, mo, d, h, mi); }

tb::cron_expr cron(const char* text, const char* zone = "") {
    auto e = tb::parse_cron(text, zone);
    EXPECT_TRUE(e) << text << ": " << (e ? "" : e.error().message);
    return e ? *e : tb::cron_expr{};
}

std::string error_of(const char* text, const char* zone = "") {
    auto e = tb::parse_cron(text, zone);
    return e ? std::string() : e.error().message;
}

}  // namespace

TEST(Cron, ParsesRangesListsStepsAndNames) {
    auto e = cron("*/15 9-17/4 1,15 jan-MAR mon-fri");
    EXPECT_EQ(e.minutes.count(), 4u);
    EXPECT_TRUE(e.minutes[45]);
    EXPECT_TRUE(e.hours[9] && e.hours[13] && e.hours[17] && !e.hours[10]);
    EXPECT_TRUE(e.days[1] && e.days[15] && !e.days[2]);
    EXPECT_TRUE(e.months[1] && e.months[3] && !e.months[4]);
    EXPECT_TRUE(e.weekdays[1] && e.weekdays[5] && !e.weekdays[0] && !e.weekdays[6]);
    EXPECT_TRUE(cron("0 0 * * 7").weekdays[0]);  // 7 = Sunday
    EXPECT_TRUE(cron("5/20 * * * *").minutes[45]);
    EXPECT_EQ(cron("@daily").hours.count(), 1u);
    EXPECT_EQ(cron("@hourly").minutes.count(), 1u);
}

TEST(Cron, RejectsMalformedExpressionsWithTheReason) {
    EXPECT_NE(error_of("* * * *").find("5 fields"), std::string::npos);
    EXPECT_NE(error_of("60 * * * *").find("minute field: 60 is out of range 0-59"), std::string::npos);
    EXPECT_NE(error_of("* 24 * * *").find("hour"), std::string::npos);
    EXPECT_NE(error_of("* * 0 * *").find("day of month"), std::string::npos);
    EXPECT_NE(error_of("* * * foo *").find("month field: 'foo'"), std::string::npos);
    EXPECT_NE(error_of("5-1 * * * *").find("backwards"), std::string::npos);
    EXPECT_NE(error_of("*/0 * * * *").find("step"), std::string::npos);
    EXPECT_NE(error_of("1,,2 * * * *").find("empty"), std::string::npos);
    EXPECT_NE(error_of("0 0 30 2 *").find("never"), std::string::npos);
    EXPECT_NE(error_of("0 3 * * *", "Mars/Olympus").find("unknown time zone"), std::string::npos);
}

TEST(Cron, NextFireInUtc) {
    auto e = cron("0 3 * * *");
    EXPECT_EQ(tb::next_fire(e, utc(2024, 1, 1, 5, 0)), utc(2024, 1, 2, 3, 0));
    EXPECT_EQ(tb::next_fire(e, utc(2024, 1, 1, 2, 59)), utc(2024, 1, 1, 3, 0));
    // Strictly after: a fire time itself gives the next one.
    EXPECT_EQ(tb::next_fire(e, utc(2024, 1, 1, 3, 0)), utc(2024, 1, 2, 3, 0));
    EXPECT_EQ(tb::next_fire(cron("*/15 * * * *"), utc(2024, 1, 1, 23, 50)), utc(2024, 1, 2, 0, 0));
    EXPECT_EQ(tb::next_fire(cron("0 0 1 1 *"), utc(2024, 6, 1, 0, 0)), utc(2025, 1, 1, 0, 0));
}

TEST(Cron, MonthEndsSkipShortMonths) {
    auto e = cron("0 0 31 * *");
    EXPECT_EQ(tb::next_fire(e, utc(2024, 4, 1, 0, 0)), utc(2024, 5, 31, 0, 0));
    EXPECT_EQ(tb::next_fire(e, utc(2024, 5, 31, 0, 0)), utc(2024, 7, 31, 0, 0));
    EXPECT_EQ(tb::next_fire(cron("0 12 30 * *"), utc(2023, 1, 31, 0, 0)), utc(2023, 3, 30, 12, 0));
}

TEST(Cron, LeapDays) {
    auto e = cron("0 0 29 2 *");
    EXPECT_EQ(tb::next_fire(e, utc(2023, 3, 1, 0, 0)), utc(2024, 2, 29, 0, 0));
    EXPECT_EQ(tb::next_fire(e, utc(2024, 2, 29, 0, 0)), utc(2028, 2, 29, 0, 0));
    // 2100 is not a leap year: the next 29 February after 2096 is in 2104.
    EXPECT_EQ(tb::next_fire(e, utc(2096, 3, 1, 0, 0)), utc(2104, 2, 29, 0, 0));
}

TEST(Cron, DayOfMonthOrDayOfWeekWhenBothAreRestricted) {
    auto e = cron("0 0 13 * fri");
    // 2024-09-06 is a Friday; 2024-09-13 is both.
    EXPECT_EQ(tb::next_fire(e, utc(2024, 9, 1, 0, 0)), utc(2024, 9, 6, 0, 0));
    EXPECT_EQ(tb::next_fire(e, utc(2024, 9, 6, 0, 0)), utc(2024, 9, 13, 0, 0));
    auto only_dow = cron("0 0 * * mon");  // dom '*': weekday alone decides
    EXPECT_EQ(tb::next_fire(only_dow, utc(2024, 9, 1, 0, 0)), utc(2024, 9, 2, 0, 0));
}

TEST(Cron, InATimeZone) {
    auto e = cron("0 3 * * *", "Europe/Paris");
    // Winter: UTC+1.
    EXPECT_EQ(tb::next_fire(e, utc(2024, 1, 10, 0, 0)), utc(2024, 1, 10, 2, 0));
    // Summer: UTC+2.
    EXPECT_EQ(tb::next_fire(e, utc(2024, 7, 10, 0, 0)), utc(2024, 7, 10, 1, 0));
}

TEST(Cron, SpringForwardFiresOnceAtTheTransition) {
    // New York, 2024-03-10: 02:00 EST jumps to 03:00 EDT (07:00Z); 02:30 does not exist.
    const char* ny = "America/New_York";
    auto e = cron("30 2 * * *", ny);
    EXPECT_EQ(tb::next_fire(e, at(ny, 2024, 3, 10, 0, 0)), utc(2024, 3, 10, 7, 0));
    EXPECT_EQ(tb::next_fire(e, utc(2024, 3, 10, 7, 0)), at(ny, 2024, 3, 11, 2, 30));
    // An hourly job in the missing hour runs once at 03:00, not twice.
    auto hourly = cron("0 * * * *", ny);
    EXPECT_EQ(tb::next_fire(hourly, at(ny, 2024, 3, 10, 1, 0)), utc(2024, 3, 10, 7, 0));
    EXPECT_EQ(tb::next_fire(hourly, utc(2024, 3, 10, 7, 0)), utc(2024, 3, 10, 8, 0));
}

TEST(Cron, FallBackFiresOnceAtTheFirstOccurrence) {
    // New York, 2024-11-03: 02:00 EDT falls back to 01:00 EST (06:00Z); 01:30 happens twice.
    const char* ny = "America/New_York";
    auto e = cron("30 1 * * *", ny);
    auto first = tb::next_fire(e, utc(2024, 11, 3, 4, 0));
    EXPECT_EQ(first, utc(2024, 11, 3, 5, 30));  // 01:30 EDT
    // Not again at 01:30 EST (06:30Z): the next is the following day.
    EXPECT_EQ(tb::next_fire(e, *first), utc(2024, 11, 4, 6, 30));
    // Asked during the repeated hour, after the first 01:30, still the next day.
    EXPECT_EQ(tb::next_fire(e, utc(2024, 11, 3, 6, 10)), utc(2024, 11, 4, 6, 30));
}

TEST(Cron, EveryIntervals) {
    EXPECT_EQ(*tb::parse_every("30s"), 30'000);
    EXPECT_EQ(*tb::parse_every("5m"), 300'000);
    EXPECT_EQ(*tb::parse_every("2h"), 7'200'000);
    EXPECT_EQ(*tb::parse_every("1d"), 86'400'000);
    EXPECT_FALSE(tb::parse_every("0s"));
    EXPECT_FALSE(tb::parse_every("5"));
    EXPECT_FALSE(tb::parse_every("5x"));
    EXPECT_FALSE(tb::parse_every("s"));
    EXPECT_FALSE(tb::parse_every("-1m"));
    EXPECT_FALSE(tb::parse_every("99999999999999999999s"));
}
