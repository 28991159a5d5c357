// Workflows: the DAG rules on their own, then on the engine harness with a
// simulated worker that decides each step's outcome, and the C++ client
// library against a real broker.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <taskmill/client/workflow.hpp>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "workflow/workflow_json.hpp"

using namespace tmtest;
using nlohmann::json;

namespace {

std::string mp(const json& j) {
    auto v = json::to_msgpack(j);
    return {v.begin(), v.end()};
}
json from_mp(const std::string& s) { return json::from_msgpack(s.begin(), s.end()); }

json step(const std::string& name, const std::string& handler, std::vector<std::string> deps = {},
          json payload = nullptr) {
    json s = {{"name", name}, {"handler", handler}, {"depends_on", deps}};
    if (!payload.is_null()) s["payload"] = payload;
    return s;
}

json diamond(const std::string& policy = "fail_fast") {
    return {{"name", "diamond"},
            {"on_failure", policy},
            {"steps",
             {step("a", "t.a", {}, {{"x", 1}}), step("b", "t.b", {"a"}), step("c", "t.c", {"a"}),
              step("d", "t.d", {"b", "c"}, {{"own", true}})}}};
}

std::string parse_error(const json& def) {
    auto w = tb::parse_workflow(def, nullptr);
    return w ? std::string() : w.error().message;
}

}  // namespace

TEST(WorkflowModel, ParsesADiamondAndFindsSinks) {
    auto w = tb::parse_workflow(diamond(), nullptr);
    ASSERT_TRUE(w) << w.error().message;
    ASSERT_EQ(w->steps.size(), 4u);
    EXPECT_TRUE(w->fail_fast);
    EXPECT_EQ(w->steps[3].deps, (std::vector<std::size_t>{1, 2}));
    EXPECT_EQ(tb::sink_steps(*w), std::vector<std::size_t>{3});
    EXPECT_EQ(tb::ready_steps(*w), std::vector<std::size_t>{0});
    auto back = tb::decode_workflow(tb::encode_workflow(*w));
    ASSERT_TRUE(back);
    EXPECT_EQ(back->steps[3].deps, w->steps[3].deps);
    EXPECT_EQ(back->steps[0].payload, w->steps[0].payload);
}

TEST(WorkflowModel, RejectsCyclesUnknownDependenciesAndBadSteps) {
    json cyc = {{"steps", {step("a", "t.a", {"c"}), step("b", "t.b", {"a"}), step("c", "t.c", {"b"})}}};
    EXPECT_NE(parse_error(cyc).find("cycle"), std::string::npos) << parse_error(cyc);
    json unknown = {{"steps", {step("a", "t.a", {"zz"})}}};
    EXPECT_NE(parse_error(unknown).find("unknown step \"zz\""), std::string::npos) << parse_error(unknown);
    json self = {{"steps", {step("a", "t.a", {"a"})}}};
    EXPECT_NE(parse_error(self).find("itself"), std::string::npos);
    json dup = {{"steps", {step("a", "t.a"), step("a", "t.b")}}};
    EXPECT_NE(parse_error(dup).find("duplicate"), std::string::npos);
    json bad_handler = {{"steps", {step("a", "nodot")}}};
    EXPECT_NE(parse_error(bad_handler).find("handler"), std::string::npos);
    EXPECT_NE(parse_error(json{{"steps", json::array()}}).find("non-empty"), std::string::npos);
    EXPECT_NE(parse_error(json{{"steps", {step("a", "t.a")}}, {"on_failure", "maybe"}}).find("on_failure"),
              std::string::npos);
    auto unknown_handler =
        tb::parse_workflow(json{{"steps", {step("a", "t.a")}}}, [](const std::string& h) { return h != "t.a"; });
    ASSERT_FALSE(unknown_handler);
    EXPECT_NE(unknown_handler.error().message.find("no connected worker serves handler t.a"), std::string::npos);
}

TEST(WorkflowModel, StepPayloadMergesDependencyResults) {
    auto w = tb::parse_workflow(diamond(), nullptr);
    ASSERT_TRUE(w);
    EXPECT_EQ(tb::step_payload(*w, 0, {}), mp({{"x", 1}}));  // a root gets its payload unchanged
    auto d = from_mp(tb::step_payload(*w, 3, {{"b", mp("rb")}, {"c", mp({{"n", 2}})}}));
    EXPECT_EQ(d, (json{{"own", true}, {"deps", {{"b", "rb"}, {"c", {{"n", 2}}}}}}));
    w->steps[1].payload = mp(7);  // not a map: kept under "input"
    auto b = from_mp(tb::step_payload(*w, 1, {{"a", mp(nullptr)}}));
    EXPECT_EQ(b, (json{{"input", 7}, {"deps", {{"a", nullptr}}}}));
}

TEST(WorkflowModel, SkipsDependentsOfAFailureTransitively) {
    json def = {{"steps", {step("a", "t.a"), step("b", "t.b", {"a"}), step("c", "t.c", {"b"}), step("x", "t.x")}}};
    auto w = tb::parse_workflow(def, nullptr);
    ASSERT_TRUE(w);
    w->steps[0].state = tb::step_state::failed;
    auto changed = tb::skip_blocked(*w);
    EXPECT_EQ(changed.size(), 2u);
    EXPECT_EQ(w->steps[2].state, tb::step_state::skipped);
    EXPECT_EQ(w->steps[2].error, "dependency 'b' did not succeed (SKIPPED)");
    EXPECT_EQ(w->steps[3].state, tb::step_state::waiting);
    EXPECT_FALSE(tb::all_final(*w));
    w->steps[3].state = tb::step_state::succeeded;
    EXPECT_TRUE(tb::all_final(*w));
    EXPECT_EQ(tb::final_state(*w), tb::workflow_state::failed);
}

// The record keeps states by name and step task ids in hex (it is JSON);
// a name or id that is neither is a corrupt record, not a crash.
TEST(WorkflowModel, RecordKeepsStatesAndTaskIdsAndRejectsUnknownOnes) {
    auto w = tb::parse_workflow(diamond(), nullptr);
    ASSERT_TRUE(w);
    w->id = "wf1";
    w->state = tb::workflow_state::cancelled;
    w->steps[0].state = tb::step_state::expired;
    w->steps[0].task = tb::id_generator().next(1);
    w->steps[1].state = tb::step_state::queued;
    auto back = tb::decode_workflow(tb::encode_workflow(*w));
    ASSERT_TRUE(back) << back.error().message;
    EXPECT_EQ(back->state, tb::workflow_state::cancelled);
    EXPECT_EQ(back->steps[0].state, tb::step_state::expired);
    EXPECT_EQ(back->steps[0].task, w->steps[0].task);
    EXPECT_EQ(back->steps[1].state, tb::step_state::queued);
    EXPECT_FALSE(back->steps[1].task.has_value());

    auto j = json::from_msgpack(tb::encode_workflow(*w));
    j["steps"][0]["task"] = "not-hex";
    auto bad_id = tb::decode_workflow(mp(j));
    ASSERT_FALSE(bad_id);
    EXPECT_EQ(bad_id.error().code, taskmill::errc::corrupt);
    j = json::from_msgpack(tb::encode_workflow(*w));
    j["steps"][2]["state"] = "QUEUD";
    EXPECT_EQ(tb::decode_workflow(mp(j)).error().code, taskmill::errc::corrupt);
    j = json::from_msgpack(tb::encode_workflow(*w));
    j["state"] = "DONE";
    EXPECT_EQ(tb::decode_workflow(mp(j)).error().code, taskmill::errc::corrupt);
}

namespace {

// A workflow's life on the engine harness, with one 2-slot worker serving
// every step's handler (none for a test that wants steps to stay queued).
class Workflow : public ::testing::Test {
protected:
    std::string submit(const json& def) {
        tp::request rq;
        rq.data = mp(def);
        auto rep = h_.call(tp::cmd::wf_submit, rq);
        EXPECT_TRUE(rep.ok) << rep.error;
        return rep.ids.empty() ? std::string() : rep.ids[0];
    }
    json status(const std::string& id) {
        tp::request rq;
        rq.id = id;
        auto rep = h_.call(tp::cmd::wf_status, rq);
        EXPECT_TRUE(rep.ok) << rep.error;
        return rep.ok ? from_mp(rep.data) : json();
    }
    sim_worker& worker() { return h_.connect_worker(2, all_handlers()); }
    static std::string step_of(const tp::work_item& w) {
        return w.handler.substr(2);  // "t.b" -> "b"
    }
    static std::vector<tp::handler_info> all_handlers() {
        return {handler("t.a"), handler("t.b"), handler("t.c"), handler("t.d"), handler("t.e"), handler("t.f")};
    }

    engine_harness h_;
};

}  // namespace

TEST_F(Workflow, DiamondRunsBranchesTogetherAndJoinsResults) {
    auto& w = worker();
    auto id = submit(diamond());
    auto a = w.dispatched();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(from_mp(a[0].payload), (json{{"x", 1}}));
    EXPECT_EQ(a[0].parent, id);
    w.result(a[0], "ok", mp({{"from", "a"}}));
    // b and c become ready in the same turn and both go to the 2-slot worker.
    auto bc = w.dispatched();
    ASSERT_EQ(bc.size(), 2u);
    for (const auto& t : bc) {
        EXPECT_EQ(from_mp(t.payload), (json{{"deps", {{"a", {{"from", "a"}}}}}}));
    }
    EXPECT_EQ(status(id)["steps"][1]["state"], "RUNNING");
    EXPECT_EQ(status(id)["steps"][2]["state"], "RUNNING");
    for (const auto& t : bc) {
        w.result(t, "ok", mp("result of " + step_of(t)));
    }
    auto d = w.dispatched();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(from_mp(d[0].payload), (json{{"own", true}, {"deps", {{"b", "result of b"}, {"c", "result of c"}}}}));
    w.result(d[0], "ok", mp({{"joined", true}}));
    auto s = status(id);
    EXPECT_EQ(s["state"], "SUCCEEDED");
    EXPECT_EQ(s["result"], (json{{"d", {{"joined", true}}}}));
    for (const auto& st : s["steps"]) {
        EXPECT_EQ(st["state"], "SUCCEEDED") << st.dump();
    }
}

TEST_F(Workflow, SubmitRejectsCyclesAndUnknownHandlersWithAClearError) {
    h_.connect_worker(1, {handler("t.a")});
    tp::request rq;
    rq.data = mp({{"steps", {step("a", "t.a", {"b"}), step("b", "t.a", {"a"})}}});
    auto rep = h_.call(tp::cmd::wf_submit, rq);
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.error_code, "invalid_argument");
    EXPECT_NE(rep.error.find("cycle"), std::string::npos) << rep.error;
    rq.data = mp({{"steps", {step("a", "nobody.serves")}}});
    rep = h_.call(tp::cmd::wf_submit, rq);
    EXPECT_FALSE(rep.ok);
    EXPECT_NE(rep.error.find("nobody.serves"), std::string::npos) << rep.error;
    rq.data = "\xc1";  // not msgpack
    rep = h_.call(tp::cmd::wf_submit, rq);
    EXPECT_FALSE(rep.ok);
    tp::request none;
    none.id = "nope";
    EXPECT_EQ(h_.call(tp::cmd::wf_status, none).error_code, "not_found");
}

namespace {
// a -> b -> e, a -> c -> f: c fails while b runs.
json branches(const std::string& policy) {
    return {{"on_failure", policy},
            {"steps",
             {step("a", "t.a"), step("b", "t.b", {"a"}), step("c", "t.c", {"a"}), step("e", "t.e", {"b"}),
              step("f", "t.f", {"c"})}}};
}
}  // namespace

TEST_F(Workflow, FailFastCancelsWhatHasNotStarted) {
    auto& w = worker();
    auto id = submit(branches("fail_fast"));
    auto a = w.dispatched();
    ASSERT_EQ(a.size(), 1u);
    w.result(a[0], "ok", mp(1));
    auto bc = w.dispatched();
    ASSERT_EQ(bc.size(), 2u);
    const auto& b = step_of(bc[0]) == "b" ? bc[0] : bc[1];
    const auto& cc = step_of(bc[0]) == "c" ? bc[0] : bc[1];
    w.result(cc, "fail", "", "boom");
    // The running b is left to finish; e and f never start.
    auto s = status(id);
    EXPECT_EQ(s["state"], "RUNNING");
    EXPECT_EQ(s["steps"][3]["state"], "CANCELLED");
    EXPECT_EQ(s["steps"][4]["state"], "CANCELLED");
    w.result(b, "ok", mp(2));
    s = status(id);
    EXPECT_EQ(s["state"], "FAILED");
    EXPECT_EQ(s["steps"][1]["state"], "SUCCEEDED");
    EXPECT_EQ(s["steps"][2]["state"], "FAILED");
    EXPECT_EQ(s["steps"][2]["error"], "boom");
    EXPECT_TRUE(s["steps"][3]["task"].is_null());
    h_.advance(10'000);
    EXPECT_TRUE(w.dispatched().empty());
}

TEST_F(Workflow, ContinueRunsIndependentBranchesAndSkipsDependents) {
    auto& w = worker();
    auto id = submit(branches("continue"));
    auto a = w.dispatched();
    ASSERT_EQ(a.size(), 1u);
    w.result(a[0], "ok", mp(1));
    auto bc = w.dispatched();
    ASSERT_EQ(bc.size(), 2u);
    const auto& b = step_of(bc[0]) == "b" ? bc[0] : bc[1];
    const auto& cc = step_of(bc[0]) == "c" ? bc[0] : bc[1];
    w.result(cc, "fail", "", "boom");
    w.result(b, "ok", mp(2));
    auto e = w.dispatched();
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(step_of(e[0]), "e");
    w.result(e[0], "ok", mp(3));
    auto s = status(id);
    EXPECT_EQ(s["state"], "FAILED");
    EXPECT_EQ(s["steps"][3]["state"], "SUCCEEDED");
    EXPECT_EQ(s["steps"][4]["state"], "SKIPPED");
    EXPECT_TRUE(s["steps"][4]["task"].is_null());
    EXPECT_EQ(s["result"], (json{{"e", 3}, {"f", nullptr}}));
}

TEST_F(Workflow, CancelStopsWaitingAndQueuedSteps) {
    auto id = submit(branches("continue"));  // no worker: a stays QUEUED
    tp::request rq;
    rq.id = id;
    auto rep = h_.call(tp::cmd::wf_cancel, rq);
    EXPECT_TRUE(rep.ok) << rep.error;
    auto s = status(id);
    EXPECT_EQ(s["state"], "CANCELLED");
    for (const auto& st : s["steps"]) {
        EXPECT_EQ(st["state"], "CANCELLED") << st.dump();
    }
    EXPECT_EQ(h_.status(s["steps"][0]["task"].get<std::string>()).state, "CANCELLED");
}

namespace {
json chain() { return {{"name", "chain"}, {"steps", {step("a", "t.a"), step("b", "t.b", {"a"})}}}; }
}  // namespace

// Submitted with no worker connected, a chain starts its first step only,
// and says that handlers were not checked; each step starts as its
// dependency succeeds, and the finished workflow stays readable.
TEST_F(Workflow, StepsStartAsTheirDependenciesSucceed) {
    h_.subscribe("workflow.");
    tp::request rq;
    rq.data = mp(chain());
    auto rep = h_.call(tp::cmd::wf_submit, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_EQ(rep.ids.size(), 1u);
    const auto id = rep.ids[0];
    EXPECT_EQ(rep.note, "no worker connected: handlers not checked");
    auto s = status(id);
    EXPECT_EQ(s["state"], "RUNNING");
    EXPECT_TRUE(s["steps"][0]["task"].is_string());
    EXPECT_EQ(s["steps"][1]["state"], "WAITING");  // b waits for a
    EXPECT_TRUE(s["steps"][1]["task"].is_null());
    auto& w = worker();
    auto a = w.dispatched();
    ASSERT_EQ(a.size(), 1u);
    EXPECT_EQ(a[0].handler, "t.a");
    EXPECT_EQ(a[0].parent, id);
    w.result(a[0], "ok");
    auto b = w.dispatched();
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(b[0].handler, "t.b");
    EXPECT_EQ(b[0].parent, id);
    w.result(b[0], "ok");
    auto stats = h_.call(tp::cmd::stats, tp::request{});
    ASSERT_TRUE(stats.stats);
    EXPECT_EQ(stats.stats->counters["workflows_succeeded"], 1u);
    auto events = h_.events("workflow.");
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(events.back().topic, "workflow.succeeded");
    EXPECT_EQ(status(id)["state"], "SUCCEEDED");  // kept for WF_STATUS
}

// A failed step fails its fail-fast workflow at once; after a restart only
// the workflow still running goes on.
TEST_F(Workflow, AFailedStepFailsFastAndARestartResumesOnlyRunningOnes) {
    auto failing = submit(chain());
    auto running = submit(chain());
    auto& w = worker();
    auto a = w.dispatched();
    ASSERT_EQ(a.size(), 2u);
    const auto& doomed = a[0].parent == failing ? a[0] : a[1];
    w.result(doomed, "fail", "", "boom");
    auto stats = h_.call(tp::cmd::stats, tp::request{});
    ASSERT_TRUE(stats.stats);
    EXPECT_EQ(stats.stats->counters["workflows_failed"], 1u);
    EXPECT_EQ(status(failing)["state"], "FAILED");
    EXPECT_EQ(status(failing)["steps"][1]["state"], "CANCELLED");
    EXPECT_EQ(status(running)["state"], "RUNNING");
    EXPECT_TRUE(w.dispatched().empty()) << "no step of the failed workflow starts";

    h_.restart();
    auto& w2 = h_.connect_worker(2, all_handlers(), {.id = "w2"});
    std::vector<std::string> seen;
    for (int i = 0; i < 2; ++i) {
        auto t = w2.dispatched();
        ASSERT_EQ(t.size(), 1u) << "dispatch " << i;
        EXPECT_EQ(t[0].parent, running);
        seen.push_back(step_of(t[0]));
        w2.result(t[0], "ok");
    }
    EXPECT_EQ(seen, (std::vector<std::string>{"a", "b"}));
    EXPECT_EQ(status(running)["state"], "SUCCEEDED");
    EXPECT_EQ(status(failing)["state"], "FAILED");
    h_.advance(10'000);
    EXPECT_TRUE(w2.dispatched().empty());
}

TEST_F(Workflow, SurvivesABrokerRestartMidWay) {
    auto& w = worker();
    auto id = submit(diamond());
    auto a = w.dispatched();
    ASSERT_EQ(a.size(), 1u);
    w.result(a[0], "ok", mp("A"));
    auto bc = w.dispatched();
    ASSERT_EQ(bc.size(), 2u);
    w.result(bc[0], "ok", mp("first"));  // one branch done, the other running
    EXPECT_EQ(status(id)["steps"][step_of(bc[0]) == "b" ? 1 : 2]["state"], "SUCCEEDED");
    h_.restart();
    auto& w2 = h_.connect_worker(2, all_handlers(), {.id = "w2"});
    // The branch that was running is requeued; then d runs once.
    std::vector<std::string> seen;
    for (int i = 0; i < 2; ++i) {
        auto t = w2.dispatched();
        ASSERT_EQ(t.size(), 1u) << "dispatch " << i;
        seen.push_back(step_of(t[0]));
        if (seen.back() == "d") {
            auto p = from_mp(t[0].payload);
            EXPECT_EQ(p["deps"].size(), 2u);
        }
        w2.result(t[0], "ok", mp("second"));
    }
    EXPECT_EQ(seen, (std::vector<std::string>{step_of(bc[1]), "d"}));
    EXPECT_EQ(status(id)["state"], "SUCCEEDED");
    h_.advance(10'000);
    EXPECT_TRUE(w2.dispatched().empty());
}

namespace {
class WorkflowClient : public broker_test {};
}  // namespace

// The C++ builder and workflow_client against a broker on loopback TCP (the
// client has its own ZeroMQ context, so inproc is out).
TEST_F(WorkflowClient, ClientBuilderSubmitsWaitsAndLists) {
    cfg_.frontend = "tcp://127.0.0.1:0";
    cfg_.backend = "tcp://127.0.0.1:0";
    cfg_.schedules = {};
    start();
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("t.a"), handler("t.b")}, 2);
    taskmill::client::workflow_builder wf("chain");
    wf.step("a", "t.a", {{"x", 1}});
    wf.step("b", "t.b", {{"y", 2}}, {"a"}).retries = 1;
    wf.fail_fast(false);
    EXPECT_EQ(wf.to_json()["on_failure"], "continue");
    taskmill::client::client_options o;
    o.endpoint = fe();
    taskmill::client::workflow_client wc(o);
    auto id = wc.submit(wf);
    ASSERT_TRUE(id) << id.error().message;
    auto a = w.next_dispatch();
    ASSERT_EQ(a.size(), 1u);
    w.result(a[0], "ok", mp("A"));
    auto b = w.next_dispatch();
    ASSERT_EQ(b.size(), 1u);
    EXPECT_EQ(from_mp(b[0].payload), (json{{"y", 2}, {"deps", {{"a", "A"}}}}));
    w.result(b[0], "ok", mp("B"));
    auto done = wc.wait(*id, std::chrono::milliseconds(5000));
    ASSERT_TRUE(done) << done.error().message;
    EXPECT_EQ((*done)["state"], "SUCCEEDED");
    EXPECT_EQ((*done)["result"], (json{{"b", "B"}}));
    auto note = wc.cancel(*id);
    ASSERT_TRUE(note);
    EXPECT_EQ(*note, "already finished");
    auto list = wc.schedules();
    ASSERT_TRUE(list);
    EXPECT_TRUE((*list)["schedules"].empty());
    taskmill::client::workflow_builder bad;
    bad.step("a", "t.a", nullptr, {"a"});
    auto rejected = wc.submit(bad);
    ASSERT_FALSE(rejected);
    EXPECT_EQ(rejected.error().code, taskmill::errc::invalid_argument);
}

// A step result too deep to show reads as the task view shows it everywhere
// ({"msgpack_error", "size"}); before, workflow status said {"error"} here.
TEST_F(Workflow, AStepResultThatCannotBeShownReadsAsEverywhere) {
    auto& w = worker();
    auto id = submit({{"steps", {step("a", "t.a")}}});
    auto a = w.dispatched();
    ASSERT_EQ(a.size(), 1u);
    const auto deep = std::string(200, '\x91') + '\xc0';
    w.result(a[0], "ok", deep);
    auto s = status(id);
    ASSERT_EQ(s["state"], "SUCCEEDED") << s.dump();
    const auto& shown = s["steps"][0]["result"];
    EXPECT_NE(shown.value("msgpack_error", "").find("deeper than 128"), std::string::npos) << shown;
    EXPECT_EQ(shown["size"], deep.size());
    EXPECT_EQ(s["result"]["a"], shown);
    EXPECT_EQ(s["steps"][0]["attempts"], 1);
}
