// Input bounds: ranges of durations and the deadlines computed from them.
#include <limits>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "broker_harness.hpp"
#include "timers.hpp"
#include "validate.hpp"

using namespace tmtest;

namespace {

class Limits : public broker_test {};

// The broker still answers: it did not crash or stall on what came before.
void expect_alive(client& c) {
    auto rep = c.call(tp::cmd::ping, tp::request{});
    EXPECT_TRUE(rep.ok) << rep.error;
}

constexpr int64_t ten_years_ms = taskmill::broker::max_duration_ms;

}  // namespace

TEST(Deadlines, AdditionSaturatesInsteadOfOverflowing) {
    using taskmill::broker::add_ms;
    constexpr auto max = std::numeric_limits<int64_t>::max();
    EXPECT_EQ(add_ms(1000, 2000, 3), 3003);
    EXPECT_EQ(add_ms(max - 10, 5, 100), max);
    EXPECT_EQ(add_ms(1'700'000'000'000, max), max);
    EXPECT_EQ(add_ms(std::numeric_limits<int64_t>::min() + 1, -5), std::numeric_limits<int64_t>::min());
}

TEST_F(Limits, DurationsBeyondTenYearsAreRefused) {
    start();
    client c(ctx_, fe());
    constexpr auto max = std::numeric_limits<int64_t>::max();
    using field = std::optional<int64_t> tp::task_spec::*;
    for (field f : {&tp::task_spec::timeout_ms, &tp::task_spec::delay_ms, &tp::task_spec::ttl_ms,
                    &tp::task_spec::backoff_base_ms, &tp::task_spec::backoff_cap_ms, &tp::task_spec::eta_ms}) {
        for (int64_t v : {max, max - 1000, ten_years_ms + 1'800'000'000'000}) {
            tp::request rq;
            auto t = task("a.b");
            t.*f = v;
            rq.tasks = {t};
            auto rep = c.call(tp::cmd::submit, rq);
            EXPECT_FALSE(rep.ok) << v;
            EXPECT_EQ(rep.error_code, "invalid_argument") << rep.error;
        }
    }
    // The maximum itself is fine, and a ten-year delay does not run now.
    auto t = task("a.b");
    t.timeout_ms = ten_years_ms;
    t.ttl_ms = ten_years_ms;
    t.delay_ms = ten_years_ms;
    auto ids = c.submit({t});
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(c.status(ids[0]).state, "PENDING");
    expect_alive(c);
}

TEST_F(Limits, WorkflowStepNumbersMustBeIntegersInRange) {
    start();
    client c(ctx_, fe());
    for (const char* step : {R"({"name": "a", "handler": "t.echo", "retries": 2.7})",
                             R"({"name": "a", "handler": "t.echo", "retries": 1e30})",
                             R"({"name": "a", "handler": "t.echo", "priority": 4294967297})",
                             R"({"name": "a", "handler": "t.echo", "timeout_ms": 9223372036854775807})",
                             R"({"name": "a", "handler": "t.echo", "timeout": 1e300})",
                             R"({"name": "a", "handler": "t.echo", "timeout": -1})"}) {
        auto def = nlohmann::json{{"steps", nlohmann::json::array({nlohmann::json::parse(step)})}};
        auto bytes = nlohmann::json::to_msgpack(def);
        tp::request rq;
        rq.data.assign(bytes.begin(), bytes.end());
        auto rep = c.call("WF_SUBMIT", rq);
        EXPECT_FALSE(rep.ok) << step;
        EXPECT_EQ(rep.error_code, "invalid_argument") << step << " -> " << rep.error;
    }
    expect_alive(c);
}
