// The one JSON view (taskmill/protocol/json_view.hpp): times, msgpack bytes
// and the task, worker and stats objects the CLI and the HTTP API share.
#include <taskmill/protocol/json_view.hpp>

#include <cstdint>
#include <limits>

#include <gtest/gtest.h>

namespace tp = taskmill::protocol;
using nlohmann::json;

namespace {

// msgpack: `levels` one-element arrays around a nil.
std::string nested_arrays(std::size_t levels) { return std::string(levels, '\x91') + '\xc0'; }

tp::task_info sample_task() {
    tp::task_info t;
    t.id = "0123456789abcdef0123456789abcdef";
    t.handler = "echo.echo";
    t.queue = "default";
    t.priority = 3;
    t.state = "SUCCEEDED";
    t.attempts = 2;
    t.max_retries = 5;
    t.error = "first attempt failed";
    t.progress = tp::progress_info{0.5, "half"};
    t.result = tp::json_to_msgpack(json{{"out", "x"}});
    t.created_ms = 1'700'000'000'000;
    t.started_ms = 1'700'000'000'250;
    t.finished_ms = 1'700'000'001'000;
    t.parent = "p1";
    t.tags = {"a", "b"};
    t.children = {"c1"};
    t.worker = "w1";
    t.delete_at_ms = 1'700'086'401'000;
    return t;
}

}  // namespace

TEST(JsonViewTime, IsUtcWithMilliseconds) {
    EXPECT_EQ(tp::iso8601_utc(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(tp::iso8601_utc(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
    EXPECT_EQ(tp::iso8601_utc(951'782'400'000), "2000-02-29T00:00:00.000Z");
}

TEST(JsonViewTime, BeforeNineteenSeventyRoundsDown) {
    EXPECT_EQ(tp::iso8601_utc(-1), "1969-12-31T23:59:59.999Z");
    EXPECT_EQ(tp::iso8601_utc(-1000), "1969-12-31T23:59:59.000Z");
    EXPECT_EQ(tp::iso8601_utc(-1001), "1969-12-31T23:59:58.999Z");
    EXPECT_EQ(tp::iso8601_utc(-14'182'940'000), "1969-07-20T20:17:40.000Z");
}

TEST(JsonViewTime, YearsOutsideFourDigitsCarryTheirSign) {
    EXPECT_EQ(tp::iso8601_utc(253'402'300'799'999), "9999-12-31T23:59:59.999Z");
    EXPECT_EQ(tp::iso8601_utc(253'402'300'800'000), "+10000-01-01T00:00:00.000Z");
    EXPECT_EQ(tp::iso8601_utc(-62'167'219'200'000), "0000-01-01T00:00:00.000Z");
    EXPECT_EQ(tp::iso8601_utc(-62'167'219'200'001), "-0001-12-31T23:59:59.999Z");
}

TEST(JsonViewTime, EveryInt64IsDefined) {
    EXPECT_EQ(tp::iso8601_utc(std::numeric_limits<int64_t>::max()), "+292278994-08-17T07:12:55.807Z");
    EXPECT_EQ(tp::iso8601_utc(std::numeric_limits<int64_t>::min()), "-292275055-05-16T16:47:04.192Z");
}

TEST(JsonViewTime, NotYetIsNull) {
    EXPECT_TRUE(tp::iso8601_or_null(0).is_null());
    EXPECT_TRUE(tp::iso8601_or_null(-5).is_null());
    EXPECT_EQ(tp::iso8601_or_null(1), "1970-01-01T00:00:00.001Z");
}

TEST(JsonViewMsgpack, DecodesValuesAndEmptyIsNull) {
    EXPECT_TRUE(tp::msgpack_to_json("").is_null());
    EXPECT_EQ(tp::msgpack_to_json(std::string("\x81\xa1"
                                              "a\x01",
                                              4)),
              (json{{"a", 1}}));
    EXPECT_TRUE(tp::msgpack_to_json(std::string("\xc0", 1)).is_null());
}

TEST(JsonViewMsgpack, BadBytesRenderAsAnErrorObject) {
    const std::string bad[] = {
        std::string("\xc1", 1),      // a type byte msgpack never uses
        std::string("\x92\x01", 2),  // an array of two holding one
        std::string("\x01\x02", 2),  // a value and trailing bytes
        std::string("\xa5"
                    "ab",
                    3),  // a string shorter than it says
    };
    for (const auto& b : bad) {
        auto j = tp::msgpack_to_json(b);
        ASSERT_TRUE(j.is_object()) << j.dump();
        EXPECT_EQ(j.size(), 2u) << j.dump();
        EXPECT_TRUE(j["msgpack_error"].is_string()) << j.dump();
        EXPECT_EQ(j["size"], b.size());
    }
}

// Before: the HTTP API answered {"msgpack_hex"} here, workflow status null,
// and the CLI {"msgpack_error"}; now all three say the same.
TEST(JsonViewMsgpack, DeepValuesRenderAsAnErrorObjectNotARecursion) {
    const auto deep = nested_arrays(200000);
    auto j = tp::msgpack_to_json(deep);
    ASSERT_TRUE(j.is_object());
    EXPECT_NE(j["msgpack_error"].get<std::string>().find("deeper than 128 levels"), std::string::npos) << j;
    EXPECT_EQ(j["size"], deep.size());

    EXPECT_TRUE(tp::msgpack_to_json(nested_arrays(tp::max_nesting)).is_array());
    EXPECT_TRUE(tp::msgpack_to_json(nested_arrays(tp::max_nesting + 1)).contains("msgpack_error"));
    // A caller that wraps bounded values a few levels deeper says so.
    EXPECT_TRUE(tp::msgpack_to_json(nested_arrays(tp::max_nesting + 8), tp::max_nesting + 8).is_array());
}

TEST(JsonViewMsgpack, JsonToMsgpackIsPlainMsgpack) {
    EXPECT_EQ(tp::json_to_msgpack(json{{"a", 1}}), std::string("\x81\xa1"
                                                               "a\x01",
                                                               4));
    EXPECT_EQ(tp::json_to_msgpack(nullptr), std::string("\xc0", 1));
    const json v = {{"tags", {"a", "b"}}, {"f", 1.5}, {"n", -3}};
    EXPECT_EQ(tp::msgpack_to_json(tp::json_to_msgpack(v)), v);
}

TEST(JsonViewTask, HasEveryFieldOfBothFormerViews) {
    auto j = tp::to_json(sample_task());
    EXPECT_EQ(j.size(), 24u) << j.dump();
    EXPECT_EQ(j["delete_at"], "2023-11-15T22:13:21.000Z") << "when retention deletes it";
    EXPECT_EQ(j["delete_at_ms"], 1'700'086'401'000);
    EXPECT_FALSE(j.contains("payload")) << "a listed task (no payload_size) has no status fields";
    EXPECT_EQ(j["id"], "0123456789abcdef0123456789abcdef");
    EXPECT_TRUE(j["error_code"].is_null()) << "no code set: null, the field is always there";
    EXPECT_EQ(j["handler"], "echo.echo");
    EXPECT_EQ(j["queue"], "default");
    EXPECT_EQ(j["priority"], 3);
    EXPECT_EQ(j["state"], "SUCCEEDED");
    EXPECT_EQ(j["attempts"], 2);
    EXPECT_EQ(j["max_retries"], 5);
    EXPECT_EQ(j["error"], "first attempt failed");
    EXPECT_EQ(j["progress"], (json{{"fraction", 0.5}, {"note", "half"}}));
    EXPECT_EQ(j["result"], (json{{"out", "x"}}));
    EXPECT_EQ(j["created"], "2023-11-14T22:13:20.000Z");
    EXPECT_EQ(j["started"], "2023-11-14T22:13:20.250Z");
    EXPECT_EQ(j["finished"], "2023-11-14T22:13:21.000Z");
    EXPECT_TRUE(j["eta"].is_null());
    EXPECT_EQ(j["created_ms"], 1'700'000'000'000);
    EXPECT_EQ(j["started_ms"], 1'700'000'000'250);
    EXPECT_EQ(j["finished_ms"], 1'700'000'001'000);
    EXPECT_EQ(j["parent"], "p1");
    EXPECT_EQ(j["tags"], (json{"a", "b"}));
    EXPECT_EQ(j["children"], (json{"c1"}));
    EXPECT_EQ(j["worker"], "w1");
}

TEST(JsonViewTask, AbsentValuesAreNull) {
    tp::task_info t;
    t.id = "x";
    t.state = "QUEUED";
    auto j = tp::to_json(t);
    for (const char* k : {"error", "progress", "result", "created", "started", "finished", "eta", "parent", "worker"}) {
        EXPECT_TRUE(j[k].is_null()) << k;
    }
    EXPECT_EQ(j["created_ms"], 0);
    EXPECT_TRUE(j["tags"].is_array());
    EXPECT_TRUE(j["children"].is_array());
}

TEST(JsonViewTask, UnreadableResultIsShownNotThrown) {
    auto t = sample_task();
    t.result = std::string("\xc1", 1);
    auto j = tp::to_json(t);
    EXPECT_TRUE(j["result"].contains("msgpack_error"));
    t.result = std::string();
    EXPECT_TRUE(tp::to_json(t)["result"].is_null());
}

TEST(JsonViewWorker, HasHandlersAndLastSeenTwice) {
    tp::worker_info w;
    w.id = "w1";
    w.host = "h";
    w.pid = 42;
    w.slots = 4;
    w.busy = 1;
    w.generation = 2;
    w.queues = {"q"};
    w.handlers = {tp::handler_info{"echo.echo", "1.0.0", "echo"}};
    w.last_seen_ms = 1'700'000'000'000;
    w.prefetch = 8;
    w.running = 1;
    w.rss_bytes = 31'457'280;
    auto j = tp::to_json(w);
    EXPECT_EQ(j.size(), 13u) << j.dump();
    EXPECT_EQ(j["rss_bytes"], 31'457'280);
    EXPECT_EQ(j["prefetch"], 8);
    EXPECT_EQ(j["running"], 1);
    EXPECT_EQ(j["pid"], 42);
    EXPECT_EQ(j["handlers"][0], (json{{"name", "echo.echo"}, {"version", "1.0.0"}, {"plugin", "echo"}}));
    EXPECT_EQ(j["last_seen"], "2023-11-14T22:13:20.000Z");
    EXPECT_EQ(j["last_seen_ms"], 1'700'000'000'000);
    w.last_seen_ms = 0;
    w.rss_bytes = 0;
    EXPECT_TRUE(tp::to_json(w)["last_seen"].is_null());
    EXPECT_TRUE(tp::to_json(w)["rss_bytes"].is_null()) << "not reported";
}

TEST(JsonViewStats, HasQueuesStatesAndCounters) {
    tp::stats_info s;
    s.queues = {tp::queue_stats{"default", 3, 1, 2, false, {}}};
    s.states = {{"QUEUED", 3}};
    s.counters = {{"submitted", 9}};
    s.workers = 1;
    s.slots = 4;
    s.busy = 2;
    s.uptime_ms = 1500;
    s.prefetch = 2;
    s.running = 1;
    auto j = tp::to_json(s);
    EXPECT_EQ(j.size(), 10u) << j.dump();
    EXPECT_EQ(j["prefetch"], 2);
    EXPECT_EQ(j["running"], 1);
    EXPECT_EQ(j["queues"][0], (json{{"name", "default"},
                                    {"ready", 3},
                                    {"delayed", 1},
                                    {"running", 2},
                                    {"paused", false},
                                    {"limits", {{"rate", nullptr}, {"burst", nullptr}, {"max_running", nullptr}}}}));
    EXPECT_EQ(j["handlers"], json::array());
    EXPECT_EQ(j["states"]["QUEUED"], 3);
    EXPECT_EQ(j["counters"]["submitted"], 9);
    EXPECT_EQ(j["uptime_ms"], 1500);
}

TEST(JsonView, QueueLimitsShowTheEffectiveBurstAndNullForNone) {
    tp::stats_info s;
    s.queues = {tp::queue_stats{"q", 0, 0, 1, true, tp::flow_limits{2.5, 0, 3}}};
    s.handlers = {tp::handler_stats{"a.b", 1, tp::flow_limits{0, 0, 4}}};
    auto j = tp::to_json(s);
    EXPECT_EQ(j["queues"][0]["paused"], true);
    EXPECT_EQ(j["queues"][0]["limits"], (json{{"rate", 2.5}, {"burst", 2}, {"max_running", 3}}));
    EXPECT_EQ(j["handlers"][0], (json{{"name", "a.b"},
                                      {"running", 1},
                                      {"limits", {{"rate", nullptr}, {"burst", nullptr}, {"max_running", 4}}}}));
}

// ---- what STATUS adds: payload, payload_size, history, checkpoint_size ----

TEST(JsonViewTask, StatusFieldsShowThePayloadAndTheAttempts) {
    auto t = sample_task();
    t.payload = tp::json_to_msgpack(json{{"n", 7}});
    t.payload_size = t.payload->size();
    t.history.push_back({1, "w1", 1000, 2000, "retry", "boom", 7, "1.2.0"});
    t.history.push_back({2, "w2", 3000, 0, "", "", std::nullopt, ""});
    t.checkpoint_size = 321;
    auto j = tp::to_json(t);
    EXPECT_EQ(j.size(), 28u) << j.dump();
    EXPECT_EQ(j["checkpoint_size"], 321);
    EXPECT_EQ(j["payload"], (json{{"n", 7}}));
    EXPECT_EQ(j["payload_size"], t.payload->size());
    ASSERT_EQ(j["history"].size(), 2u);
    EXPECT_EQ(j["history"][0], (json{{"attempt", 1},
                                     {"worker", "w1"},
                                     {"started", "1970-01-01T00:00:01.000Z"},
                                     {"finished", "1970-01-01T00:00:02.000Z"},
                                     {"outcome", "retry"},
                                     {"error", "boom"},
                                     {"error_code", 7},
                                     {"version", "1.2.0"}}));
    EXPECT_TRUE(j["history"][1]["finished"].is_null()) << "still running";
    EXPECT_TRUE(j["history"][1]["outcome"].is_null());
}

TEST(JsonViewTask, ALargePayloadIsTruncatedWithItsSizeAndHead) {
    auto t = sample_task();
    const std::string text(tp::max_payload_json, 'x');
    t.payload = tp::json_to_msgpack(json{{"k", text}});
    t.payload_size = t.payload->size();
    auto j = tp::to_json(t);
    ASSERT_TRUE(j["payload"].is_object());
    EXPECT_EQ(j["payload"]["truncated"], true);
    EXPECT_EQ(j["payload"]["size"], t.payload_size);
    EXPECT_EQ(j["payload"]["head"], ("{\"k\":\"" + text).substr(0, tp::payload_head_chars));
    EXPECT_EQ(j["payload_size"], t.payload_size);

    t.payload.reset();  // left out of a reply it would not fit
    j = tp::to_json(t);
    EXPECT_EQ(j["payload"]["size"], t.payload_size);
    EXPECT_TRUE(j["payload"]["head"].is_null());

    // The head is never cut inside a UTF-8 sequence (dump() would throw).
    std::string accents;
    for (int i = 0; i < 1000; ++i) {
        accents += "\xc3\xa9";
    }
    auto cut = tp::truncated_payload(tp::json_to_msgpack(json(accents)), 1);
    EXPECT_NO_THROW((void)cut.dump());
    EXPECT_EQ(cut["head"].get<std::string>().size(), tp::payload_head_chars - 1)
        << "one byte back, to the sequence start";
}
