// The examples of docs/HTTP.md run as written: every `curl` line of its
// ```sh blocks is run by the real curl against a real broker and host (the
// sample plugins), with the doc's placeholders ($B, $W, $R, $ID, $WF, $JOB,
// $NEXT, $S) set, and must exit 0 with the status the doc shows under it (any
// 2xx when it shows none) and a JSON body.
#include "http_fixture.hpp"

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <regex>

#include <gtest/gtest.h>
#include <httplib.h>

using namespace taskmill::testing;
using nlohmann::json;

namespace {

struct doc_example {
    int line = 0;         // where the command starts in the doc
    std::string command;  // continuation lines joined
    int status = 0;       // the `# NNN` under it; 0 = any 2xx
};

// The curl commands of the ```sh blocks of `doc`.
std::vector<doc_example> curl_examples(const fs::path& doc) {
    std::ifstream in(doc);
    std::vector<std::string> lines;
    for (std::string l; std::getline(in, l);) lines.push_back(l);
    std::vector<doc_example> out;
    bool in_sh = false;
    static const std::regex status_line(R"(^# ([1-5][0-9][0-9])\b.*)");
    for (std::size_t i = 0; i < lines.size(); ++i) {
        if (lines[i].rfind("```", 0) == 0) {
            in_sh = !in_sh && lines[i] == "```sh";
            continue;
        }
        if (!in_sh || lines[i].rfind("curl ", 0) != 0) continue;
        doc_example ex{static_cast<int>(i + 1), lines[i], 0};
        while (!ex.command.empty() && ex.command.back() == '\\' && i + 1 < lines.size()) {
            ex.command.pop_back();
            ex.command += lines[++i];
        }
        std::smatch m;
        if (i + 1 < lines.size() && std::regex_match(lines[i + 1], m, status_line)) {
            ex.status = std::stoi(m[1]);
        }
        out.push_back(ex);
    }
    return out;
}

std::string sh_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}

class HttpDocExamples : public http_test {
protected:
    std::unique_ptr<process> host;

    void start() {
        // The schedule the examples name as $S.
        const auto ini = (tmp.path() / "broker.ini").string();
        std::ofstream(ini) << "[schedule.heartbeat]\nhandler = echo.echo\nevery = 30s\n";
        start_http_broker({"--config", ini});
        host = start_host(tmp.path(), {.backend = broker->ep().backend, .extra = {"--queues", "default"}});
        ASSERT_TRUE(wait_until([&] { return call("GET", "/api/v1/workers")["workers"].size() == 1; }, 30s))
            << host->log_text();
    }

    json call(const std::string& method, const std::string& path, const json& body = nullptr) {
        auto r = method == "GET" ? http->Get(path, auth(writer))
                                 : http->Post(path, auth(writer), body.is_null() ? "" : body.dump(), "");
        return r ? json::parse(r->body, nullptr, false) : json();
    }
    static std::string first_id(const json& reply) {
        auto ids = reply.is_object() ? reply.value("ids", json::array()) : json::array();
        return ids.empty() ? std::string() : ids[0].get<std::string>();
    }
    std::string submit(const json& task) { return first_id(call("POST", "/api/v1/tasks", task)); }
    std::string finished_task() {
        auto id = submit({{"handler", "echo.echo"}, {"payload", {{"n", 7}}}});
        EXPECT_EQ(call("GET", "/api/v1/tasks/" + id + "/result?wait_ms=20000").value("final", false), true);
        return id;
    }
    std::string cancelled_task() {
        auto id = submit({{"handler", "echo.echo"}, {"queue", "parked"}});  // nobody serves "parked"
        call("POST", "/api/v1/tasks/" + id + "/cancel");
        return id;
    }

    // The placeholders for `command`: a task in the state it acts on.
    std::map<std::string, std::string> placeholders(const std::string& command) {
        std::string id;
        if (command.find("/retry") != std::string::npos) {
            id = cancelled_task();
        } else if (command.find("/run-now") != std::string::npos) {
            id = submit({{"handler", "echo.echo"}, {"delay_ms", 3600000}});
        } else {
            id = finished_task();
        }
        auto wf = call("POST", "/api/v1/workflows",
                       {{"steps", {{{"name", "a"}, {"handler", "echo.echo"}, {"queue", "parked"}}}}});
        auto job = call("POST", "/api/v1/queues/nothing-here/purge");
        auto page = call("GET", "/api/v1/tasks?limit=1");
        return {{"B", url},
                {"W", writer},
                {"R", reader},
                {"ID", id},
                {"WF", first_id(wf)},
                {"JOB", job.contains("job") ? job["job"]["id"].dump() : std::string()},
                {"NEXT", page.value("next", "")},
                {"S", "heartbeat"}};
    }

    // Runs `ex` with bash; returns (exit code, HTTP status, body).
    std::tuple<int, int, std::string> run(const doc_example& ex) {
        auto body = tmp.path() / "body";
        auto script = tmp.path() / "example.sh";
        std::ofstream(script) << "curl() { command curl -o " << sh_quote(body.string())
                              << " -w '%{http_code}' \"$@\"; }\n"
                              << ex.command << "\n";
        std::string env;
        for (const auto& [k, v] : placeholders(ex.command)) env += k + "=" + sh_quote(v) + " ";
        auto out = tmp.path() / "status";
        fs::remove(body);
        int code =
            run_shell("env " + env + "bash " + sh_quote(script.string()) + " > " + sh_quote(out.string()) + " 2>&1",
                      std::chrono::seconds(60));
        auto text = read_file(out);
        int status = 0;
        try {
            status = std::stoi(text);
        } catch (const std::exception&) {
        }
        return {code, status, fs::exists(body) ? read_file(body) : std::string()};
    }
};

TEST_F(HttpDocExamples, EveryCurlLineRunsAsWritten) {
    if (std::system("command -v curl > /dev/null") != 0) {
        GTEST_SKIP() << "curl is not installed (scripts/install-deps.sh)";
    }
    auto examples = curl_examples(build_paths::source_dir() / "docs" / "HTTP.md");
    ASSERT_GE(examples.size(), 30u) << "the doc's examples were not found";
    start();
    for (const auto& ex : examples) {
        auto [code, status, body] = run(ex);
        SCOPED_TRACE("docs/HTTP.md:" + std::to_string(ex.line) + ": " + ex.command + "\n-> " + std::to_string(status) +
                     " " + body);
        EXPECT_EQ(code, 0);
        if (ex.status != 0) {
            EXPECT_EQ(status, ex.status);
        } else {
            EXPECT_TRUE(status >= 200 && status < 300);
        }
        if (ex.command.find("$B/metrics") == std::string::npos) {
            EXPECT_FALSE(json::parse(body, nullptr, false).is_discarded()) << "not JSON";
        }
    }
}

}  // namespace
