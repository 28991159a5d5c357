// log-format = json against real processes: every line a broker and a
// host (its supervisor and workers) write is one JSON object with time,
// level, component and msg; lines about a task carry it; a plugin's own
// line carries the plugin and the task, its newlines and quotes inside one
// line.
#include "harness.hpp"

#include <csignal>
#include <sstream>

#include <gtest/gtest.h>

using namespace taskmill::testing;
using nlohmann::json;

namespace {

// Every line of `text` as JSON; a line that is not an object with the
// four keys fails the test.
std::vector<json> json_lines(const std::string& text, const std::string& who) {
    std::vector<json> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        auto j = json::parse(line, nullptr, false);
        bool ok = j.is_object() && j["time"].is_string() && j["level"].is_string() && j["component"].is_string() &&
                  j["msg"].is_string();
        EXPECT_TRUE(ok) << who << " wrote a line that is not a JSON log record: " << line;
        if (ok) out.push_back(std::move(j));
    }
    return out;
}

const json* find_line(const std::vector<json>& lines, const std::function<bool(const json&)>& pred) {
    for (const auto& j : lines) {
        if (pred(j)) return &j;
    }
    return nullptr;
}

TEST(JsonLogs, BrokerAndHostWriteOneJsonObjectALine) {
    temp_dir tmp;
    broker_process broker(tmp.path() / "data", {"--log-format", "json", "--log-level", "debug"});
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend,
                                        .processes = 1,
                                        .concurrency = 2,
                                        .extra = {"--log-format", "json", "--log-level", "debug"}});
    wire_client client(broker.ep().frontend);
    ASSERT_TRUE(wait_until([&] { return client.workers().size() == 1; }, 30s)) << host->log_text();

    auto probe = client.submit({task("demo.probe", json::object())});
    auto failed = client.submit({task("demo.fail", {{"mode", "permanent"}})});
    ASSERT_EQ(probe.size(), 1u);
    ASSERT_EQ(failed.size(), 1u);
    ASSERT_TRUE(client.wait_final(probe[0], 30s).has_value());
    ASSERT_TRUE(client.wait_final(failed[0], 30s).has_value());
    host->signal(SIGTERM);
    ASSERT_TRUE(host->wait_exit(30s).has_value());
    broker.proc().signal(SIGTERM);
    ASSERT_TRUE(broker.proc().wait_exit(30s).has_value());

    auto host_lines = json_lines(host->log_text(), "the host");
    auto broker_lines = json_lines(broker.proc().log_text(), "the broker");
    ASSERT_FALSE(host_lines.empty());
    ASSERT_FALSE(broker_lines.empty());
    for (const auto& j : broker_lines) EXPECT_EQ(j["component"], "broker") << j;
    for (const char* c : {"host", "worker", "plugin"}) {
        EXPECT_NE(find_line(host_lines, [&](const json& j) { return j["component"] == c; }), nullptr)
            << "no " << c << " line";
    }

    // The plugin's own line: the plugin and the task as fields, the
    // message as the plugin wrote it.
    auto plugin = find_line(host_lines, [&](const json& j) {
        return j["component"] == "plugin" && j["msg"].get<std::string>().rfind("first line", 0) == 0;
    });
    ASSERT_NE(plugin, nullptr) << host->log_text();
    EXPECT_EQ((*plugin)["msg"], "first line\nforged line\tand a tab, \"quoted\"");
    EXPECT_EQ((*plugin)["plugin"], "demo");
    EXPECT_EQ((*plugin)["task"], probe[0]);
    EXPECT_EQ((*plugin)["handler"], "demo.probe");
    EXPECT_EQ((*plugin)["attempt"], 1);
    EXPECT_TRUE((*plugin)["worker"].is_string());

    // The worker's line on the failed attempt, with its task's fields.
    auto outcome = find_line(host_lines, [&](const json& j) {
        return j["component"] == "worker" && j.value("task", "") == failed[0] && j["level"] == "warn";
    });
    ASSERT_NE(outcome, nullptr) << host->log_text();
    EXPECT_EQ((*outcome)["handler"], "demo.fail");
    EXPECT_EQ((*outcome)["plugin"], "demo");
    EXPECT_EQ((*outcome)["attempt"], 1);

    // A worker's arrival in the broker's log names it.
    EXPECT_NE(find_line(broker_lines, [](const json& j) { return j.contains("worker"); }), nullptr)
        << broker.proc().log_text();
}

}  // namespace
