// Workflows and schedules end to end: real taskmill-broker, taskmill-host
// (echo and demo plugins) and the taskmill CLI.
#include <gtest/gtest.h>

#include <csignal>
#include <fstream>

#include "harness.hpp"

using namespace taskmill::testing;
using nlohmann::json;

namespace {

std::string write(const fs::path& p, const std::string& text) {
    std::ofstream(p) << text;
    return p.string();
}

std::optional<json> wf_status(wire_client& c, const std::string& id) {
    taskmill::protocol::request rq;
    rq.id = id;
    auto rep = c.call(taskmill::protocol::cmd::wf_status, rq, 5s);
    if (!rep || !rep->ok) return std::nullopt;
    return from_msgpack(rep->data);
}

// A broker on given endpoints (to come back on the same ports after a kill).
std::unique_ptr<process> broker_at(const fs::path& data, const endpoints& ep, const std::string& log) {
    fs::remove(data / "endpoints.json");
    auto p = std::make_unique<process>(
        std::vector<std::string>{build_paths::broker().string(), "--data-dir", data.string(), "--frontend", ep.frontend,
                                 "--backend", ep.backend, "--events", ep.events},
        data.parent_path() / log);
    EXPECT_TRUE(wait_until([&] { return fs::exists(data / "endpoints.json"); }, 20s)) << p->log_text();
    return p;
}

}  // namespace

TEST(WorkflowE2E, DiamondJoinsResultsAndRunsBranchesConcurrently) {
    temp_dir dir;
    broker_process broker(dir.path() / "data");
    auto host = start_host(dir.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 2});
    wire_client c(broker.ep().frontend);
    event_log events(broker.ep().events);
    ASSERT_TRUE(wait_until([&] { return !c.workers().empty(); }, 20s));
    auto file = write(dir.path() / "diamond.json", R"({
      "name": "diamond",
      "steps": [
        {"name": "a", "handler": "echo.echo", "payload": {"x": 1}},
        {"name": "b", "handler": "demo.sleep", "payload": {"ms": 800}, "depends_on": ["a"]},
        {"name": "c", "handler": "demo.sleep", "payload": {"ms": 800}, "depends_on": ["a"]},
        {"name": "d", "handler": "echo.echo", "payload": {"tag": "join"}, "depends_on": ["b", "c"]}
      ]})");
    auto r =
        run_cli(dir.path(), {"--broker", broker.ep().frontend, "--json", "workflow", "submit", file, "--wait", "30"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto s = json::parse(r.out);
    EXPECT_EQ(s["state"], "SUCCEEDED");
    // d got its own payload plus both results; echo returns what it got.
    const auto& d = s["result"]["d"];
    EXPECT_EQ(d["tag"], "join");
    EXPECT_TRUE(d["deps"].contains("b") && d["deps"].contains("c")) << d.dump();
    EXPECT_FALSE(d["deps"]["b"].is_null());
    // b and c overlapped in time on the 2-slot host.
    auto b = c.status(s["steps"][1]["task"].get<std::string>());
    auto cc = c.status(s["steps"][2]["task"].get<std::string>());
    ASSERT_TRUE(b && cc);
    EXPECT_LT(b->started_ms, cc->finished_ms);
    EXPECT_LT(cc->started_ms, b->finished_ms);
    // Events: start, each step's transitions, end.
    auto wf_id = s["id"].get<std::string>();
    EXPECT_TRUE(events.wait_for(
        [&](const json& e) { return e.value("type", "") == "workflow.succeeded" && e.value("workflow", "") == wf_id; },
        5s));
    EXPECT_TRUE(events.wait_for([&](const json& e) { return e.value("type", "") == "workflow.started"; }, 1s));
    EXPECT_TRUE(events.wait_for(
        [&](const json& e) {
            return e.value("type", "") == "workflow.step" && e.value("step", "") == "d" &&
                   e.value("state", "") == "SUCCEEDED";
        },
        1s));
    // status and the text form.
    auto st = run_cli(dir.path(), {"--broker", broker.ep().frontend, "workflow", "status", s["id"]});
    EXPECT_EQ(st.exit_code, 0);
    EXPECT_NE(st.out.find("SUCCEEDED"), std::string::npos) << st.out;
}

TEST(WorkflowE2E, RejectsACycleAtSubmit) {
    temp_dir dir;
    broker_process broker(dir.path() / "data");
    auto file = write(dir.path() / "cycle.json",
                      R"({"steps": [{"name": "a", "handler": "echo.echo", "depends_on": ["b"]},
                                    {"name": "b", "handler": "echo.echo", "depends_on": ["a"]}]})");
    auto r = run_cli(dir.path(), {"--broker", broker.ep().frontend, "workflow", "submit", file});
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_NE(r.err.find("cycle"), std::string::npos) << r.err;
}

TEST(WorkflowE2E, FailingBranchFailsFastOrContinues) {
    temp_dir dir;
    broker_process broker(dir.path() / "data");
    auto host = start_host(dir.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 2});
    wire_client c(broker.ep().frontend);
    ASSERT_TRUE(wait_until([&] { return !c.workers().empty(); }, 20s));
    for (std::string policy : {"fail_fast", "continue"}) {
        // a -> bad -> after_bad;  a -> slow -> after_slow
        auto file = write(dir.path() / (policy + ".json"), R"({"on_failure": ")" + policy + R"(", "steps": [
            {"name": "a", "handler": "echo.echo"},
            {"name": "bad", "handler": "demo.fail", "payload": {"mode": "permanent"}, "retries": 0, "depends_on": ["a"]},
            {"name": "slow", "handler": "demo.sleep", "payload": {"ms": 600}, "depends_on": ["a"]},
            {"name": "after_bad", "handler": "echo.echo", "depends_on": ["bad"]},
            {"name": "after_slow", "handler": "echo.echo", "depends_on": ["slow"]}]})");
        auto r = run_cli(dir.path(),
                         {"--broker", broker.ep().frontend, "--json", "workflow", "submit", file, "--wait", "30"});
        EXPECT_EQ(r.exit_code, 1) << policy << r.err;
        auto s = json::parse(r.out);
        EXPECT_EQ(s["state"], "FAILED") << policy;
        EXPECT_EQ(s["steps"][1]["state"], "FAILED");
        EXPECT_EQ(s["steps"][2]["state"], "SUCCEEDED") << "a running step is left to finish";
        EXPECT_TRUE(s["steps"][3]["task"].is_null()) << "nothing runs after a failed dependency";
        if (policy == "fail_fast") {
            EXPECT_EQ(s["steps"][3]["state"], "CANCELLED");
            EXPECT_EQ(s["steps"][4]["state"], "CANCELLED");
            EXPECT_TRUE(s["steps"][4]["task"].is_null());
        } else {
            EXPECT_EQ(s["steps"][3]["state"], "SKIPPED");
            EXPECT_EQ(s["steps"][4]["state"], "SUCCEEDED");
        }
    }
}

TEST(WorkflowE2E, BrokerKilledMidWorkflowCompletesAfterRestart) {
    temp_dir dir;
    auto data = dir.path() / "data";
    auto first = std::make_unique<broker_process>(data);
    auto ep = first->ep();
    auto host = start_host(dir.path(), {.backend = ep.backend, .processes = 1, .concurrency = 2});
    std::string id;
    {
        wire_client c(ep.frontend);
        ASSERT_TRUE(wait_until([&] { return !c.workers().empty(); }, 20s));
        auto file = write(dir.path() / "wf.json", R"({"on_failure": "continue", "steps": [
            {"name": "a", "handler": "echo.echo", "payload": {"n": 1}},
            {"name": "slow", "handler": "demo.sleep", "payload": {"ms": 1500}, "depends_on": ["a"]},
            {"name": "bad", "handler": "demo.fail", "payload": {"mode": "permanent"}, "retries": 0, "depends_on": ["a"]},
            {"name": "join", "handler": "echo.echo", "depends_on": ["slow"]},
            {"name": "after_bad", "handler": "echo.echo", "depends_on": ["bad"]}]})");
        auto r = run_cli(dir.path(), {"--broker", ep.frontend, "workflow", "submit", file});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        id = r.out.substr(0, r.out.find('\n'));
        ASSERT_TRUE(wait_until(
            [&] {
                auto s = wf_status(c, id);
                return s && (*s)["steps"][1]["state"] == "RUNNING";
            },
            20s));
    }
    first->proc().signal(SIGKILL);
    ASSERT_TRUE(first->proc().wait_exit(10s));
    auto second = broker_at(data, ep, "broker2.log");
    wire_client c(ep.frontend);
    std::optional<json> s;
    ASSERT_TRUE(wait_until(
        [&] {
            s = wf_status(c, id);
            return s && (*s)["state"] != "RUNNING";
        },
        30s))
        << second->log_text();
    EXPECT_EQ((*s)["state"], "FAILED");
    EXPECT_EQ((*s)["steps"][0]["state"], "SUCCEEDED");
    EXPECT_EQ((*s)["steps"][1]["state"], "SUCCEEDED");
    EXPECT_EQ((*s)["steps"][2]["state"], "FAILED");
    EXPECT_EQ((*s)["steps"][3]["state"], "SUCCEEDED");
    EXPECT_EQ((*s)["steps"][4]["state"], "SKIPPED");
    EXPECT_TRUE((*s)["steps"][4]["task"].is_null()) << "no step ran after a failed dependency";
    EXPECT_TRUE((*s)["result"]["join"]["deps"].contains("slow")) << s->dump();
    // Every step that ran is one task of this workflow, none lost or doubled.
    taskmill::protocol::request rq;
    rq.tag = "workflow:" + id;
    auto tasks = c.call(taskmill::protocol::cmd::tasks, rq);
    ASSERT_TRUE(tasks);
    EXPECT_EQ(tasks->tasks.size(), 4u);
}

TEST(ScheduleE2E, EverySecondFromBrokerIniAndListed) {
    temp_dir dir;
    auto ini = write(dir.path() / "broker.ini",
                     "[schedule.tick]\nhandler = echo.echo\npayload = {\"from\": \"schedule\"}\nevery = 1s\n"
                     "[schedule.nightly]\nhandler = echo.echo\ncron = \"0 3 * * *\"\ntimezone = Europe/Paris\n");
    broker_process broker(dir.path() / "data", {"--config", ini});
    auto host = start_host(dir.path(), {.backend = broker.ep().backend});
    wire_client c(broker.ep().frontend);
    auto t0 = std::chrono::steady_clock::now();
    taskmill::protocol::request rq;
    rq.tag = "schedule:tick";
    ASSERT_TRUE(wait_until([&] { return std::chrono::steady_clock::now() - t0 > 3500ms; }, 10s));
    auto tasks = c.call(taskmill::protocol::cmd::tasks, rq);
    ASSERT_TRUE(tasks);
    EXPECT_GE(tasks->tasks.size(), 2u);
    EXPECT_LE(tasks->tasks.size(), 4u);
    ASSERT_TRUE(c.wait_final(tasks->tasks.back().id, 10s));
    EXPECT_EQ(c.status(tasks->tasks.back().id)->state, "SUCCEEDED");
    auto r = run_cli(dir.path(), {"--broker", broker.ep().frontend, "--json", "schedules"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    auto list = json::parse(r.out);
    ASSERT_EQ(list.size(), 2u);
    EXPECT_EQ(list[0]["name"], "tick");
    EXPECT_GT(list[0]["last_fire_ms"].get<int64_t>(), 0);
    EXPECT_EQ(list[1]["timezone"], "Europe/Paris");
    EXPECT_TRUE(list[1]["last_fire"].is_null());
}

TEST(ScheduleE2E, MalformedCronStopsTheBrokerNamingFileAndLine) {
    temp_dir dir;
    auto ini = write(dir.path() / "broker.ini", "# schedules\n[schedule.bad]\nhandler = echo.echo\ncron = 0 3 * * 8\n");
    process p({build_paths::broker().string(), "--config", ini, "--data-dir", (dir.path() / "data").string()},
              dir.path() / "broker.log");
    auto st = p.wait_exit(10s);
    ASSERT_TRUE(st);
    EXPECT_TRUE(WIFEXITED(*st) && WEXITSTATUS(*st) == 2);
    EXPECT_NE(p.log_text().find(ini + ":4: schedule bad: cron '0 3 * * 8': day of week field: 8 is out of range"),
              std::string::npos)
        << p.log_text();
}

TEST(WorkflowE2E, RepeatedBrokerKillsLoseNoStep) {
    temp_dir dir;
    auto data = dir.path() / "data";
    auto first = std::make_unique<broker_process>(data);
    auto ep = first->ep();
    auto host = start_host(dir.path(), {.backend = ep.backend, .processes = 1, .concurrency = 2});
    std::string steps;
    for (int i = 1; i <= 6; ++i) {
        steps += std::string(i > 1 ? "," : "") + R"({"name": "s)" + std::to_string(i) +
                 R"(", "handler": "demo.sleep", "payload": {"ms": 250})" +
                 (i > 1 ? R"(, "depends_on": ["s)" + std::to_string(i - 1) + "\"]" : std::string()) + "}";
    }
    auto file = write(dir.path() / "chain.json", "{\"steps\": [" + steps + "]}");
    std::string id;
    {
        wire_client c(ep.frontend);
        ASSERT_TRUE(wait_until([&] { return !c.workers().empty(); }, 20s));
        auto r = run_cli(dir.path(), {"--broker", ep.frontend, "workflow", "submit", file});
        ASSERT_EQ(r.exit_code, 0) << r.err;
        id = r.out.substr(0, r.out.find('\n'));
    }
    std::unique_ptr<process> current;
    for (int kill = 0; kill < 3; ++kill) {
        // Let it progress a little (a step or two), then kill it mid-flight.
        {
            wire_client c(ep.frontend);
            int want = 2 * kill + 1;
            ASSERT_TRUE(wait_until(
                [&] {
                    auto s = wf_status(c, id);
                    return s && (*s)["steps"][want]["state"] != "WAITING";
                },
                20s))
                << "kill " << kill;
        }
        auto& proc = current ? *current : first->proc();
        proc.signal(SIGKILL);
        ASSERT_TRUE(proc.wait_exit(10s));
        current = broker_at(data, ep, "broker-" + std::to_string(kill) + ".log");
    }
    wire_client c(ep.frontend);
    std::optional<json> s;
    ASSERT_TRUE(wait_until(
        [&] {
            s = wf_status(c, id);
            return s && (*s)["state"] != "RUNNING";
        },
        30s))
        << current->log_text();
    EXPECT_EQ((*s)["state"], "SUCCEEDED") << s->dump();
    taskmill::protocol::request rq;
    rq.tag = "workflow:" + id;
    auto tasks = c.call(taskmill::protocol::cmd::tasks, rq);
    ASSERT_TRUE(tasks);
    EXPECT_EQ(tasks->tasks.size(), 6u) << "one task per step, none lost or doubled";
    EXPECT_EQ((*s)["result"]["s6"]["slept_ms"], 250);
}
