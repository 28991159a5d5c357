// Input bounds: nesting depth of msgpack values, ranges of durations and
// the deadlines computed from them.
#include <limits>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <taskmill/protocol/nesting.hpp>

#include "broker_harness.hpp"
#include "timers.hpp"
#include "validate.hpp"

using namespace tmtest;

namespace {

class Limits : public broker_test {};

// A msgpack value: `levels` arrays of one element around a nil.
std::string nested_msgpack(std::size_t levels) { return std::string(levels, '\x91') + '\xc0'; }

// The broker still answers: it did not crash or stall on what came before.
void expect_alive(client& c) {
    auto rep = c.call(tp::cmd::ping, tp::request{});
    EXPECT_TRUE(rep.ok) << rep.error;
}

constexpr int64_t ten_years_ms = taskmill::broker::max_duration_ms;

}  // namespace

TEST(Nesting, ScannerCountsContainersOfEveryHeaderKind) {
    using tp::msgpack_within_nesting;
    EXPECT_TRUE(msgpack_within_nesting(""));
    EXPECT_TRUE(msgpack_within_nesting("\xc0"));
    EXPECT_TRUE(msgpack_within_nesting(nested_msgpack(128)));
    EXPECT_FALSE(msgpack_within_nesting(nested_msgpack(129)));
    EXPECT_FALSE(msgpack_within_nesting(nested_msgpack(200000)));
    EXPECT_TRUE(msgpack_within_nesting(nested_msgpack(3), 3));
    EXPECT_FALSE(msgpack_within_nesting(nested_msgpack(4), 3));
    // Siblings do not add up: [[], [], []] is 2 deep.
    EXPECT_TRUE(msgpack_within_nesting(std::string("\x93\x90\x90\x90", 4), 2));
    // map16 {"a": [ [ ] ]} via array16 / array32 headers, and a str8 + bin8
    // + fixext value skipped on the way.
    std::string deep = std::string("\xde\x00\x01", 3) + "\xa1" "a" + std::string("\xdc\x00\x01", 3) +
                       std::string("\xdd\x00\x00\x00\x03", 5) + std::string("\xd9\x02xy", 4) +
                       std::string("\xc4\x01\x00", 3) + std::string("\xd4\x01\x02", 3);
    EXPECT_TRUE(msgpack_within_nesting(deep, 3));
    EXPECT_FALSE(msgpack_within_nesting(deep, 2));
    // A length that runs past the end is not judged here (the decoder refuses it).
    EXPECT_TRUE(msgpack_within_nesting(std::string("\xdd\xff\xff\xff\xff", 5), 1));
    EXPECT_TRUE(msgpack_within_nesting(std::string("\xc6\xff\xff\xff\xff", 5)));
}

TEST(Nesting, JsonParseRefusesDeepTextAndHugeNumbers) {
    auto deep = std::string(100000, '[') + std::string(100000, ']');
    auto r = tp::parse_json<nlohmann::json>(deep, "body");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, taskmill::errc::invalid_argument);
    EXPECT_NE(r.error().message.find("deeper than 128"), std::string::npos) << r.error().message;
    EXPECT_TRUE(tp::parse_json<nlohmann::json>(std::string(128, '[') + std::string(128, ']'), "body"));
    EXPECT_FALSE(tp::parse_json<nlohmann::json>(std::string(129, '[') + std::string(129, ']'), "body"));
    auto huge = tp::parse_json<nlohmann::json>(R"({"n": 1e400})", "body");
    ASSERT_FALSE(huge);
    EXPECT_EQ(huge.error().code, taskmill::errc::invalid_argument);
}

TEST(Deadlines, AdditionSaturatesInsteadOfOverflowing) {
    using taskmill::broker::add_ms;
    constexpr auto max = std::numeric_limits<int64_t>::max();
    EXPECT_EQ(add_ms(1000, 2000, 3), 3003);
    EXPECT_EQ(add_ms(max - 10, 5, 100), max);
    EXPECT_EQ(add_ms(1'700'000'000'000, max), max);
    EXPECT_EQ(add_ms(std::numeric_limits<int64_t>::min() + 1, -5), std::numeric_limits<int64_t>::min());
}

TEST_F(Limits, WorkflowDataNested200000LevelsIsRefused) {
    start();
    client c(ctx_, fe());
    tp::request rq;
    rq.data = nested_msgpack(200000);
    auto rep = c.call("WF_SUBMIT", rq);
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.error_code, "invalid_argument");
    EXPECT_NE(rep.error.find("deeper than 128"), std::string::npos) << rep.error;
    expect_alive(c);
}

TEST_F(Limits, PayloadNestedTooDeeplyIsRefusedAtSubmit) {
    start();
    client c(ctx_, fe());
    auto ok = task("a.b");
    ok.payload = nested_msgpack(128);
    EXPECT_EQ(c.submit({ok}).size(), 1u);
    for (std::size_t levels : {129u, 100000u}) {
        tp::request rq;
        auto t = task("a.b");
        t.payload = nested_msgpack(levels);
        rq.tasks = {t};
        auto rep = c.call(tp::cmd::submit, rq);
        EXPECT_FALSE(rep.ok) << levels;
        EXPECT_EQ(rep.error_code, "invalid_argument");
        EXPECT_NE(rep.error.find("payload"), std::string::npos) << rep.error;
    }
    expect_alive(c);
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
