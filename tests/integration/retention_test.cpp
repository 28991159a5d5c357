// Retention against real processes: finished tasks vanish when their
// retention ends, and a broker killed in the middle of a sweep loses
// nothing unfinished and sweeps on after its restart.
#include <csignal>

#include <gtest/gtest.h>

#include "harness.hpp"
#include "system_fixture.hpp"

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

class Retention : public system_test {};

bool not_found(wire_client& c, const std::string& id) {
    tp::request rq;
    rq.id = id;
    auto rep = c.call(tp::cmd::status, rq);
    return rep && !rep->ok && rep->error_code == "not_found";
}

uint64_t state_count(wire_client& c, const std::string& state) {
    auto rep = c.call(tp::cmd::stats, tp::request{});
    if (!rep || !rep->stats) {
        return UINT64_MAX;
    }
    auto it = rep->stats->states.find(state);
    return it == rep->stats->states.end() ? 0 : it->second;
}

}  // namespace

TEST_F(Retention, FinishedTasksVanishWhenTheirRetentionEnds) {
    start_system({"--retention-succeeded", "1s"}, {.concurrency = 2}, 1);
    std::vector<tp::task_spec> tasks(20, task("echo.echo", 1));
    auto ids = client->submit(tasks);
    ASSERT_EQ(ids.size(), 20u);
    auto kept = task("echo.echo", 2);
    kept.keep_ms = 0;  // for ever
    auto kept_id = client->submit({kept}).at(0);
    for (const auto& id : ids) {
        auto t = final_state(id);
        ASSERT_EQ(t.state, "SUCCEEDED");
        EXPECT_EQ(t.delete_at_ms, t.finished_ms + 1000);
    }
    EXPECT_EQ(final_state(kept_id).delete_at_ms, 0);
    ASSERT_TRUE(wait_until([&] { return not_found(*client, ids.back()); }, 10s));
    for (const auto& id : ids) {
        EXPECT_TRUE(not_found(*client, id)) << id;
    }
    auto cli = run_cli(tmp.path(), {"--broker", broker->ep().frontend, "status", ids.front()});
    EXPECT_NE(cli.exit_code, 0);
    EXPECT_NE(cli.err.find("no task"), std::string::npos) << cli.err;
    EXPECT_FALSE(not_found(*client, kept_id)) << "keep 0 is for ever";
    auto stats = client->call(tp::cmd::stats, tp::request{});
    ASSERT_TRUE(stats && stats->stats);
    EXPECT_EQ(stats->stats->counters["deleted"], 20u);
}

// Many cancelled tasks due at once, the broker SIGKILLed while it deletes
// them: after the restart every unfinished task is still there and the
// sweep finishes the job.
TEST_F(Retention, AKillMidSweepLosesNothingUnfinished) {
    auto data = tmp.path() / "data";
    const std::vector<std::string> opts = {"--retention-cancelled", "1s", "--durability", "none"};
    auto b = std::make_unique<broker_process>(data, opts);
    auto c = std::make_unique<wire_client>(b->ep().frontend);
    constexpr std::size_t batches = 10, per_batch = 10'000;
    for (std::size_t i = 0; i < batches; ++i) {
        std::vector<tp::task_spec> tasks(per_batch, task("echo.echo"));
        for (auto& t : tasks) {
            t.delay_ms = 3'600'000;
            t.tags = {"doomed"};
        }
        ASSERT_EQ(c->submit(tasks, 60s).size(), per_batch);
    }
    // Unfinished ones that must survive: queued (no worker) and delayed.
    std::vector<tp::task_spec> keep(500, task("echo.echo"));
    for (std::size_t i = 0; i < keep.size(); i += 2) {
        keep[i].delay_ms = 3'600'000;
    }
    auto survivors = c->submit(keep);
    ASSERT_EQ(survivors.size(), keep.size());
    tp::request cancel;
    cancel.tag = "doomed";
    ASSERT_TRUE(c->call(tp::cmd::cancel, cancel, 60s).has_value());
    const uint64_t total = batches * per_batch;
    // Kill it once the sweep has started and before it is done.
    uint64_t left = total;
    ASSERT_TRUE(wait_until(
        [&] {
            left = state_count(*c, "CANCELLED");
            return left < total;
        },
        30s));
    ASSERT_GT(left, 0u) << "the sweep was over before the kill";
    b->proc().signal(SIGKILL);
    ASSERT_TRUE(b->proc().wait_exit(10s).has_value());
    c.reset();
    b = std::make_unique<broker_process>(data, opts, "broker2.log");
    c = std::make_unique<wire_client>(b->ep().frontend);
    ASSERT_TRUE(wait_until([&] { return state_count(*c, "CANCELLED") == 0; }, 60s))
        << "left before the kill: " << left << ", now: " << state_count(*c, "CANCELLED");
    EXPECT_EQ(state_count(*c, "QUEUED"), 250u);
    EXPECT_EQ(state_count(*c, "PENDING"), 250u);
    for (const auto& id : survivors) {
        auto t = c->status(id);
        ASSERT_TRUE(t.has_value()) << id;
        EXPECT_FALSE(is_final(t->state)) << id;
    }
    RecordProperty("cancelled_left_at_kill", std::to_string(left));
}
