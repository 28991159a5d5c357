// workflow_engine as a client of task_ops: steps become tasks through the
// fake engine, and the final-state hook moves the workflow on. The same
// rules through a real broker are in workflow_test.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "fake_task_ops.hpp"
#include "workflow/workflow_engine.hpp"

using namespace tmtest;
using nlohmann::json;

namespace {

protocol::request wf_submit(const json& def) {
    protocol::request rq;
    rq.req = 1;
    auto v = json::to_msgpack(def);
    rq.data.assign(v.begin(), v.end());
    return rq;
}

json chain() {
    return {
        {"name", "chain"},
        {"steps", {{{"name", "a"}, {"handler", "t.a"}}, {{"name", "b"}, {"handler", "t.b"}, {"depends_on", {"a"}}}}}};
}

// The task of the n-th submitted step ends in `s`.
task_record ended(fake_ops& ops, std::size_t n, task_state s) {
    auto it = ops.tasks.begin();
    std::advance(it, static_cast<std::ptrdiff_t>(n));
    it->second.state = s;
    return it->second;
}

}  // namespace

TEST(WorkflowEngine, StartsStepsAsTheirDependenciesSucceed) {
    fake_ops ops;
    ops.set_time(1000);
    ops.events().subscription(true, "workflow.");
    workflow_engine wf(ops, quiet_log());
    wf.submit("client-1", wf_submit(chain()));
    ASSERT_EQ(ops.replies.size(), 1u);
    ASSERT_EQ(ops.replies[0].rep.ids.size(), 1u);
    const auto id = ops.replies[0].rep.ids[0];
    EXPECT_EQ(ops.replies[0].rep.note, "no worker connected: handlers not checked");
    ASSERT_EQ(ops.submitted.size(), 1u);  // only a: b waits for it
    EXPECT_EQ(ops.submitted[0].handler, "t.a");
    EXPECT_EQ(ops.submitted[0].parent, id);
    EXPECT_EQ(wf.running(), 1u);

    wf.on_task_final(ended(ops, 0, task_state::succeeded));
    ASSERT_EQ(ops.submitted.size(), 2u);
    EXPECT_EQ(ops.submitted[1].handler, "t.b");
    wf.on_task_final(ended(ops, 1, task_state::succeeded));
    EXPECT_EQ(wf.running(), 0u);
    EXPECT_EQ(ops.counters["workflows_succeeded"], 1);
    EXPECT_EQ(ops.events_.back().first, "workflow.succeeded");
    EXPECT_TRUE(ops.get(table::workflows, id));  // kept for WF_STATUS
}

TEST(WorkflowEngine, AFailedStepFailsFastAndRecoveryFindsOnlyRunningOnes) {
    fake_ops ops;
    workflow_engine wf(ops, quiet_log());
    wf.submit("c", wf_submit(chain()));
    wf.submit("c", wf_submit(chain()));
    wf.on_task_final(ended(ops, 0, task_state::failed));
    EXPECT_EQ(ops.counters["workflows_failed"], 1);
    EXPECT_EQ(wf.running(), 1u);

    workflow_engine after_restart(ops, quiet_log());
    after_restart.recover();
    EXPECT_EQ(after_restart.running(), 1u);
}
