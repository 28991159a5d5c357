// JSON <-> msgpack and the status JSON shape the CLI prints.
#include <gtest/gtest.h>

#include <taskmill/client/json.hpp>
#include <taskmill/protocol/json_view.hpp>

#include "convert.hpp"

namespace {

using namespace taskmill::client;

TEST(Json, Iso8601IsUtcWithMilliseconds) {
    EXPECT_EQ(iso8601(time_point(std::chrono::milliseconds(0))), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(iso8601(time_point(std::chrono::milliseconds(1'700'000'000'123))), "2023-11-14T22:13:20.123Z");
    EXPECT_TRUE(iso8601_or_null(std::nullopt).is_null());
}

TEST(Json, Iso8601BeforeNineteenSeventyAndFarAhead) {
    EXPECT_EQ(iso8601(time_point(std::chrono::milliseconds(-1))), "1969-12-31T23:59:59.999Z");
    // Rounded down to the millisecond, also before 1970.
    EXPECT_EQ(iso8601(time_point(std::chrono::microseconds(-1))), "1969-12-31T23:59:59.999Z");
    // time_point counts nanoseconds: about 2262 is as far as it goes.
    EXPECT_EQ(iso8601(time_point(std::chrono::milliseconds(7'258'118'400'000))), "2200-01-01T00:00:00.000Z");
}

TEST(Json, TextToMsgpackAndBack) {
    auto bytes = json_text_to_msgpack(R"({"ms": 10, "tags": ["a", "b"], "x": null, "f": 1.5})");
    ASSERT_TRUE(bytes);
    auto back = msgpack_to_json(*bytes);
    EXPECT_EQ(back["ms"], 10);
    EXPECT_EQ(back["tags"][1], "b");
    EXPECT_TRUE(back["x"].is_null());
    EXPECT_EQ(back["f"], 1.5);
    EXPECT_TRUE(msgpack_to_json("").is_null());
}

TEST(Json, InvalidJsonIsAnInvalidArgumentNamingThePosition) {
    auto bytes = json_text_to_msgpack("{\"a\": }");
    ASSERT_FALSE(bytes);
    EXPECT_EQ(bytes.error().code, taskmill::errc::invalid_argument);
    EXPECT_NE(bytes.error().message.find("column"), std::string::npos) << bytes.error().message;
}

TEST(Json, BadMsgpackDoesNotThrow) {
    auto j = msgpack_to_json(std::string("\xc1", 1));  // 0xc1 is never used by msgpack
    ASSERT_TRUE(j.is_object());
    EXPECT_TRUE(j.contains("msgpack_error"));
}

// Before: both recursed once per level and overflowed the stack.
TEST(Json, DeepValuesAreRefusedNotRecursedInto) {
    auto text = json_text_to_msgpack(std::string(100000, '[') + std::string(100000, ']'));
    ASSERT_FALSE(text);
    EXPECT_EQ(text.error().code, taskmill::errc::invalid_argument);
    EXPECT_NE(text.error().message.find("deeper than 128"), std::string::npos) << text.error().message;
    EXPECT_TRUE(json_text_to_msgpack(std::string(128, '[') + std::string(128, ']')));

    const auto deep = std::string(200000, '\x91') + '\xc0';
    auto j = msgpack_to_json(deep);
    ASSERT_TRUE(j.is_object());
    EXPECT_TRUE(j.contains("msgpack_error"));
    task_info t;
    t.result = deep;
    EXPECT_THROW((void)t.result_json(), nlohmann::json::exception);
}

TEST(Json, PayloadFromJsonIsMsgpack) {
    payload p = nlohmann::json{{"a", 1}};
    EXPECT_EQ(msgpack_to_json(p.msgpack), (nlohmann::json{{"a", 1}}));
}

TEST(Json, StatusObjectHasEveryFieldWithNulls) {
    task_info t;
    t.id = "01ABC";
    t.handler = "echo.echo";
    t.queue = "default";
    t.state = "QUEUED";
    t.created = time_point(std::chrono::milliseconds(1'700'000'000'000));
    auto j = to_json(t);
    for (const char* k : {"id", "handler", "queue", "priority", "state", "attempts", "error", "progress", "result",
                          "created", "started", "finished", "parent", "tags", "children", "worker", "max_retries"}) {
        EXPECT_TRUE(j.contains(k)) << k;
    }
    EXPECT_EQ(j["state"], "QUEUED");
    EXPECT_EQ(j["created"], "2023-11-14T22:13:20.000Z");
    EXPECT_TRUE(j["started"].is_null());
    EXPECT_TRUE(j["finished"].is_null());
    EXPECT_TRUE(j["error"].is_null());
    EXPECT_TRUE(j["progress"].is_null());
    EXPECT_TRUE(j["result"].is_null());
    EXPECT_TRUE(j["parent"].is_null());
    EXPECT_TRUE(j["tags"].is_array());
    EXPECT_TRUE(j["children"].is_array());
}

TEST(Json, StatusObjectCarriesResultProgressAndError) {
    task_info t;
    t.state = "SUCCEEDED";
    t.error = "first attempt failed";
    t.progress = progress_info{0.5, "half"};
    t.result = payload(nlohmann::json{{"out", "x"}}).msgpack;
    t.parent = "p1";
    t.tags = {"a"};
    auto j = to_json(t);
    EXPECT_EQ(j["result"]["out"], "x");
    EXPECT_EQ(j["progress"]["fraction"], 0.5);
    EXPECT_EQ(j["progress"]["note"], "half");
    EXPECT_EQ(j["error"], "first attempt failed");
    EXPECT_EQ(j["parent"], "p1");
    EXPECT_EQ(j["tags"][0], "a");
    EXPECT_TRUE(t.is_final());
}

// The CLI shows what the HTTP API shows: one view, so the *_ms fields the
// HTTP API had are in the CLI's objects too.
TEST(Json, TaskWorkerAndStatsObjectsAreTheSharedView) {
    taskmill::protocol::task_info t;
    t.id = "01ABC";
    t.handler = "echo.echo";
    t.state = "SUCCEEDED";
    t.attempts = 1;
    t.result = payload(nlohmann::json{{"out", "x"}}).msgpack;
    t.created_ms = 1'700'000'000'000;
    t.started_ms = 1'700'000'000'100;
    t.finished_ms = 1'700'000'000'200;
    t.tags = {"a"};
    auto j = to_json(detail::from_wire(t));
    EXPECT_EQ(j, taskmill::protocol::to_json(t));
    EXPECT_EQ(j["created_ms"], 1'700'000'000'000);
    EXPECT_EQ(j["started_ms"], 1'700'000'000'100);
    EXPECT_EQ(j["finished_ms"], 1'700'000'000'200);

    taskmill::protocol::worker_info w;
    w.id = "w1";
    w.handlers = {taskmill::protocol::handler_info{"echo.echo", "1.0.0", "echo"}};
    w.last_seen_ms = 1'700'000'000'000;
    EXPECT_EQ(to_json(detail::from_wire(w)), taskmill::protocol::to_json(w));
    EXPECT_EQ(to_json(detail::from_wire(w))["last_seen_ms"], 1'700'000'000'000);

    taskmill::protocol::stats_info s;
    s.queues = {taskmill::protocol::queue_stats{"default", 1, 2, 3, false, {}}};
    s.counters = {{"submitted", 4}};
    s.uptime_ms = 99;
    EXPECT_EQ(to_json(detail::from_wire(s)), taskmill::protocol::to_json(s));
}

}  // namespace
