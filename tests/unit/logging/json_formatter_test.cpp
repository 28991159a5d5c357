// log-format = json on its own: one object a line with time, level,
// component and msg; the thread's fields, else the message's key=value
// words; newlines and quotes kept inside one line.
#include <regex>
#include <sstream>
#include <thread>

#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include "taskmill/logging/json_formatter.hpp"
#include "taskmill/logging/log_fields.hpp"
#include "taskmill/logging/stderr_logger.hpp"

namespace {

using nlohmann::json;
using namespace taskmill::logging;

class JsonFormatter : public ::testing::Test {
protected:
    std::ostringstream out;
    std::shared_ptr<spdlog::logger> log;

    void SetUp() override {
        // The process logs JSON (scoped fields are recorded only then).
        (void)make_stderr_logger(
            std::string("json-formatter-test-") + ::testing::UnitTest::GetInstance()->current_test_info()->name(),
            log_format::json);
        auto sink = std::make_shared<spdlog::sinks::ostream_sink_st>(out);
        log = std::make_shared<spdlog::logger>("worker", sink);
        log->set_formatter(std::make_unique<json_formatter>());
        log->set_level(spdlog::level::trace);
    }

    std::vector<json> lines() {
        std::vector<json> v;
        std::istringstream in(out.str());
        for (std::string l; std::getline(in, l);) {
            auto j = json::parse(l, nullptr, false);
            EXPECT_FALSE(j.is_discarded()) << l;
            v.push_back(j);
        }
        return v;
    }
};

TEST_F(JsonFormatter, OneObjectALineWithTimeLevelComponentMsg) {
    log->info("hello {}", 1);
    log->warn("careful");
    auto v = lines();
    ASSERT_EQ(v.size(), 2u);
    EXPECT_TRUE(
        std::regex_match(v[0]["time"].get<std::string>(), std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)")))
        << v[0];
    EXPECT_EQ(v[0]["level"], "info");
    EXPECT_EQ(v[1]["level"], "warn");
    EXPECT_EQ(v[0]["component"], "worker");
    EXPECT_EQ(v[0]["msg"], "hello 1");
    EXPECT_FALSE(v[0].contains("task"));
    EXPECT_EQ(out.str().substr(0, 9), R"({"time":")") << "time comes first";
}

TEST_F(JsonFormatter, NewlinesAndQuotesStayInOneLine) {
    log->error("two\nlines \"quoted\" and \\ back\r\n");
    auto v = lines();
    ASSERT_EQ(v.size(), 1u) << out.str();
    EXPECT_EQ(v[0]["msg"], "two\nlines \"quoted\" and \\ back\r\n");
}

TEST_F(JsonFormatter, FieldsComeFromTheScopeElseFromTheMessage) {
    log->info("task=0123abcd handler=demo.echo attempt=2 queue=\"mail q\" status=ok");
    {
        scoped_log_fields outer({.task = "t1", .handler = "h.x", .queue = "q", .attempt = 3});
        scoped_log_fields inner({.component = "plugin", .plugin = "echo"});
        log->info("from the plugin task=ignored");
    }
    log->info("after the scope");
    auto v = lines();
    ASSERT_EQ(v.size(), 3u);
    EXPECT_EQ(v[0]["task"], "0123abcd");
    EXPECT_EQ(v[0]["handler"], "demo.echo");
    EXPECT_EQ(v[0]["attempt"], 2);
    EXPECT_EQ(v[0]["queue"], "mail q");
    EXPECT_EQ(v[1]["component"], "plugin");
    EXPECT_EQ(v[1]["task"], "t1") << "the scope wins over the message";
    EXPECT_EQ(v[1]["handler"], "h.x");
    EXPECT_EQ(v[1]["attempt"], 3);
    EXPECT_EQ(v[1]["plugin"], "echo");
    EXPECT_EQ(v[2]["component"], "worker");
    EXPECT_FALSE(v[2].contains("task")) << "the scope ended";
}

TEST_F(JsonFormatter, ScopesArePerThread) {
    scoped_log_fields mine({.task = "main-thread"});
    std::thread([&] { log->info("other thread"); }).join();
    log->info("this thread");
    auto v = lines();
    ASSERT_EQ(v.size(), 2u);
    EXPECT_FALSE(v[0].contains("task"));
    EXPECT_EQ(v[1]["task"], "main-thread");
}

TEST_F(JsonFormatter, BytesThatAreNotUtf8AreReplaced) {
    log->info("bad \xff byte");
    auto v = lines();
    ASSERT_EQ(v.size(), 1u) << out.str();
    EXPECT_NE(v[0]["msg"].get<std::string>().find("bad "), std::string::npos);
}

TEST(LogFormat, NamesParse) {
    EXPECT_EQ(parse_log_format("text"), log_format::text);
    EXPECT_EQ(parse_log_format("json"), log_format::json);
    EXPECT_FALSE(parse_log_format("xml").has_value());
}

}  // namespace
