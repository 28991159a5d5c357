// Workflow listing and schedule control end to end: a real taskmill-broker
// with HTTP, driven through the `taskmill` CLI and the JSON API; a pause
// outlives a SIGKILL of the broker.
#include "http_fixture.hpp"

#include <csignal>
#include <fstream>

#include <gtest/gtest.h>
#include <httplib.h>

using namespace taskmill::testing;
using nlohmann::json;

namespace {

class ScheduleControlE2E : public http_test {
protected:
    std::string ini;

    // A broker with an hourly schedule (it does not fire during the test
    // unless triggered) and HTTP on a picked port. No host: tasks stay queued.
    void start() {
        if (ini.empty()) {
            ini = (tmp.path() / "broker.ini").string();
            std::ofstream(ini)
                << "[schedule.hourly]\nhandler = echo.echo\npayload = {\"n\": 1}\ncron = \"0 * * * *\"\n";
        }
        start_http_broker({"--config", ini});
    }
    void kill_broker() {
        broker->proc().signal(SIGKILL);
        ASSERT_TRUE(broker->proc().wait_exit(10s));
    }
    cli_result cli(std::vector<std::string> args) {
        args.insert(args.begin(), {"--broker", broker->ep().frontend});
        return run_cli(tmp.path(), args);
    }
    json cli_json(std::vector<std::string> args) {
        args.insert(args.begin(), "--json");
        auto r = cli(args);
        EXPECT_EQ(r.exit_code, 0) << r.err;
        return json::parse(r.out, nullptr, false);
    }
    std::pair<int, json> post(const std::string& path, const char* token = writer) {
        auto r = http->Post(path, auth(token), "", "application/json");
        if (!r) return {0, json()};
        return {r->status, json::parse(r->body, nullptr, false)};
    }
    // GET as the reader: (status, body).
    std::pair<int, json> get_status(const std::string& path) {
        auto r = http->Get(path, auth(reader));
        if (!r) return {0, json()};
        return {r->status, json::parse(r->body, nullptr, false)};
    }
};

int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

}  // namespace

TEST_F(ScheduleControlE2E, CliTriggersPausesAndResumesAndThePauseSurvivesSigkill) {
    start();
    auto r = cli({"schedule", "trigger", "hourly"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    const std::string id = r.out.substr(0, r.out.find('\n'));
    wire_client c(broker->ep().frontend);
    auto task = c.status(id);
    ASSERT_TRUE(task);
    EXPECT_EQ(task->handler, "echo.echo");
    EXPECT_EQ(task->tags, std::vector<std::string>{"schedule:hourly"});

    auto paused = cli_json({"schedule", "pause", "hourly"});
    EXPECT_EQ(paused["name"], "hourly");
    EXPECT_EQ(paused["paused"], true);
    kill_broker();
    start();
    auto list = cli_json({"schedules"});
    ASSERT_EQ(list.size(), 1u);
    EXPECT_EQ(list[0]["paused"], true) << "the pause outlives a SIGKILL";
    EXPECT_EQ(list[0]["next_fire_ms"], 0);
    EXPECT_GT(list[0]["last_fire_ms"].get<int64_t>(), 0) << "the trigger is the last fire";
    EXPECT_EQ(list[0]["misfires"], 0);
    r = cli({"schedules"});
    EXPECT_NE(r.out.find("next paused"), std::string::npos) << r.out;

    const int64_t before_resume = now_ms();
    auto resumed = cli_json({"schedule", "resume", "hourly"});
    EXPECT_EQ(resumed["paused"], false);
    EXPECT_GT(resumed["next_fire_ms"].get<int64_t>(), before_resume);
    EXPECT_LE(resumed["next_fire_ms"].get<int64_t>(), now_ms() + 3'600'000);

    r = cli({"schedule", "trigger", "nope"});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("no schedule named nope"), std::string::npos) << r.err;
    r = cli({"schedule", "stop", "hourly"});
    EXPECT_EQ(r.exit_code, 2);
}

TEST_F(ScheduleControlE2E, HttpVerbsAnswerTheDashboardShapes) {
    start();
    auto [status, body] = post("/api/v1/schedules/hourly/trigger");
    ASSERT_EQ(status, 200) << body.dump();
    ASSERT_TRUE(body["id"].is_string());
    auto [task_status, task] = get_status("/api/v1/tasks/" + body["id"].get<std::string>());
    EXPECT_EQ(task_status, 200);
    EXPECT_EQ(task["handler"], "echo.echo");

    std::tie(status, body) = post("/api/v1/schedules/hourly/pause", reader);
    EXPECT_EQ(status, 403) << "a read token cannot pause";
    std::tie(status, body) = post("/api/v1/schedules/hourly/pause");
    ASSERT_EQ(status, 200) << body.dump();
    EXPECT_EQ(body["name"], "hourly");
    EXPECT_EQ(body["paused"], true);
    EXPECT_EQ(body["cron"], "0 * * * *");
    auto [list_status, list] = get_status("/api/v1/schedules");
    ASSERT_EQ(list_status, 200);
    const auto& s = list["schedules"][0];
    for (const auto* key : {"name", "handler", "queue", "every", "cron", "timezone", "last_fire_ms", "next_fire_ms",
                            "paused", "misfires"}) {
        EXPECT_TRUE(s.contains(key)) << key << " missing from " << s.dump();
    }
    EXPECT_EQ(s["paused"], true);
    kill_broker();
    start();
    std::tie(status, body) = post("/api/v1/schedules/hourly/resume");
    ASSERT_EQ(status, 200) << body.dump();
    EXPECT_EQ(body["paused"], false);
    EXPECT_GT(body["next_fire_ms"].get<int64_t>(), now_ms() - 1000);

    std::tie(status, body) = post("/api/v1/schedules/nope/trigger");
    EXPECT_EQ(status, 404);
    EXPECT_TRUE(body.is_object()) << "errors are JSON";
}

TEST_F(ScheduleControlE2E, WorkflowsListNewestFirstInTheCliAndTheApi) {
    start();
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        json def = {{"name", "wf" + std::to_string(i)},
                    {"steps", {{{"name", "a"}, {"handler", "echo.echo"}, {"depends_on", json::array()}}}}};
        auto r = http->Post("/api/v1/workflows", auth(writer), def.dump(), "application/json");
        ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
        ids.push_back(json::parse(r->body)["ids"][0]);
    }
    auto [status, page] = get_status("/api/v1/workflows?limit=2");
    ASSERT_EQ(status, 200) << page.dump();
    ASSERT_EQ(page["workflows"].size(), 2u);
    EXPECT_EQ(page["workflows"][0]["id"], ids[2]);
    EXPECT_EQ(page["workflows"][1]["id"], ids[1]);
    const auto& w = page["workflows"][0];
    EXPECT_EQ(w["name"], "wf2");
    EXPECT_EQ(w["state"], "RUNNING");
    EXPECT_EQ(w["steps"], 1);
    EXPECT_EQ(w["done"], 0);
    EXPECT_EQ(w["failed"], 0);
    EXPECT_GT(w["created_ms"].get<int64_t>(), 0);
    EXPECT_EQ(w["finished_ms"], 0);
    ASSERT_TRUE(page["next"].is_string());
    auto [status2, rest] = get_status("/api/v1/workflows?limit=2&before=" + page["next"].get<std::string>());
    ASSERT_EQ(status2, 200);
    ASSERT_EQ(rest["workflows"].size(), 1u);
    EXPECT_EQ(rest["workflows"][0]["id"], ids[0]);
    EXPECT_EQ(rest["next"], "");

    auto cli_page = cli_json({"workflows", "--limit", "2"});
    EXPECT_EQ(cli_page["workflows"], page["workflows"]) << "the CLI's --json is the API's object";
    EXPECT_EQ(cli_page["next"], page["next"]);
    auto cancelled = http->Post("/api/v1/workflows/" + ids[1] + "/cancel", auth(writer), "", "application/json");
    ASSERT_TRUE(cancelled && cancelled->status == 200);
    auto only = cli_json({"workflows", "--state", "cancelled"});
    ASSERT_EQ(only["workflows"].size(), 1u);
    EXPECT_EQ(only["workflows"][0]["id"], ids[1]);
    auto r = cli({"workflows"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find(ids[0]), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("wf0"), std::string::npos) << r.out;

    std::tie(status, page) = get_status("/api/v1/workflows?state=DONE");
    EXPECT_EQ(status, 400);
    std::tie(status, page) = get_status("/api/v1/workflows?stat=RUNNING");
    EXPECT_EQ(status, 400);
}
