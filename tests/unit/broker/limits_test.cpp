// Input bounds: nesting depth of msgpack values, ranges of durations and
// the deadlines computed from them, and messages the broker builds from
// lists (DISPATCH, TASKS, DONE) kept under the receiver's body limit.
#include <limits>
#include <set>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <taskmill/protocol/nesting.hpp>

#include "broker_harness.hpp"
#include "engine/timers.hpp"
#include "model/validate.hpp"

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
    std::string deep = std::string("\xde\x00\x01", 3) +
                       "\xa1"
                       "a" +
                       std::string("\xdc\x00\x01", 3) + std::string("\xdd\x00\x00\x00\x03", 5) +
                       std::string("\xd9\x02xy", 4) + std::string("\xc4\x01\x00", 3) + std::string("\xd4\x01\x02", 3);
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
    auto rep = c.call(tp::cmd::wf_submit, rq);
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
        auto rep = c.call(tp::cmd::wf_submit, rq);
        EXPECT_FALSE(rep.ok) << step;
        EXPECT_EQ(rep.error_code, "invalid_argument") << step << " -> " << rep.error;
    }
    expect_alive(c);
}

// Eight tasks of 300 KB under a 1 MiB body limit: before, one DISPATCH of
// 2.4 MB that a worker with this limit drops, leaving the tasks RUNNING.
TEST_F(Limits, DispatchTasksAndDoneAreCutToTheBodyLimit) {
    cfg_.max_body_bytes = 1u << 20;
    start();
    client c(ctx_, fe());
    std::vector<std::string> ids;
    for (int i = 0; i < 8; ++i) {
        auto t = task("a.b");
        t.payload = std::string(300000, static_cast<char>('a' + i));
        t.notify = true;
        auto one = c.submit({t});
        ASSERT_EQ(one.size(), 1u);
        ids.push_back(one[0]);
    }
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 8);
    std::vector<tp::work_item> got;
    while (got.size() < 8) {
        auto m = w.expect(tp::cmd::dispatch);
        ASSERT_TRUE(m.has_value()) << "only " << got.size() << " of 8 tasks dispatched";
        EXPECT_LE(m->body.size(), cfg_.max_body_bytes);
        auto d = tp::decode_dispatch(m->body);
        ASSERT_TRUE(d.has_value());
        got.insert(got.end(), d->tasks.begin(), d->tasks.end());
    }
    // All results in one RESULTS would be over the limit too: two of them.
    tp::results first;
    tp::results second;
    for (std::size_t i = 0; i < got.size(); ++i) {
        tp::outcome o{got[i].id,    got[i].attempt, "ok",         got[i].payload, "",
                      std::nullopt, "1.0.0",        std::nullopt, std::nullopt};
        (i < 3 ? first : second).items.push_back(o);
    }
    w.send(tp::cmd::results, tp::encode(first));
    std::size_t done = 0;
    auto count_done = [&](std::size_t want) {
        while (done < want) {
            auto m = c.recv();
            ASSERT_TRUE(m.has_value()) << "only " << done << " DONE";
            ASSERT_EQ(m->command, tp::cmd::done);
            EXPECT_LE(m->body.size(), cfg_.max_body_bytes);
            auto rep = tp::decode_reply(m->body);
            ASSERT_TRUE(rep.has_value());
            done += rep->task ? 1 : rep->tasks.size();
        }
    };
    count_done(3);
    tp::results third;
    third.items.assign(second.items.begin() + 2, second.items.end());
    second.items.resize(2);
    w.send(tp::cmd::results, tp::encode(second));
    w.send(tp::cmd::results, tp::encode(third));
    count_done(8);
    for (const auto& id : ids) {
        EXPECT_EQ(c.status(id).result->size(), 300000u);
    }
    // TASKS pages by size: every page fits and together they list all.
    std::set<std::string> listed;
    tp::request rq;
    rq.limit = 100;
    for (int page = 0; page < 10; ++page) {
        auto rep = c.call(tp::cmd::tasks, rq);
        ASSERT_TRUE(rep.ok) << rep.error;
        EXPECT_LE(tp::encode(rep).size(), cfg_.max_body_bytes);
        for (const auto& t : rep.tasks) {
            ASSERT_TRUE(t.result.has_value());
            listed.insert(t.id);
        }
        if (rep.next.empty()) {
            break;
        }
        EXPECT_FALSE(rep.tasks.empty());
        rq.before = rep.next;
    }
    EXPECT_EQ(listed, std::set<std::string>(ids.begin(), ids.end()));
}

// A task whose payload and checkpoint together are over the limit cannot be
// dispatched at all: it fails with too_large instead of staying RUNNING.
TEST_F(Limits, TaskThatCannotFitADispatchFails) {
    cfg_.max_body_bytes = 1u << 20;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto t = task("a.b");
    t.payload = std::string(600000, 'p');
    t.retries = 1;
    t.backoff_base_ms = 1;
    auto ids = c.submit({t});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    tp::control cp;
    cp.req = 1;
    cp.id = items[0].id;
    cp.data = std::string(600000, 'c');
    w.send(tp::cmd::checkpoint, tp::encode(cp));
    ASSERT_TRUE(w.expect(tp::cmd::checkpoint).has_value());
    w.result(items[0], "retry", "", "again");
    auto st = c.status(ids[0], 5000);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_NE(st.error.find("too_large"), std::string::npos) << st.error;
    expect_alive(c);
}

// Three step results of 400 KB do not fit a 1 MiB WF_STATUS together:
// before, the reply was 1.2 MB, over what the client reads.
TEST_F(Limits, WorkflowStatusLeavesOutResultsThatDoNotFit) {
    cfg_.max_body_bytes = 1u << 20;
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 3);
    auto def = nlohmann::json{{"steps",
                               {{{"name", "a"}, {"handler", "a.b"}},
                                {{"name", "b"}, {"handler", "a.b"}},
                                {{"name", "c"}, {"handler", "a.b"}}}}};
    auto bytes = nlohmann::json::to_msgpack(def);
    tp::request rq;
    rq.data.assign(bytes.begin(), bytes.end());
    auto sub = c.call(tp::cmd::wf_submit, rq);
    ASSERT_TRUE(sub.ok) << sub.error;
    std::vector<tp::work_item> items;
    while (items.size() < 3) {
        auto d = w.next_dispatch();
        ASSERT_FALSE(d.empty());
        items.insert(items.end(), d.begin(), d.end());
    }
    const auto result = nlohmann::json::to_msgpack(nlohmann::json(std::string(400000, 'r')));
    for (const auto& item : items) {
        w.result(item, "ok", std::string(result.begin(), result.end()));
    }
    for (const auto& item : items) {
        EXPECT_EQ(c.status(item.id, 5000).state, "SUCCEEDED");  // the workflow ends in the same turn
    }
    tp::request st;
    st.id = sub.ids[0];
    auto rep = c.call(tp::cmd::wf_status, st);
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_LE(tp::encode(rep).size(), cfg_.max_body_bytes);
    auto status = nlohmann::json::from_msgpack(rep.data);
    ASSERT_EQ(status.value("state", ""), "SUCCEEDED");
    for (const auto& s : status["steps"]) {
        EXPECT_TRUE(s["result"].is_null());
        EXPECT_EQ(s.value("result_omitted", false), true);
    }
    EXPECT_NE(status.value("note", "").find("left out"), std::string::npos);
    EXPECT_EQ(c.status(items[0].id).result->size(), result.size()) << "the task still has it";
}
