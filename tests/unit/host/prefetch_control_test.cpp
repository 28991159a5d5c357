// The auto prefetch: how deep the local queue should be for tasks of a given
// run time, and when the worker changes it.
#include <gtest/gtest.h>

#include "prefetch_control.hpp"

using taskmill::host::detail::prefetch_control;
using namespace std::chrono_literals;

namespace {

constexpr double us = 1e3;  // ns
constexpr double ms = 1e6;

// `n` tasks of `each_ns` through `c`.
void run(prefetch_control& c, int n, double each_ns) {
    for (int i = 0; i < n; ++i) c.ran(static_cast<uint64_t>(each_ns));
}

}  // namespace

TEST(PrefetchControl, TargetCoversTenMillisecondsOfWorkAcrossTheSlots) {
    EXPECT_EQ(prefetch_control::target(8, 1 * ms, 1024), 80u);  // 8 slots x 10 ms / 1 ms
    EXPECT_EQ(prefetch_control::target(2, 100 * us, 1024), 200u);
    EXPECT_EQ(prefetch_control::target(8, 5 * us, 1024), 1024u);  // capped
    EXPECT_EQ(prefetch_control::target(8, 5 * us, 100), 100u);
    EXPECT_EQ(prefetch_control::target(8, 1000 * ms, 1024), 1u);  // long tasks: one waits, at least
    EXPECT_EQ(prefetch_control::target(8, 0, 1024), 1024u);       // no measurable time
    EXPECT_EQ(prefetch_control::target(1, 3 * ms, 1024), 4u);     // rounds up
}

TEST(PrefetchControl, GrowsForShortTasksAndShrinksForLongOnes) {
    prefetch_control c(2, 8, 1024, false);
    auto t = prefetch_control::clock::now();
    EXPECT_FALSE(c.update(t).has_value());  // nothing ran yet
    run(c, 7, 10 * us);
    EXPECT_FALSE(c.update(t).has_value());  // too few to judge
    run(c, 1, 10 * us);
    EXPECT_EQ(c.update(t), 1024u);  // 2 x 10 ms / 10 us = 2000, capped
    EXPECT_EQ(c.current(), 1024u);

    run(c, 8, 50 * ms);
    EXPECT_FALSE(c.update(t + 5ms).has_value());  // too soon after the last decision
    EXPECT_EQ(c.update(t + 25ms), 1u);            // 2 x 10 ms / 50 ms, at least 1
    EXPECT_EQ(c.current(), 1u);
}

TEST(PrefetchControl, SmallDriftsAreNotWorthAMessage) {
    prefetch_control c(8, 80, 1024, false);
    auto t = prefetch_control::clock::now();
    run(c, 100, 1.2 * ms);  // target 67: within [80 / 2, 80 x 1.5)
    EXPECT_FALSE(c.update(t).has_value());
    EXPECT_EQ(c.current(), 80u);
    run(c, 100, 0.6 * ms);  // target 134: half again as much
    EXPECT_EQ(c.update(t + 25ms), 134u);
}

TEST(PrefetchControl, AFixedPrefetchNeverMoves) {
    prefetch_control c(2, 3, 1024, true);
    run(c, 100, 1 * us);
    EXPECT_FALSE(c.update(prefetch_control::clock::now()).has_value());
    EXPECT_EQ(c.current(), 3u);
    EXPECT_TRUE(c.fixed());
}
