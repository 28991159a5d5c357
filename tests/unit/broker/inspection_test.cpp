// Inspection on the engine harness: the attempt history a task keeps
// (STATUS), its payload, and the submit guard that warns about, or with
// strict refuses, a handler no worker has offered recently.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

constexpr int64_t day_ms = 86'400'000;

tp::work_item only(sim_worker& w) {
    auto items = w.dispatched();
    EXPECT_EQ(items.size(), 1u);
    return items.empty() ? tp::work_item{} : items.front();
}

tp::reply submit(engine_harness& h, const std::string& handler, bool strict = false) {
    tp::request rq;
    rq.tasks = {task(handler)};
    rq.strict = strict;
    return h.call(tp::cmd::submit, rq);
}

}  // namespace

TEST(AttemptHistory, ASuccessIsOneAttempt) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b", "1.2.0")});
    auto id = h.submit(task("a.b"));
    auto item = only(w);
    auto running = h.status(id);
    ASSERT_EQ(running.history.size(), 1u);
    EXPECT_EQ(running.history[0].finished_ms, 0) << "open while it runs";
    EXPECT_EQ(running.history[0].version, "1.2.0") << "the version the worker offers";
    h.advance(5);
    w.result(item, "ok");
    auto t = h.status(id);
    ASSERT_EQ(t.history.size(), 1u);
    const auto& a = t.history[0];
    EXPECT_EQ(a.attempt, 1u);
    EXPECT_EQ(a.worker, w.id());
    EXPECT_EQ(a.outcome, "ok");
    EXPECT_EQ(a.started_ms, sim_epoch_ms);
    EXPECT_EQ(a.finished_ms, sim_epoch_ms + 5);
    EXPECT_EQ(a.version, "1.0.0") << "the version the result names";
    EXPECT_TRUE(a.error.empty());
}

TEST(AttemptHistory, ARetryThenASuccess) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto spec = task("a.b");
    spec.retries = 3;
    spec.backoff_base_ms = 1;
    auto id = h.submit(spec);
    tp::results rs;
    rs.items.push_back(tp::outcome{only(w).id, 1, "retry", "", "db busy", std::nullopt, "1.0.0", 42, std::nullopt});
    w.send(rs);
    h.advance(1);
    w.result(only(w), "ok");
    auto t = h.status(id);
    ASSERT_EQ(t.history.size(), 2u);
    EXPECT_EQ(t.history[0].attempt, 1u);
    EXPECT_EQ(t.history[0].outcome, "retry");
    EXPECT_EQ(t.history[0].error, "db busy");
    EXPECT_EQ(t.history[0].error_code, 42);
    EXPECT_EQ(t.history[1].attempt, 2u);
    EXPECT_EQ(t.history[1].outcome, "ok");
    EXPECT_FALSE(t.history[1].error_code);
}

TEST(AttemptHistory, AWorkerThatDiesLosesTheAttempt) {
    engine_harness h;
    auto& w1 = h.connect_worker(1, {handler("a.b")}, {.id = "node:1", .supervisor = "sup"});
    auto id = h.submit(task("a.b"));
    only(w1);
    tp::control dead;
    dead.ids = {"node:1"};
    dead.note = "signal 9";
    h.backend("sup", tp::cmd::dead, tp::encode(dead));
    auto& w2 = h.connect_worker(1, {handler("a.b")}, {.id = "node:2"});
    w2.result(only(w2), "ok");
    auto t = h.status(id);
    ASSERT_EQ(t.history.size(), 2u);
    EXPECT_EQ(t.history[0].worker, "node:1");
    EXPECT_EQ(t.history[0].outcome, "lost");
    EXPECT_NE(t.history[0].error.find("signal 9"), std::string::npos) << t.history[0].error;
    EXPECT_EQ(t.history[1].worker, "node:2");
    EXPECT_EQ(t.history[1].outcome, "ok");
}

TEST(AttemptHistory, ATimeoutReportedAndALeaseThatRanOut) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto spec = task("a.b");
    spec.retries = 1;
    spec.timeout_ms = 100;
    spec.backoff_base_ms = 1;
    auto id = h.run_once(w, spec, "timeout", "took too long");
    h.advance(1);
    only(w);  // the second attempt: never answered, never named in a heartbeat
    h.advance(20'000);
    auto t = h.status(id);
    EXPECT_EQ(t.state, "FAILED");
    ASSERT_EQ(t.history.size(), 2u);
    EXPECT_EQ(t.history[0].outcome, "timeout");
    EXPECT_EQ(t.history[0].error, "took too long");
    EXPECT_EQ(t.history[1].outcome, "timeout") << "past its timeout when the lease ran out";
    EXPECT_NE(t.history[1].error.find("lease expired"), std::string::npos) << t.history[1].error;
}

TEST(AttemptHistory, KeepsTheLastTenAndSurvivesARestart) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto spec = task("a.b");
    spec.retries = 20;
    spec.backoff_base_ms = 1;
    spec.backoff_cap_ms = 1;
    auto id = h.submit(spec);
    for (int i = 0; i < 12; ++i) {
        w.result(only(w), "retry", "", "try " + std::to_string(i + 1));
        h.advance(1);
    }
    auto t = h.status(id);
    ASSERT_EQ(t.history.size(), tb::max_history);
    EXPECT_EQ(t.history.front().attempt, 4u) << "13 attempts: the oldest 3 are dropped";
    EXPECT_EQ(t.history.back().attempt, 13u) << "the running one";
    EXPECT_EQ(t.history[8].error, "try 12");
    w.result(only(w), "ok");
    auto before = h.status(id).history;
    h.restart();
    auto after = h.status(id).history;
    ASSERT_EQ(after.size(), before.size());
    for (std::size_t i = 0; i < after.size(); ++i) {
        EXPECT_EQ(after[i].attempt, before[i].attempt);
        EXPECT_EQ(after[i].outcome, before[i].outcome);
        EXPECT_EQ(after[i].error, before[i].error);
        EXPECT_EQ(after[i].finished_ms, before[i].finished_ms);
    }
    EXPECT_EQ(after.back().outcome, "ok");
}

TEST(Inspection, StatusCarriesThePayloadAndListsDoNot) {
    engine_harness h;
    auto spec = task("a.b");
    spec.payload = std::string("\x81\xa1n\x07", 4);  // {"n": 7}
    auto id = h.submit(spec);
    auto t = h.status(id);
    ASSERT_TRUE(t.payload);
    EXPECT_EQ(*t.payload, spec.payload);
    EXPECT_EQ(t.payload_size, spec.payload.size());
    auto list = h.call(tp::cmd::tasks, tp::request{});
    ASSERT_EQ(list.tasks.size(), 1u);
    EXPECT_FALSE(list.tasks[0].payload);
    EXPECT_EQ(list.tasks[0].payload_size, 0u);
}

TEST(SubmitGuard, AHandlerNoWorkerOfferedIsAcceptedWithAWarning) {
    engine_harness h;
    auto rep = submit(h, "noexist.handler");
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_EQ(rep.ids.size(), 1u);
    ASSERT_EQ(rep.warnings.size(), 1u);
    EXPECT_EQ(rep.warnings[0],
              "no worker has offered noexist.handler in the last 7d; the task will wait until one does");
    EXPECT_EQ(h.status(rep.ids[0]).state, "QUEUED");
}

TEST(SubmitGuard, StrictRefusesAndSubmitsNothing) {
    engine_harness h;
    h.connect_worker(1, {handler("a.b")});
    tp::request rq;
    rq.tasks = {task("a.b"), task("noexist.handler")};
    rq.strict = true;
    auto rep = h.call(tp::cmd::submit, rq);
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.error_code, "unknown_handler");
    EXPECT_NE(rep.error.find("no worker has offered noexist.handler"), std::string::npos) << rep.error;
    EXPECT_TRUE(h.call(tp::cmd::tasks, tp::request{}).tasks.empty());
    auto ok = submit(h, "a.b", true);
    EXPECT_TRUE(ok.ok) << ok.error;
    EXPECT_TRUE(ok.warnings.empty());
}

TEST(SubmitGuard, AHandlerSeenBeforeARestartIsStillKnown) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b", "2.1.0")});
    w.send(tp::cmd::bye, tp::control{});
    h.advance(3 * day_ms);
    h.restart();
    auto rep = submit(h, "a.b", true);
    EXPECT_TRUE(rep.ok) << rep.error;
    EXPECT_TRUE(rep.warnings.empty());
    EXPECT_TRUE(submit(h, "a.b@2.1", true).ok);
    h.restart(5 * day_ms);
    auto stale = submit(h, "a.b");
    ASSERT_EQ(stale.warnings.size(), 1u) << "offered 8 days ago: past the 7d memory";
}

TEST(SubmitGuard, APinnedVersionNobodyServesIsWarnedAbout) {
    engine_harness h;
    h.connect_worker(1, {handler("a.b", "1.4.2")});
    EXPECT_TRUE(submit(h, "a.b@1").warnings.empty());
    EXPECT_TRUE(submit(h, "a.b@1.4.2").warnings.empty());
    auto rep = submit(h, "a.b@3");
    ASSERT_EQ(rep.warnings.size(), 1u);
    EXPECT_NE(rep.warnings[0].find("a.b@3"), std::string::npos) << rep.warnings[0];
    EXPECT_NE(rep.warnings[0].find("other versions of a.b were offered"), std::string::npos) << rep.warnings[0];
}

TEST(SubmitGuard, AServedHandlerGetsNoWarningAndABatchOneEach) {
    engine_harness h;
    h.connect_worker(1, {handler("a.b")});
    EXPECT_TRUE(submit(h, "a.b").warnings.empty());
    tp::request rq;
    rq.tasks = {task("x.y"), task("a.b"), task("x.y"), task("z.z")};
    auto rep = h.call(tp::cmd::submit, rq);
    ASSERT_TRUE(rep.ok);
    EXPECT_EQ(rep.ids.size(), 4u);
    ASSERT_EQ(rep.warnings.size(), 2u) << "one per handler";
    EXPECT_NE(rep.warnings[0].find("x.y"), std::string::npos);
    EXPECT_NE(rep.warnings[1].find("z.z"), std::string::npos);
}

TEST(SubmitGuard, AWorkflowSubmittedWithNoWorkerConnectedWarnsAboutItsSteps) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("t.a")});
    w.send(tp::cmd::bye, tp::control{});
    nlohmann::json def = {{"steps",
                           {{{"name", "a"}, {"handler", "t.a"}},
                            {{"name", "b"}, {"handler", "nobody.serves"}, {"depends_on", {"a"}}},
                            {{"name", "c"}, {"handler", "nobody.serves"}, {"depends_on", {"a"}}}}}};
    tp::request rq;
    nlohmann::json::to_msgpack(def, rq.data);
    auto rep = h.call(tp::cmd::wf_submit, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    ASSERT_EQ(rep.warnings.size(), 1u) << "t.a was offered; nobody.serves never, named once";
    EXPECT_EQ(rep.warnings[0], "no worker has offered nobody.serves in the last 7d; the step will wait until one does");
}
