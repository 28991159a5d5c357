// Points in time as the CLI and the HTTP API read them.
#include <gtest/gtest.h>

#include <taskmill/protocol/time_text.hpp>

namespace tp = taskmill::protocol;

namespace {
constexpr int64_t now = 1'767'225'600'000;  // 2026-01-01T00:00:00Z
}

TEST(TimeText, ReadsIso8601InUtc) {
    EXPECT_EQ(*tp::parse_time_ms("2026-01-01T00:00:00Z", 0), now);
    EXPECT_EQ(*tp::parse_time_ms("2026-01-01 00:00:01.25Z", 0), now + 1250);
    EXPECT_EQ(*tp::parse_time_ms("2026-01-02", 0), now + 86'400'000);
    EXPECT_EQ(*tp::parse_time_ms("2025-12-31T23:59:59z", 0), now - 1000);
}

TEST(TimeText, ReadsADurationAgo) {
    EXPECT_EQ(*tp::parse_time_ms("1h", now), now - 3'600'000);
    EXPECT_EQ(*tp::parse_time_ms("1h30m", now), now - 5'400'000);
    EXPECT_EQ(*tp::parse_time_ms("0", now), now);
}

TEST(TimeText, RefusesWhatIsNeither) {
    for (const char* bad : {"", "yesterday", "2026-13-01", "2026-02-30", "2026-01-01T10:00:00",
                            "2026-01-01T10:00:00+02:00", "2026-01-01T25:00:00Z", "2026-01-01T10:00:00.Z", "-1h"}) {
        auto r = tp::parse_time_ms(bad, now);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, taskmill::errc::invalid_argument) << bad;
        EXPECT_NE(r.error().message.find("ISO 8601"), std::string::npos) << bad;
    }
}
