// Which task a worker's crash is charged to: only a task that was running
// alone in the dead worker; tasks that shared a crashed worker become
// suspects and run alone, so a healthy one is never failed as poison and
// the poison count is exact. The engine on the simulated clock.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

// The supervisor "sup" reports `worker` dead, its slots running `running`
// (nullopt: it does not know).
void dead(engine_harness& h, const std::string& worker, std::optional<std::vector<std::string>> running) {
    tp::control c;
    c.ids = {worker};
    c.note = "signal 6";
    c.running = std::move(running);
    h.backend("sup", tp::cmd::dead, tp::encode(c));
}

tb::broker_config with_max_crashes(uint32_t n) {
    auto cfg = sim_config();
    cfg.max_crashes = n;
    return cfg;
}

std::vector<std::string> ids_of(const std::vector<tp::work_item>& items) {
    std::vector<std::string> out;
    for (const auto& i : items) {
        out.push_back(i.id);
    }
    return out;
}

}  // namespace

TEST(CrashBlame, SharedCrashChargesNoTaskAndEachRunsAloneNext) {
    engine_harness h(with_max_crashes(1));
    auto ids = h.submit({task("a.b"), task("a.b"), task("a.b")});
    auto& w1 = h.connect_worker(3, {handler("a.b")}, {.id = "node:1", .supervisor = "sup"});
    ASSERT_EQ(w1.dispatched().size(), 3u);
    dead(h, "node:1", ids);
    for (const auto& id : ids) {
        EXPECT_EQ(h.status(id).state, "QUEUED") << "a crash shared by 3 tasks is charged to none";
    }
    auto stats = h.call(tp::cmd::stats, tp::request{});
    EXPECT_EQ(stats.stats->counters["crashes"], 0u);
    EXPECT_EQ(stats.stats->counters["suspect_crashes"], 3u);

    // Each suspect runs alone: one per idle worker, and nothing beside it.
    auto& w2 = h.connect_worker(3, {handler("a.b")}, {.id = "node:2", .supervisor = "sup"});
    auto first = w2.dispatched();
    ASSERT_EQ(first.size(), 1u);
    auto healthy = h.submit(task("a.b"));
    EXPECT_TRUE(w2.dispatched().empty()) << "a worker running a suspect gets nothing else";
    auto& w3 = h.connect_worker(3, {handler("a.b")}, {.id = "node:3", .supervisor = "sup"});
    auto second = w3.dispatched();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_NE(second[0].id, healthy) << "the older suspect first";
    w2.result(first[0], "ok");
    auto third = w2.dispatched();
    ASSERT_EQ(third.size(), 1u) << "the last suspect, alone again";
    EXPECT_NE(third[0].id, healthy);
    w3.result(second[0], "ok");
    auto next = w3.dispatched();
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].id, healthy) << "an idle worker takes healthy work again";
}

// The suspect mark lives in the store: a restarted broker still runs the
// task alone.
TEST(CrashBlame, SuspectStillRunsAloneAfterABrokerRestart) {
    engine_harness h(with_max_crashes(1));
    auto ids = h.submit({task("a.b"), task("a.b")});
    auto& w1 = h.connect_worker(2, {handler("a.b")}, {.id = "node:1", .supervisor = "sup"});
    ASSERT_EQ(w1.dispatched().size(), 2u);
    dead(h, "node:1", std::nullopt);
    h.restart();
    auto& w2 = h.connect_worker(2, {handler("a.b")}, {.id = "node:2"});
    EXPECT_EQ(w2.dispatched().size(), 1u);
}

// A crash in a worker running exactly one task is that task's: with
// max-crashes 3, the crash task fails at its third such crash, the error
// says so, and its attempts add up: 3 charged crashes + 1 shared one.
TEST(CrashBlame, CrashesAloneAreCountedExactly) {
    engine_harness h(with_max_crashes(3));
    auto crash = h.submit(task("a.b"));
    auto healthy = h.submit({task("a.b"), task("a.b")});
    auto& w0 = h.connect_worker(3, {handler("a.b")}, {.id = "node:0", .supervisor = "sup"});
    ASSERT_EQ(w0.dispatched().size(), 3u);
    dead(h, "node:0", std::vector<std::string>{crash, healthy[0], healthy[1]});
    int crashes_alone = 0;
    auto over = [&] {
        return h.status(crash).state == "FAILED" && h.status(healthy[0]).state == "SUCCEEDED" &&
               h.status(healthy[1]).state == "SUCCEEDED";
    };
    for (int n = 1; n < 20 && !over(); ++n) {
        auto& w = h.connect_worker(3, {handler("a.b")}, {.id = "node:" + std::to_string(n), .supervisor = "sup"});
        auto items = w.dispatched();
        ASSERT_EQ(items.size(), 1u) << "suspects run alone";
        if (items[0].id == crash) {
            ++crashes_alone;
            dead(h, w.id(), std::vector<std::string>{crash});
        } else {
            w.result(items[0], "ok");
            tp::control none;
            w.send(tp::cmd::bye, none);
        }
    }
    auto st = h.status(crash);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(crashes_alone, 3);
    EXPECT_EQ(st.attempts, 4u);
    EXPECT_EQ(st.error,
              "poison: crashed its worker 3 times (max-crashes 3); it was also running in 1 worker crash shared "
              "with other tasks (not counted)");
    for (const auto& id : healthy) {
        EXPECT_EQ(h.status(id).state, "SUCCEEDED");
    }
}

// Healthy tasks sharing workers with a task that crashes every worker it
// runs in: none ends FAILED, however the crashes fall (the supervisor
// naming the running tasks or not).
TEST(CrashBlame, HealthyTasksSharingWorkersWithACrasherAreNeverPoison) {
    engine_harness h(with_max_crashes(2));
    std::vector<tp::task_spec> specs(40, task("a.b"));
    auto ids = h.submit(specs);
    const std::string crash = ids[5];
    std::map<std::string, int> runs;
    for (int n = 0; n < 200; ++n) {
        bool all_final = true;
        for (const auto& id : ids) {
            auto s = h.status(id).state;
            all_final = all_final && (s == "SUCCEEDED" || s == "FAILED");
        }
        if (all_final) {
            break;
        }
        auto& w = h.connect_worker(4, {handler("a.b")}, {.id = "node:" + std::to_string(n), .supervisor = "sup"});
        // The worker runs what it is sent until the crash task comes (and
        // kills it with what runs beside it), or until nothing comes.
        for (auto items = w.dispatched(); !items.empty(); items = w.dispatched()) {
            auto names = ids_of(items);
            for (const auto& i : items) {
                ++runs[i.id];
            }
            if (std::find(names.begin(), names.end(), crash) != names.end()) {
                dead(h, w.id(), n % 2 == 0 ? std::optional(names) : std::nullopt);
                break;
            }
            for (const auto& i : items) {
                w.result(i, "ok");
            }
        }
        tp::control none;
        w.send(tp::cmd::bye, none);
    }
    for (const auto& id : ids) {
        if (id != crash) {
            EXPECT_EQ(h.status(id).state, "SUCCEEDED") << id;
        }
    }
    auto st = h.status(crash);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.attempts, static_cast<uint32_t>(runs[crash]));
    EXPECT_EQ(st.error.rfind("poison: crashed its worker 2 times (max-crashes 2)", 0), 0u) << st.error;
}

// A dead worker is often found unroutable (a DISPATCH or HEARTBEAT to it
// fails) just before its supervisor's DEAD arrives: the crash still counts.
TEST(CrashBlame, DeadAfterTheWorkerWasFoundUnroutableStillCounts) {
    engine_harness h(with_max_crashes(1));
    auto id = h.submit(task("a.b"));
    auto& w = h.connect_worker(1, {handler("a.b")}, {.id = "node:1", .supervisor = "sup"});
    ASSERT_EQ(w.dispatched().size(), 1u);
    h.disconnect("node:1");
    h.advance(sim_config().heartbeat_ms + 1);  // a HEARTBEAT to it fails
    EXPECT_EQ(h.status(id).state, "QUEUED");
    dead(h, "node:1", std::vector<std::string>{id});
    auto st = h.status(id);
    EXPECT_EQ(st.state, "FAILED");
    EXPECT_EQ(st.error, "poison: crashed its worker 1 time (max-crashes 1)");
}

// The same late DEAD for a worker that ran several tasks makes them
// suspects: queued again, each in the FIFO of tasks that run alone.
TEST(CrashBlame, LateDeadMakesQueuedTasksSuspects) {
    engine_harness h(with_max_crashes(1));
    auto ids = h.submit({task("a.b"), task("a.b")});
    auto& w = h.connect_worker(2, {handler("a.b")}, {.id = "node:1", .supervisor = "sup"});
    ASSERT_EQ(w.dispatched().size(), 2u);
    h.disconnect("node:1");
    h.advance(sim_config().heartbeat_ms + 1);
    dead(h, "node:1", ids);
    auto& w2 = h.connect_worker(2, {handler("a.b")}, {.id = "node:2"});
    EXPECT_EQ(w2.dispatched().size(), 1u);
    EXPECT_TRUE(h.status(ids[0]).state == "QUEUED" || h.status(ids[1]).state == "QUEUED");
}

// Under steady load no worker is ever idle: a suspect gets one worker
// reserved, which is sent nothing new until it is idle, then runs it.
TEST(CrashBlame, ASuspectIsNotStarvedBySteadyLoad) {
    engine_harness h(with_max_crashes(3));
    auto& busy = h.connect_worker(2, {handler("a.b")}, {.id = "node:b"});
    std::vector<tp::task_spec> specs(10, task("a.b"));
    h.submit(specs);
    auto running = busy.dispatched();
    ASSERT_EQ(running.size(), 2u);
    auto& doomed = h.connect_worker(2, {handler("a.b")}, {.id = "node:a", .supervisor = "sup"});
    auto lost = ids_of(doomed.dispatched());
    ASSERT_EQ(lost.size(), 2u);
    dead(h, "node:a", lost);  // two suspects now wait for an idle worker
    busy.result(running[0], "ok");
    EXPECT_TRUE(busy.dispatched().empty()) << "reserved: it drains instead of taking more";
    busy.result(running[1], "ok");
    auto next = busy.dispatched();
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].id, lost[0]);
    busy.result(next[0], "ok");
    next = busy.dispatched();
    ASSERT_EQ(next.size(), 1u);
    EXPECT_EQ(next[0].id, lost[1]);
    busy.result(next[0], "ok");
    EXPECT_EQ(busy.dispatched().size(), 2u) << "healthy work flows again";
}
