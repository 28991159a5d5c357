// WORKFLOWS on the engine harness: summaries newest first, pages chained by
// `next`, the state filter, and the scan budget that bounds what one
// request reads whatever the workflows table holds.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;
using nlohmann::json;

namespace {

std::string mp(const json& j) {
    auto v = json::to_msgpack(j);
    return {v.begin(), v.end()};
}

json two_steps(const std::string& name) {
    return {{"name", name},
            {"on_failure", "continue"},
            {"steps",
             {{{"name", "a"}, {"handler", "t.a"}, {"retries", 0}, {"depends_on", json::array()}},
              {{"name", "b"}, {"handler", "t.b"}, {"depends_on", json::array()}}}}};
}

struct page {
    json workflows;
    std::string next;
};

class WorkflowListing : public ::testing::Test {
protected:
    explicit WorkflowListing(uint32_t budget = 20000) : h_(config(budget)) {}

    static tb::broker_config config(uint32_t budget) {
        auto cfg = sim_config();
        cfg.list_scan_budget = budget;
        return cfg;
    }
    // Submits `n` workflows named w0, w1, ... a millisecond apart; returns
    // their ids, oldest first. No worker: their steps stay queued.
    std::vector<std::string> submit(int n, int first = 0) {
        std::vector<std::string> ids;
        for (int i = first; i < first + n; ++i) {
            tp::request rq;
            rq.data = mp(two_steps("w" + std::to_string(i)));
            auto rep = h_.call(tp::cmd::wf_submit, rq);
            EXPECT_TRUE(rep.ok) << rep.error;
            ids.push_back(rep.ids.at(0));
            h_.advance(1);
        }
        return ids;
    }
    page list(const std::string& state = "", uint32_t limit = 0, const std::string& before = "") {
        tp::request rq;
        rq.state = state;
        rq.limit = limit;
        rq.before = before;
        auto rep = h_.call(tp::cmd::workflows, rq);
        EXPECT_TRUE(rep.ok) << rep.error;
        return {rep.ok ? json::from_msgpack(rep.data).at("workflows") : json::array(), rep.next};
    }
    void cancel(const std::string& id) {
        tp::request rq;
        rq.id = id;
        EXPECT_TRUE(h_.call(tp::cmd::wf_cancel, rq).ok);
    }
    static std::vector<std::string> ids_of(const json& list) {
        std::vector<std::string> out;
        for (const auto& w : list) out.push_back(w.at("id"));
        return out;
    }

    engine_harness h_;
};

class WorkflowListingBudget : public WorkflowListing {
protected:
    WorkflowListingBudget() : WorkflowListing(3) {}
};

}  // namespace

TEST_F(WorkflowListing, PagesNewestFirstChainedByNext) {
    auto ids = submit(7);
    std::vector<std::string> seen;
    std::string before;
    int pages = 0;
    do {
        auto p = list("", 3, before);
        EXPECT_LE(p.workflows.size(), 3u);
        for (const auto& id : ids_of(p.workflows)) seen.push_back(id);
        before = p.next;
        ++pages;
    } while (!before.empty() && pages < 10);
    EXPECT_EQ(pages, 3);
    std::reverse(ids.begin(), ids.end());
    EXPECT_EQ(seen, ids);
}

TEST_F(WorkflowListing, SummariesCountStepsDoneAndFailed) {
    submit(1);
    auto& w = h_.connect_worker(2, {handler("t.a"), handler("t.b")});
    auto tasks = w.dispatched();
    ASSERT_EQ(tasks.size(), 2u);
    auto p = list();
    ASSERT_EQ(p.workflows.size(), 1u);
    EXPECT_EQ(p.workflows[0].at("state"), "RUNNING");
    EXPECT_EQ(p.workflows[0].at("done"), 0);
    EXPECT_EQ(p.workflows[0].at("finished_ms"), 0);
    for (const auto& t : tasks) {
        w.result(t, t.handler == "t.a" ? "fail" : "ok", "", t.handler == "t.a" ? "boom" : "");
    }
    p = list();
    ASSERT_EQ(p.workflows.size(), 1u);
    const auto& s = p.workflows[0];
    EXPECT_EQ(s.at("name"), "w0");
    EXPECT_EQ(s.at("state"), "FAILED");
    EXPECT_EQ(s.at("steps"), 2);
    EXPECT_EQ(s.at("done"), 2);
    EXPECT_EQ(s.at("failed"), 1);
    EXPECT_EQ(s.at("created_ms"), sim_epoch_ms);
    EXPECT_EQ(s.at("finished_ms"), h_.now());
    EXPECT_TRUE(p.next.empty());
}

TEST_F(WorkflowListing, FiltersByStateAndRefusesBadInput) {
    auto ids = submit(5);
    cancel(ids[1]);
    cancel(ids[3]);
    auto p = list("CANCELLED");
    EXPECT_EQ(ids_of(p.workflows), (std::vector<std::string>{ids[3], ids[1]}));
    EXPECT_EQ(ids_of(list("RUNNING").workflows), (std::vector<std::string>{ids[4], ids[2], ids[0]}));
    tp::request rq;
    rq.state = "DONE";
    auto rep = h_.call(tp::cmd::workflows, rq);
    EXPECT_EQ(rep.error_code, "invalid_argument");
    EXPECT_NE(rep.error.find("RUNNING SUCCEEDED FAILED CANCELLED"), std::string::npos) << rep.error;
    rq = {};
    rq.before = "not-an-id";
    EXPECT_EQ(h_.call(tp::cmd::workflows, rq).error_code, "invalid_argument");
}

// With a budget of 3 records per request, a filter matching only the
// oldest of 10 workflows answers short pages with a `next` to go on from,
// and every request reads at most 3.
TEST_F(WorkflowListingBudget, ASparseFilterStopsAtTheBudgetAndGoesOn) {
    auto ids = submit(10);
    cancel(ids[0]);
    std::vector<std::string> found;
    std::string before;
    int requests = 0;
    for (;;) {
        auto p = list("CANCELLED", 100, before);
        ++requests;
        for (const auto& id : ids_of(p.workflows)) found.push_back(id);
        if (p.next.empty() || requests > 10) break;
        before = p.next;
    }
    EXPECT_EQ(found, std::vector<std::string>{ids[0]});
    EXPECT_EQ(requests, 4) << "10 records at 3 a request";
    auto first = list("CANCELLED", 100);
    EXPECT_TRUE(first.workflows.empty());
    EXPECT_EQ(first.next, ids[7]) << "the last record read: the next page starts below it";
}
