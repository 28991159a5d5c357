// The taskmill CLI against a real broker and host: output shapes and exit codes.
#include "harness.hpp"

#include <fstream>

#include <sys/wait.h>

#include <gtest/gtest.h>

#include <taskmill/protocol/wire.hpp>

using namespace taskmill::testing;

namespace {

class CliEndToEnd : public ::testing::Test {
protected:
    static void SetUpTestSuite() {
        tmp_ = new temp_dir();
        broker_ = new broker_process(tmp_->path() / "data");
        host_ =
            start_host(tmp_->path(), {.backend = broker_->ep().backend, .processes = 1, .concurrency = 4}).release();
        wire_client c(broker_->ep().frontend);
        wait_until([&] { return !c.workers().empty(); }, 30s);
    }
    static void TearDownTestSuite() {
        delete host_;
        delete broker_;
        delete tmp_;
    }
    cli_result cli(std::vector<std::string> args) {
        args.insert(args.begin(), {"--broker", broker_->ep().frontend});
        return run_cli(tmp_->path(), std::move(args));
    }
    static temp_dir* tmp_;
    static broker_process* broker_;
    static process* host_;
};
temp_dir* CliEndToEnd::tmp_ = nullptr;
broker_process* CliEndToEnd::broker_ = nullptr;
process* CliEndToEnd::host_ = nullptr;

TEST_F(CliEndToEnd, SubmitWaitPrintsTheFinishedStatusObject) {
    auto r = cli({"--json", "submit", "echo.echo", "--payload", R"({"a":[1,2,"x"]})", "--tag", "t1", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["state"], "SUCCEEDED");
    EXPECT_EQ(j["handler"], "echo.echo");
    EXPECT_EQ(j["queue"], "default");
    EXPECT_EQ(j["result"], (nlohmann::json{{"a", {1, 2, "x"}}}));
    EXPECT_EQ(j["tags"], nlohmann::json::array({"t1"}));
    EXPECT_TRUE(j["error"].is_null());
    EXPECT_TRUE(j["parent"].is_null());
    EXPECT_EQ(j["attempts"], 1);
    for (auto key : {"created", "started", "finished"}) {
        ASSERT_TRUE(j[key].is_string()) << key;
        EXPECT_EQ(j[key].get<std::string>().size(), 24u) << "ISO 8601 with ms: " << j[key];
        EXPECT_EQ(j[key].get<std::string>().back(), 'Z');
    }
}

TEST_F(CliEndToEnd, SubmitPrintsIdThenStatusAndResult) {
    auto s = cli({"--json", "submit", "echo.echo", "--payload", "7", "--priority", "3"});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto id = nlohmann::json::parse(s.out).at("id").get<std::string>();
    EXPECT_EQ(id.size(), 32u);
    auto r = cli({"--json", "result", id, "--wait", "30"});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out), 7);
    auto st = cli({"--json", "status", id});
    ASSERT_EQ(st.exit_code, 0) << st.err;
    auto j = nlohmann::json::parse(st.out);
    EXPECT_EQ(j["id"], id);
    EXPECT_EQ(j["priority"], 3);
    EXPECT_TRUE(j["progress"].is_null());
}

TEST_F(CliEndToEnd, FailedTaskExitsOne) {
    auto r = cli({"--json", "submit", "demo.fail", "--payload", R"({"mode":"permanent"})", "--wait"});
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    auto j = nlohmann::json::parse(r.out);
    EXPECT_EQ(j["state"], "FAILED");
    EXPECT_TRUE(j["error"].is_string());
}

TEST_F(CliEndToEnd, InputErrorsExitTwo) {
    EXPECT_EQ(cli({"submit", "echo.echo", "--payload", "{not json"}).exit_code, 2);
    EXPECT_EQ(cli({"nosuchcommand"}).exit_code, 2);
    EXPECT_EQ(cli({"submit", "echo.echo", "--priority", "11"}).exit_code, 2);
    EXPECT_EQ(cli({"status", "0123456789abcdef0123456789abcdef"}).exit_code, 2);
}

// Before: the CLI crashed (stack overflow in to_msgpack) on deep JSON, and
// durations near 2^63 ms reached the broker and overflowed there.
TEST_F(CliEndToEnd, DeepJsonAndOverlongDurationsExitTwo) {
    auto deep = cli({"submit", "echo.echo", "--payload", std::string(60000, '[') + std::string(60000, ']')});
    EXPECT_EQ(deep.exit_code, 2) << deep.err.substr(0, 300);
    EXPECT_NE(deep.err.find("deeper than 128"), std::string::npos) << deep.err.substr(0, 300);
    auto file = tmp_->path() / "deep-workflow.json";
    {
        std::ofstream out(file);
        out << R"({"steps": [{"name": "a", "handler": "echo.echo", "payload": )" << std::string(100000, '[')
            << std::string(100000, ']') << "}]}";
    }
    auto wf = cli({"workflow", "submit", file.string()});
    EXPECT_EQ(wf.exit_code, 2) << wf.err.substr(0, 300);
    EXPECT_NE(wf.err.find("deeper than 128"), std::string::npos) << wf.err.substr(0, 300);
    for (const char* flag : {"--delay", "--timeout", "--ttl"}) {
        auto r = cli({"submit", "echo.echo", flag, "400000000"});  // 12.7 years
        EXPECT_EQ(r.exit_code, 2) << flag << ": " << r.out << r.err;
        EXPECT_NE(r.err.find("10 years"), std::string::npos) << flag << ": " << r.err;
    }
}

TEST_F(CliEndToEnd, UnreachableBrokerExitsThree) {
    auto r = run_cli(tmp_->path(), {"--broker", "tcp://127.0.0.1:1", "--timeout", "0.5", "stats"});
    EXPECT_EQ(r.exit_code, 3) << r.out << r.err;
}

TEST_F(CliEndToEnd, TasksStatsAndWorkersPrintJson) {
    auto s = cli({"--json", "submit", "echo.echo", "--payload", "1", "--wait"});
    ASSERT_EQ(s.exit_code, 0);
    auto tasks = nlohmann::json::parse(cli({"--json", "tasks", "--state", "SUCCEEDED"}).out);
    ASSERT_TRUE(tasks.is_array());
    ASSERT_FALSE(tasks.empty());
    for (auto& t : tasks) {
        EXPECT_EQ(t["state"], "SUCCEEDED");
    }
    auto stats = nlohmann::json::parse(cli({"--json", "stats"}).out);
    EXPECT_TRUE(stats.is_object());
    auto workers = nlohmann::json::parse(cli({"--json", "workers"}).out);
    ASSERT_TRUE(workers.is_array());
    ASSERT_FALSE(workers.empty());
    EXPECT_TRUE(workers[0].contains("handlers"));
}

// tasks --handler --since --until --before --limit: the filters, pages
// that follow the cursor printed on stderr, and TIME as ISO 8601 or ago.
TEST_F(CliEndToEnd, TasksFiltersByHandlerAndTimeAndPages) {
    std::vector<std::string> ids;
    for (int i = 0; i < 3; ++i) {
        auto s = cli({"--json", "submit", "echo.echo", "--payload", "1", "--queue", "cli-pages", "--wait"});
        ASSERT_EQ(s.exit_code, 0) << s.err;
        ids.insert(ids.begin(), nlohmann::json::parse(s.out).at("id").get<std::string>());
    }
    auto first =
        cli({"--json", "tasks", "--handler", "echo.echo", "--queue", "cli-pages", "--since", "10m", "--limit", "2"});
    ASSERT_EQ(first.exit_code, 0) << first.err;
    auto page = nlohmann::json::parse(first.out);
    ASSERT_EQ(page.size(), 2u);
    EXPECT_EQ(page[0]["id"], ids[0]);
    EXPECT_EQ(page[1]["id"], ids[1]);
    const std::string hint = "--before ";
    auto at = first.err.find(hint);
    ASSERT_NE(at, std::string::npos) << "the next page's cursor on stderr: " << first.err;
    auto cursor = first.err.substr(at + hint.size());
    cursor = cursor.substr(0, cursor.find_first_of(" \n"));
    auto rest = cli(
        {"--json", "tasks", "--handler", "echo.echo", "--queue", "cli-pages", "--since", "10m", "--before", cursor});
    ASSERT_EQ(rest.exit_code, 0) << rest.err;
    auto tail = nlohmann::json::parse(rest.out);
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_EQ(tail[0]["id"], ids[2]);
    EXPECT_EQ(rest.err.find(hint), std::string::npos) << "nothing more to list";

    auto none = cli({"--json", "tasks", "--queue", "cli-pages", "--until", "2000-01-01T00:00:00Z"});
    ASSERT_EQ(none.exit_code, 0) << none.err;
    EXPECT_TRUE(nlohmann::json::parse(none.out).empty());
    EXPECT_TRUE(nlohmann::json::parse(cli({"--json", "tasks", "--handler", "no.such"}).out).empty());

    auto bad = cli({"tasks", "--since", "yesterday"});
    EXPECT_EQ(bad.exit_code, 2);
    EXPECT_NE(bad.err.find("ISO 8601"), std::string::npos) << bad.err;
    auto foreign = cli({"tasks", "--state", "FAILED", "--before", cursor});
    EXPECT_EQ(foreign.exit_code, 2) << foreign.err;
}

// ---- inspection and the submit guard ----

TEST_F(CliEndToEnd, StatusShowsThePayloadAndTheHistoryOfARetriedTask) {
    auto r = cli({"submit", "demo.fail", "--payload", R"({"times":1})", "--retries", "2", "--wait"});
    ASSERT_EQ(r.exit_code, 0) << r.out << r.err;
    auto id = r.out.substr(0, r.out.find('\n'));
    ASSERT_EQ(id.size(), 32u) << r.out;
    auto text = cli({"status", id});
    ASSERT_EQ(text.exit_code, 0) << text.err;
    EXPECT_NE(text.out.find("payload: {\"times\":1}\n"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("history:\n  #1 retry worker="), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("planned failure 1 of 1"), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("\n  #2 ok worker="), std::string::npos) << text.out;
    EXPECT_NE(text.out.find("version=1.0.0"), std::string::npos) << text.out;
    auto j = nlohmann::json::parse(cli({"--json", "status", id}).out);
    EXPECT_EQ(j["payload"], (nlohmann::json{{"times", 1}}));
    ASSERT_EQ(j["history"].size(), 2u) << j.dump();
    EXPECT_EQ(j["history"][0]["outcome"], "retry");
    EXPECT_EQ(j["history"][0]["error"], "planned failure 1 of 1");
    EXPECT_EQ(j["history"][1]["outcome"], "ok");
    EXPECT_EQ(j["history"][1]["attempt"], 2);
}

TEST_F(CliEndToEnd, ALargePayloadIsShownTruncatedWithItsSize) {
    const std::string big(100'000, 'x');
    // Delayed, so that it is still there to inspect (the fixture's host
    // serves every queue).
    auto s = cli({"submit", "echo.echo", "--delay", "3600", "--payload", "\"" + big + "\""});
    ASSERT_EQ(s.exit_code, 0) << s.err;
    auto id = s.out.substr(0, 32);
    auto j = nlohmann::json::parse(cli({"--json", "status", id}).out);
    const uint64_t size = big.size() + 5;  // a str 32 header
    EXPECT_EQ(j["payload_size"], size);
    ASSERT_TRUE(j["payload"].is_object()) << j["payload"].dump().substr(0, 200);
    EXPECT_EQ(j["payload"]["truncated"], true);
    EXPECT_EQ(j["payload"]["size"], size);
    EXPECT_EQ(j["payload"]["head"], "\"" + big.substr(0, 1023));
    auto text = cli({"status", id});
    EXPECT_NE(text.out.find("payload: \"xxxx"), std::string::npos);
    EXPECT_NE(text.out.find("... (100005 bytes of msgpack"), std::string::npos) << text.out.substr(0, 400);
    EXPECT_LT(text.out.size(), 2000u) << "cut for the terminal";
    EXPECT_EQ(cli({"cancel", id}).exit_code, 0);
}

TEST_F(CliEndToEnd, SubmittingAHandlerNoWorkerOfferedWarnsOnStderr) {
    auto r = cli({"submit", "noexist.handler"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    ASSERT_EQ(r.out.size(), 33u) << "the id alone on stdout: " << r.out;
    EXPECT_NE(r.err.find("taskmill: warning: no worker has offered noexist.handler in the last 7d; the task will "
                         "wait until one does"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(cli({"cancel", r.out.substr(0, 32)}).exit_code, 0);
    auto strict = cli({"submit", "noexist.handler", "--strict"});
    EXPECT_EQ(strict.exit_code, 2);
    EXPECT_TRUE(strict.out.empty()) << strict.out;
    EXPECT_NE(strict.err.find("unknown_handler: no worker has offered noexist.handler"), std::string::npos)
        << strict.err;
    auto served = cli({"submit", "echo.echo", "--strict"});
    EXPECT_EQ(served.exit_code, 0) << served.err;
    EXPECT_TRUE(served.err.empty()) << served.err;
}

TEST_F(CliEndToEnd, SubmitWaitPrintsTheIdBeforeTheTaskFinishes) {
    process p({build_paths::cli().string(), "--broker", broker_->ep().frontend, "submit", "demo.sleep", "--payload",
               R"({"ms":60000})", "--wait"},
              tmp_->path() / "submit-wait.log");
    std::string id;
    ASSERT_TRUE(wait_until(
        [&] {
            auto text = p.log_text();
            auto eol = text.find('\n');
            id = eol == std::string::npos ? "" : text.substr(0, eol);
            return !id.empty();
        },
        30s))
        << p.log_text();
    ASSERT_EQ(id.size(), 32u) << p.log_text();
    wire_client c(broker_->ep().frontend);
    auto t = c.status(id);
    ASSERT_TRUE(t);
    EXPECT_TRUE(t->finished_ms == 0) << "still " << t->state << " when the id was printed";
    EXPECT_TRUE(p.running());
    taskmill::protocol::request rq;
    rq.id = id;
    ASSERT_TRUE(c.call(taskmill::protocol::cmd::cancel, rq));
    auto status = p.wait_exit(30s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 1) << p.log_text();
    EXPECT_EQ(p.log_text().find('\r'), std::string::npos) << "no progress line off a terminal";
}

}  // namespace
