// A store written by release 0.1.0 (tests/data/store-v1), which kept
// workflows and schedules in its meta table: a broker started on a copy
// moves them to their own tables once and serves them, before and after a
// restart.
#include <csignal>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "harness.hpp"

using namespace taskmill::testing;
using nlohmann::json;

namespace {

const fs::path& store_v1() {
    static const fs::path p = build_paths::source_dir() / "tests" / "data" / "store-v1";
    return p;
}

int64_t wall_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

json call_json(wire_client& c, std::string_view command, const std::string& id = "") {
    taskmill::protocol::request rq;
    rq.id = id;
    auto rep = c.call(command, rq);
    EXPECT_TRUE(rep && rep->ok) << (rep ? rep->error : "no reply");
    return rep && rep->ok ? from_msgpack(rep->data) : json();
}

// The steps of a WF_STATUS as name -> {state, result}.
std::map<std::string, json> steps_of(const json& wf) {
    std::map<std::string, json> out;
    for (const auto& s : wf["steps"]) {
        out[s["name"]] = {{"state", s["state"]}, {"result", s["result"]}};
    }
    return out;
}

void expect_workflows(wire_client& c) {
    auto done_then = json::parse(read_file(store_v1() / "workflow-done.json"));
    auto done = call_json(c, taskmill::protocol::cmd::wf_status, done_then["id"]);
    EXPECT_EQ(done["name"], done_then["name"]);
    EXPECT_EQ(done["state"], "SUCCEEDED");
    EXPECT_EQ(done["result"], done_then["result"]);
    EXPECT_EQ(steps_of(done), steps_of(done_then));

    auto open_then = json::parse(read_file(store_v1() / "workflow-open.json"));
    auto open = call_json(c, taskmill::protocol::cmd::wf_status, open_then["id"]);
    EXPECT_EQ(open["name"], "open-flow");
    EXPECT_EQ(open["state"], "RUNNING");
    auto steps = steps_of(open);
    EXPECT_EQ(steps["a"], steps_of(open_then)["a"]);
    EXPECT_EQ(steps["slow"]["state"], "QUEUED");  // its attempt died with the broker: requeued
    EXPECT_EQ(steps["after"]["state"], "WAITING");
}

// Each schedule carries on from its stored fire times: one not due yet
// keeps its planned next fire; one that came due while no broker ran
// fired once at start. (A schedule the broker did not find would first
// fire a whole period after the start instead.)
void expect_schedules(wire_client& c, int64_t started_ms) {
    auto then = json::parse(read_file(store_v1() / "schedules.json"));
    auto now = call_json(c, taskmill::protocol::cmd::schedules)["schedules"];
    ASSERT_EQ(now.size(), then.size());
    for (std::size_t i = 0; i < then.size(); ++i) {
        SCOPED_TRACE(then[i]["name"].get<std::string>());
        EXPECT_EQ(now[i]["name"], then[i]["name"]);
        const int64_t planned = then[i]["next_fire_ms"];
        if (planned > wall_ms()) {
            EXPECT_EQ(now[i]["next_fire_ms"], planned);
            EXPECT_EQ(now[i]["last_fire_ms"], 0);
        } else if (planned > started_ms) {
            // Came due while this test ran: fired by this broker, or not yet.
            EXPECT_GE(now[i]["next_fire_ms"].get<int64_t>(), planned);
        } else {
            EXPECT_GE(now[i]["last_fire_ms"].get<int64_t>(), planned);
        }
    }
}

}  // namespace

TEST(StoreV1, WorkflowsAndSchedulesMoveToTheirTablesAndStayServed) {
    temp_dir dir;
    auto data = dir.path() / "data";
    fs::create_directories(data);
    fs::copy_file(store_v1() / "data.mdb", data / "data.mdb");
    const auto ini = (store_v1() / "broker.ini").string();
    for (int life = 0; life < 2; ++life) {
        SCOPED_TRACE("broker life " + std::to_string(life));
        const int64_t started_ms = wall_ms();
        // Retention off: the data ages with the calendar (store_v1_test.cpp).
        broker_process broker(data,
                              {"--config", ini, "--retention-succeeded", "0", "--retention-failed", "0",
                               "--retention-cancelled", "0", "--retention-expired", "0"},
                              "broker-" + std::to_string(life) + ".log");
        wire_client c(broker.ep().frontend);
        expect_workflows(c);
        expect_schedules(c, started_ms);
        broker.proc().signal(SIGTERM);
        ASSERT_TRUE(broker.proc().wait_exit(20s));
        const bool moved =
            broker.proc().log_text().find("moved workflows=2 schedules=2 from the meta table") != std::string::npos;
        EXPECT_EQ(moved, life == 0) << broker.proc().log_text();  // once, at the first start only
    }
}
