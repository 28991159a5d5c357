// The HTTP side against real processes: /metrics read by the Prometheus
// project's own parser (Debian's python3-prometheus-client), the dashboard
// rendered by headless Chromium and checked against the broker's state, and
// the terminal tables showing the same figures as the API, and the CLI's
// --json objects equal to the API's.
#include "http_fixture.hpp"

#include <cstdlib>
#include <regex>

#include <gtest/gtest.h>
#include <httplib.h>

using namespace taskmill::testing;
using nlohmann::json;

namespace {

class HttpIntegration : public http_test {
protected:
    std::unique_ptr<process> host;

    // A broker with HTTP on a picked port and one host serving "default"
    // (so tasks sent to other queues stay queued).
    void start() {
        start_http_broker();
        host = start_host(tmp.path(), {.backend = broker->ep().backend,
                                       .processes = 1,
                                       .concurrency = 4,
                                       .extra = {"--queues", "default", "--prefetch", "16"}});
        ASSERT_TRUE(wait_until([&] { return get("/api/v1/workers")["workers"].size() == 1; }, 30s)) << host->log_text();
    }
    std::string submit(const json& task) {
        auto r = http->Post("/api/v1/tasks", auth(writer), task.dump(), "application/json");
        EXPECT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
        return r && r->status == 201 ? json::parse(r->body)["ids"][0].get<std::string>() : std::string();
    }
    json wait_final(const std::string& id) {
        auto r = get("/api/v1/tasks/" + id + "/result?wait_ms=20000");
        EXPECT_EQ(r.value("final", false), true) << r.dump();
        return r;
    }
};

TEST_F(HttpIntegration, MetricsParseAsPrometheusTextAndMatchTheTasksRun) {
    if (run_shell("/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null") != 0) {
        GTEST_SKIP() << "python3-prometheus-client is not installed (scripts/install-deps.sh)";
    }
    start();
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(submit({{"handler", "echo.echo"}, {"payload", {{"i", i}}}}));
    }
    ids.push_back(submit({{"handler", "demo.fail"}, {"payload", {{"mode", "permanent"}}}}));
    ids.push_back(
        submit({{"handler", "demo.fail"}, {"payload", {{"times", 1}}}, {"retries", 2}, {"backoff_base_ms", 10}}));
    for (const auto& id : ids) {
        wait_final(id);
    }
    std::string text;
    ASSERT_TRUE(wait_until(
        [&] {
            auto r = http->Get("/metrics", auth(reader));
            text = r ? r->body : "";
            return text.find(R"(taskmill_tasks_succeeded_total{handler="demo.fail"} 1)") != std::string::npos;
        },
        10s))
        << text;
    auto metrics_file = tmp.path() / "metrics.txt";
    auto parsed_file = tmp.path() / "parsed.json";
    { std::ofstream(metrics_file) << text; }
    // The reference parser: every family and sample, or a traceback.
    std::string script =
        "import json,sys\n"
        "from prometheus_client.parser import text_string_to_metric_families\n"
        "out={}\n"
        "for fam in text_string_to_metric_families(open(sys.argv[1]).read()):\n"
        "    for s in fam.samples:\n"
        "        key=s.name+'{'+','.join(k+'='+v for k,v in sorted(s.labels.items()))+'}'\n"
        "        out[key]={'type':fam.type,'value':s.value}\n"
        "json.dump(out,open(sys.argv[2],'w'))\n";
    auto script_file = tmp.path() / "parse.py";
    { std::ofstream(script_file) << script; }
    ASSERT_EQ(run_shell("/usr/bin/python3 " + script_file.string() + " " + metrics_file.string() + " " +
                        parsed_file.string() + " 2>" + (tmp.path() / "parse.err").string()),
              0)
        << read_file(tmp.path() / "parse.err");
    auto p = json::parse(read_file(parsed_file));
    auto value = [&](const std::string& key) { return p.contains(key) ? p[key]["value"].get<double>() : -1.0; };
    EXPECT_EQ(value("taskmill_tasks_submitted_total{handler=echo.echo}"), 5);
    EXPECT_EQ(value("taskmill_tasks_succeeded_total{handler=echo.echo}"), 5);
    EXPECT_EQ(value("taskmill_tasks_submitted_total{handler=demo.fail}"), 2);
    EXPECT_EQ(value("taskmill_tasks_failed_total{handler=demo.fail}"), 1);
    EXPECT_EQ(value("taskmill_tasks_succeeded_total{handler=demo.fail}"), 1);
    EXPECT_EQ(value("taskmill_tasks_retried_total{handler=demo.fail}"), 1);
    EXPECT_EQ(value("taskmill_task_run_seconds_count{handler=demo.fail}"), 3);
    EXPECT_EQ(value("taskmill_task_queue_wait_seconds_count{handler=echo.echo}"), 5);
    EXPECT_EQ(p["taskmill_task_run_seconds_count{handler=echo.echo}"]["type"], "histogram");
    EXPECT_EQ(value("taskmill_tasks{queue=default,state=SUCCEEDED}"), 6);
    EXPECT_EQ(value("taskmill_workers{}"), 1);
    // --concurrency 4, --prefetch 16 (fixed: auto would move it): reported apart.
    EXPECT_EQ(value("taskmill_worker_slots{}"), 4);
    EXPECT_EQ(value("taskmill_worker_prefetch{}"), 16);
    EXPECT_GE(value("taskmill_store_commit_seconds_count{}"), 1);
    EXPECT_EQ(value("taskmill_build_info{version=" TASKMILL_TEST_VERSION "}"), 1);
    EXPECT_GT(value("process_resident_memory_bytes{}"), 0);
    EXPECT_GT(value("process_open_fds{}"), 0);
}

TEST_F(HttpIntegration, TerminalTablesShowTheSameFigures) {
    start();
    for (int i = 0; i < 3; ++i) {
        submit({{"handler", "echo.echo"}, {"queue", "tables-q"}});
    }
    auto cli = [&](std::vector<std::string> args) {
        args.insert(args.begin(), {"--broker", broker->ep().frontend});
        return run_cli(tmp.path(), std::move(args));
    };
    auto api = get("/api/v1/stats");
    auto term = cli({"--json", "stats"});
    ASSERT_EQ(term.exit_code, 0) << term.err;
    auto j = json::parse(term.out);
    EXPECT_EQ(j["states"], api["states"]);
    EXPECT_EQ(j["queues"], api["queues"]);
    EXPECT_EQ(j["workers"], api["workers"]);
    auto table = cli({"stats"});
    ASSERT_EQ(table.exit_code, 0);
    EXPECT_TRUE(std::regex_search(table.out, std::regex(R"(tables-q\s+3\b)"))) << table.out;

    auto tasks = cli({"--json", "tasks", "--queue", "tables-q"});
    ASSERT_EQ(tasks.exit_code, 0) << tasks.err;
    EXPECT_EQ(json::parse(tasks.out).size(), get("/api/v1/tasks?queue=tables-q")["tasks"].size());
    auto workers = cli({"--json", "workers"});
    ASSERT_EQ(workers.exit_code, 0) << workers.err;
    auto wj = json::parse(workers.out);
    ASSERT_EQ(wj.size(), 1u);
    EXPECT_EQ(wj[0]["id"], get("/api/v1/workers")["workers"][0]["id"]);
}

// One JSON view (taskmill/protocol/json_view.hpp) behind both: the same
// task gives the same object, field for field, *_ms fields included.
TEST_F(HttpIntegration, TaskStatusIsTheSameObjectInTheTerminalAndTheApi) {
    start();
    auto done = submit({{"handler", "echo.echo"}, {"payload", {{"n", 7}, {"s", "x"}}}, {"tags", {"same"}}});
    wait_final(done);
    auto waiting = submit({{"handler", "echo.echo"}, {"queue", "nobody-serves-q"}, {"priority", 4}});
    auto checkpointed = submit({{"handler", "demo.checkpoint"}, {"payload", {{"steps", 3}}}});
    wait_final(checkpointed);
    EXPECT_GT(get("/api/v1/tasks/" + checkpointed)["checkpoint_size"].get<uint64_t>(), 0u);
    for (const auto& id : {done, waiting, checkpointed}) {
        auto api = get("/api/v1/tasks/" + id);
        ASSERT_EQ(api["id"], id) << api.dump();
        auto term = run_cli(tmp.path(), {"--broker", broker->ep().frontend, "--json", "status", id});
        ASSERT_EQ(term.exit_code, 0) << term.err;
        EXPECT_EQ(json::parse(term.out), api);
        auto raw = http->Get("/api/v1/tasks/" + id, auth(reader));
        ASSERT_TRUE(raw && raw->status == 200);
        EXPECT_EQ(term.out, raw->body) << "byte for byte";
    }
    auto api = get("/api/v1/tasks/" + done);
    EXPECT_EQ(api["payload"], (json{{"n", 7}, {"s", "x"}}));
    EXPECT_GT(api["payload_size"].get<uint64_t>(), 0u);
    ASSERT_EQ(api["history"].size(), 1u) << api.dump();
    EXPECT_EQ(api["history"][0]["outcome"], "ok");
    EXPECT_EQ(api["history"][0]["attempt"], 1);
    EXPECT_TRUE(api["history"][0]["worker"].is_string());
    EXPECT_TRUE(api["history"][0]["finished"].is_string());
    EXPECT_EQ(api["state"], "SUCCEEDED");
    EXPECT_EQ(api["result"], (json{{"n", 7}, {"s", "x"}}));
    EXPECT_GT(api["finished_ms"].get<int64_t>(), 0);
    EXPECT_TRUE(get("/api/v1/tasks/" + waiting)["started"].is_null());
}

TEST_F(HttpIntegration, WorkflowStatusIsTheSameObjectInTheTerminalAndTheApi) {
    start();
    json def = {{"name", "same"},
                {"steps",
                 {{{"name", "a"}, {"handler", "echo.echo"}, {"payload", {{"x", 1}}}},
                  {{"name", "b"}, {"handler", "echo.echo"}, {"depends_on", {"a"}}}}}};
    auto r = http->Post("/api/v1/workflows", auth(writer), def.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    const std::string id = json::parse(r->body)["ids"][0];
    ASSERT_TRUE(wait_until([&] { return get("/api/v1/workflows/" + id).value("state", "") == "SUCCEEDED"; }, 30s))
        << get("/api/v1/workflows/" + id).dump();
    auto api = get("/api/v1/workflows/" + id);
    auto term = run_cli(tmp.path(), {"--broker", broker->ep().frontend, "--json", "workflow", "status", id});
    ASSERT_EQ(term.exit_code, 0) << term.err;
    EXPECT_EQ(json::parse(term.out), api);
    EXPECT_EQ(api["steps"][0]["result"], (json{{"x", 1}}));
}

// The submit guard over HTTP: warnings in the reply, "strict" refuses.
TEST_F(HttpIntegration, SubmitWarnsAboutAHandlerNoWorkerOfferedAndStrictRefuses) {
    start();
    auto r = http->Post("/api/v1/tasks", auth(writer), json{{"handler", "noexist.handler"}}.dump(), "application/json");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    auto body = json::parse(r->body);
    ASSERT_EQ(body["warnings"].size(), 1u) << body.dump();
    EXPECT_NE(body["warnings"][0].get<std::string>().find("no worker has offered noexist.handler"), std::string::npos);
    r = http->Post("/api/v1/tasks", auth(writer), json{{"handler", "noexist.handler"}, {"strict", true}}.dump(),
                   "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 422) << r->body;
    EXPECT_NE(r->body.find("unknown_handler"), std::string::npos) << r->body;
    r = http->Post("/api/v1/tasks", auth(writer), json{{"handler", "echo.echo"}, {"strict", true}}.dump(),
                   "application/json");
    ASSERT_TRUE(r && r->status == 201) << (r ? r->body : "no answer");
    EXPECT_FALSE(json::parse(r->body).contains("warnings"));
    r = http->Post("/api/v1/tasks", auth(writer), json{{"handler", "echo.echo"}, {"strict", "yes"}}.dump(),
                   "application/json");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 400) << r->body;
}

}  // namespace
