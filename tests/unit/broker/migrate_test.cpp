// Workflows and schedules moved to tables of their own: the move of what
// an older release kept in the meta table, on its own and through a real
// broker that is started (and restarted) on such a store.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "broker_harness.hpp"
#include "schedule/schedule_runtime.hpp"
#include "store/keys.hpp"
#include "store/migrate.hpp"
#include "workflow/workflow_model.hpp"

using namespace tmtest;
using nlohmann::json;

namespace {

std::string schedule_value(int64_t last, int64_t anchor) {
    std::string v;
    tb::keys::put_u64(v, static_cast<uint64_t>(last));
    tb::keys::put_u64(v, static_cast<uint64_t>(anchor));
    return v;
}

std::vector<std::string> keys_of(tb::transaction& txn, tb::table t) {
    std::vector<std::string> out;
    EXPECT_TRUE(txn.scan(t, "", false, [&](std::string_view k, std::string_view) {
        out.emplace_back(k);
        return true;
    }));
    return out;
}

tb::workflow one_step_workflow(const std::string& id, tb::workflow_state state) {
    tb::workflow w;
    w.id = id;
    w.name = "wf-" + std::string(tb::to_string(state));
    w.state = state;
    w.created_ms = 1000;
    tb::wf_step s;
    s.name = "only";
    s.handler = "t.a";
    s.state = state == tb::workflow_state::running ? tb::step_state::waiting : tb::step_state::succeeded;
    w.steps.push_back(s);
    return w;
}

}  // namespace

TEST(MetaMigration, MovesLegacyRecordsOnceAndKeepsTheRest) {
    auto st = tb::make_memory_store();
    auto txn = st->begin(true);
    ASSERT_TRUE(txn->put(tb::table::meta, "workflow/aa", "wf-a"));
    ASSERT_TRUE(txn->put(tb::table::meta, "workflow/bb", "wf-b-old"));
    ASSERT_TRUE(txn->put(tb::table::meta, "schedule/nightly", "sched"));
    ASSERT_TRUE(txn->put(tb::table::meta, tb::keys::meta_seq, "12345678"));
    ASSERT_TRUE(txn->put(tb::table::workflows, "bb", "wf-b-new"));  // already moved: kept

    auto moved = tb::move_meta_records(*txn);
    ASSERT_TRUE(moved) << moved.error().message;
    EXPECT_EQ(moved->workflows, 2u);
    EXPECT_EQ(moved->schedules, 1u);
    EXPECT_EQ(keys_of(*txn, tb::table::meta), std::vector<std::string>{"seq"});
    EXPECT_EQ(keys_of(*txn, tb::table::workflows), (std::vector<std::string>{"aa", "bb"}));
    EXPECT_EQ(*txn->get(tb::table::workflows, "aa"), "wf-a");
    EXPECT_EQ(*txn->get(tb::table::workflows, "bb"), "wf-b-new");
    EXPECT_EQ(*txn->get(tb::table::schedules, "nightly"), "sched");

    auto again = tb::move_meta_records(*txn);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->workflows + again->schedules, 0u);
}

class LegacyStore : public broker_test {
protected:
    static constexpr const char* done_id = "0000018c2b3e4f50a1b2c3d4e5f60718";
    static constexpr const char* running_id = "0000018c2b3e4f50a1b2c3d4e5f60719";

    // Writes what an older release left: workflows and a schedule in meta.
    void write_legacy(int64_t last_fire) {
        auto st = tb::open_lmdb_store(tb::lmdb_options{dir_.path.string(), 64ull << 20, tb::durability::none});
        auto txn = st->begin(true);
        ASSERT_TRUE(txn->put(tb::table::meta, std::string("workflow/") + done_id,
                             tb::encode_workflow(one_step_workflow(done_id, tb::workflow_state::succeeded))));
        ASSERT_TRUE(txn->put(tb::table::meta, std::string("workflow/") + running_id,
                             tb::encode_workflow(one_step_workflow(running_id, tb::workflow_state::running))));
        ASSERT_TRUE(txn->put(tb::table::meta, "schedule/hourly", schedule_value(last_fire, last_fire)));
        ASSERT_TRUE(txn->commit());
    }
    void configure() {
        cfg_ = test_config(dir_.path.string());
        tb::schedule_config s;
        s.name = "hourly";
        s.handler = "t.a";
        s.every = "1h";
        cfg_.schedules = {s};
    }
    json call_json(client& c, std::string_view command, const std::string& id = "") {
        tp::request rq;
        rq.id = id;
        auto rep = c.call(command, rq);
        EXPECT_TRUE(rep.ok) << rep.error;
        return rep.ok ? json::from_msgpack(rep.data.begin(), rep.data.end()) : json();
    }
    void expect_served(int64_t last_fire) {
        client c(ctx_, fe());
        auto done = call_json(c, tp::cmd::wf_status, done_id);
        EXPECT_EQ(done["state"], "SUCCEEDED");
        EXPECT_EQ(done["name"], "wf-SUCCEEDED");
        auto running = call_json(c, tp::cmd::wf_status, running_id);
        EXPECT_EQ(running["state"], "RUNNING");
        auto list = call_json(c, tp::cmd::schedules);
        ASSERT_EQ(list["schedules"].size(), 1u);
        EXPECT_EQ(list["schedules"][0]["name"], "hourly");
        EXPECT_EQ(list["schedules"][0]["last_fire_ms"], last_fire);
    }
};

TEST_F(LegacyStore, IsMigratedAtFirstStartAndServedAfterARestart) {
    const int64_t now =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    const int64_t last_fire = now - 10 * 60 * 1000;  // next fire in 50 min: none in this test
    write_legacy(last_fire);
    configure();
    start();
    expect_served(last_fire);
    stop();
    {
        auto st = tb::open_lmdb_store(tb::lmdb_options{dir_.path.string(), 64ull << 20, tb::durability::none});
        auto txn = st->begin(false);
        EXPECT_EQ(keys_of(*txn, tb::table::workflows).size(), 2u);
        EXPECT_EQ(keys_of(*txn, tb::table::schedules), std::vector<std::string>{"hourly"});
        for (const auto& k : keys_of(*txn, tb::table::meta)) {
            EXPECT_FALSE(k.starts_with("workflow/") || k.starts_with("schedule/")) << k;
        }
    }
    configure();
    start();
    expect_served(last_fire);
    // The recovered running workflow is live: cancelling it ends it.
    client c(ctx_, fe());
    tp::request rq;
    rq.id = running_id;
    auto rep = c.call(tp::cmd::wf_cancel, rq);
    ASSERT_TRUE(rep.ok) << rep.error;
    EXPECT_EQ(call_json(c, tp::cmd::wf_status, running_id)["state"], "CANCELLED");
}
