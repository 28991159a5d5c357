// What plugin.h promises on the broker's side, against a real broker and
// host with the demo plugin: handler defaults apply, spawn keys give one
// subtask per parent across a retry, a spawn to a handler nobody serves is
// refused, and only a task that crashes its worker alone is charged.
#include "system_fixture.hpp"

#include <regex>

#include <gtest/gtest.h>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

class PluginPromises : public system_test {
protected:
    std::string submit(tp::task_spec t) {
        auto ids = client->submit({std::move(t)});
        EXPECT_EQ(ids.size(), 1u);
        return ids.empty() ? std::string() : ids[0];
    }

    std::size_t count_tasks(const std::string& handler) {
        tp::request rq;
        rq.limit = 10000;
        auto rep = client->call(tp::cmd::tasks, rq);
        EXPECT_TRUE(rep && rep->ok);
        std::size_t n = 0;
        for (const auto& t : rep ? rep->tasks : std::vector<tp::task_info>{}) {
            n += t.handler == handler ? 1 : 0;
        }
        return n;
    }
};

// demo.crash announces default_retries 0 (and a timeout): a submit without
// retries gets 0, one with retries keeps them.
TEST_F(PluginPromises, HandlerDefaultsFromTheHostApply) {
    start_system({}, {}, 1);
    auto t = task("demo.crash", nlohmann::json::object());
    t.delay_ms = 3600 * 1000;  // never runs here
    auto id = submit(t);
    auto st = client->status(id);
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->max_retries, 0) << "the handler's default_retries";
    EXPECT_EQ(st->queue, "default");
    t.retries = 2;
    st = client->status(submit(t));
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->max_retries, 2);
    st = client->status(submit(task("echo.echo", 1)));
    ASSERT_TRUE(st.has_value());
    EXPECT_EQ(st->max_retries, 3) << "echo.echo has no defaults: the broker's";
}

TEST_F(PluginPromises, SpawnKeysMakeOneSubtaskAcrossARetry) {
    start_system({}, {}, 1);
    auto t = task("demo.spawn", {{"n", 2}, {"retry_first", true}});
    t.retries = 2;
    t.backoff_base_ms = 10;
    auto parent = final_state(submit(t));
    ASSERT_EQ(parent.state, "SUCCEEDED") << parent.error;
    EXPECT_EQ(parent.attempts, 2u);
    ASSERT_EQ(parent.children.size(), 2u);
    auto result = from_msgpack(parent.result.value_or(""));
    EXPECT_EQ(result["ids"], nlohmann::json(parent.children)) << "the retry got the first attempt's subtasks";
    for (const auto& child : parent.children) {
        EXPECT_EQ(final_state(child).state, "SUCCEEDED");
    }
    EXPECT_EQ(count_tasks("echo.echo"), 2u);
}

TEST_F(PluginPromises, SpawnToAHandlerNobodyServesIsRefused) {
    start_system({}, {}, 1);
    auto t = task("demo.spawn", {{"n", 1}, {"handler", "nobody.serves"}});
    t.retries = 0;
    auto parent = final_state(submit(t));
    EXPECT_EQ(parent.state, "FAILED") << "spawn returned an error, which the SDK throws";
    EXPECT_TRUE(parent.children.empty());
    EXPECT_EQ(count_tasks("nobody.serves"), 0u);
    EXPECT_NE(host->log_text().find("nobody.serves"), std::string::npos) << host->log_text();
}

// 300 healthy tasks and 2 demo.crash tasks on shared workers: no healthy
// task fails, and each crash task fails at exactly max-crashes crashes of
// its own, its attempts being those plus the shared crashes it was in.
TEST_F(PluginPromises, OnlyTheGuiltyTaskIsPoison) {
    start_system({"--max-crashes", "2"}, {.processes = 2, .concurrency = 4}, 2);
    std::vector<tp::task_spec> specs;
    for (int i = 0; i < 300; ++i) {
        specs.push_back(task("demo.sleep", {{"ms", 5}}));
        if (i == 20 || i == 150) {
            auto crash = task("demo.crash", nlohmann::json::object());
            crash.tags = {"crash"};
            specs.push_back(crash);
        }
    }
    auto ids = client->submit(specs);
    ASSERT_EQ(ids.size(), specs.size());
    const std::regex poison(
        R"(^poison: crashed its worker 2 times \(max-crashes 2\)(; it was also running in (\d+) worker crash(es)? shared with other tasks \(not counted\))?$)");
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto t = final_state(ids[i], 120s);
        if (specs[i].handler == "demo.sleep") {
            EXPECT_EQ(t.state, "SUCCEEDED") << t.error;
            continue;
        }
        EXPECT_EQ(t.state, "FAILED");
        std::smatch m;
        ASSERT_TRUE(std::regex_match(t.error, m, poison)) << t.error;
        uint32_t shared = m[2].matched ? static_cast<uint32_t>(std::stoul(m[2].str())) : 0;
        EXPECT_EQ(t.attempts, 2 + shared) << t.error;
    }
}

}  // namespace
