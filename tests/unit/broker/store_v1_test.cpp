// A store written by release 0.1.0 (tests/data/store-v1: ids as hex text and
// states by name inside the task records) opened by this broker: every task
// the old CLI listed is found as it was, workflows read the same, and the
// records it rewrites read back after another restart.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>

#include <nlohmann/json.hpp>

#include "broker_harness.hpp"

using namespace tmtest;
using nlohmann::json;

namespace {

const std::filesystem::path v1_dir = std::filesystem::path(TASKMILL_TEST_DATA) / "store-v1";

json read_json(const std::string& name) {
    std::ifstream in(v1_dir / name);
    return json::parse(std::string(std::istreambuf_iterator<char>(in), {}));
}

json or_null(const std::string& s) { return s.empty() ? json(nullptr) : json(s); }

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

class StoreV1 : public broker_test {
protected:
    void SetUp() override {
        std::filesystem::copy_file(v1_dir / "data.mdb", dir_.path / "data.mdb");
        // The data ages with the calendar: with retention on, what it holds
        // would be deleted a day after it was written, before it is compared.
        cfg_.retention = {0, 0, 0, 0};
        start();
    }

    // The state `listed` (as the old CLI showed it) reads as after a
    // restart: a running attempt is requeued, and a delayed task whose time
    // has come is queued.
    static std::string after_restart(const std::string& listed, int64_t eta_ms) {
        if (listed == "RUNNING" || ((listed == "PENDING" || listed == "RETRYING") && eta_ms <= now_ms())) {
            return "QUEUED";
        }
        return listed;
    }

    json wf_status(client& c, const std::string& id) {
        tp::request rq;
        rq.id = id;
        auto rep = c.call(tp::cmd::wf_status, rq);
        EXPECT_TRUE(rep.ok) << rep.error;
        return rep.ok ? json::from_msgpack(rep.data) : json();
    }
};

TEST_F(StoreV1, EveryListedTaskIsFoundWithItsStateResultAndTags) {
    client c(ctx_, fe());
    auto listed = read_json("tasks.json");
    ASSERT_GE(listed.size(), 10u);
    for (const auto& t : listed) {
        const auto id = t["id"].get<std::string>();
        auto st = c.status(id);
        ASSERT_EQ(st.id, id);
        auto want = after_restart(t["state"].get<std::string>(), st.eta_ms);
        if (st.state != want) {
            EXPECT_TRUE(c.wait_state(id, want)) << id << " is " << c.status(id).state << ", not " << want;
            st = c.status(id);
        }
        EXPECT_EQ(st.handler, t["handler"]) << id;
        EXPECT_EQ(st.queue, t["queue"]) << id;
        EXPECT_EQ(st.priority, t["priority"]) << id;
        // A running attempt lives in memory only: the store never counted it.
        EXPECT_EQ(st.attempts, t["attempts"].get<uint32_t>() - (t["state"] == "RUNNING" ? 1 : 0)) << id;
        EXPECT_EQ(st.max_retries, t["max_retries"]) << id;
        EXPECT_EQ(json(st.tags), t["tags"]) << id;
        EXPECT_EQ(json(st.children), t["children"]) << id;
        EXPECT_EQ(or_null(st.parent), t["parent"]) << id;
        EXPECT_EQ(or_null(st.error), t["error"]) << id;
        EXPECT_EQ(st.result ? json::from_msgpack(*st.result) : json(nullptr), t["result"]) << id;
        if (t["progress"].is_null()) {
            EXPECT_FALSE(st.progress.has_value()) << id;
        } else {
            ASSERT_TRUE(st.progress.has_value()) << id;
            EXPECT_EQ(st.progress->fraction, t["progress"]["fraction"]) << id;
            EXPECT_EQ(st.progress->note, t["progress"]["note"]) << id;
        }
    }
    tp::request all;
    all.limit = 1000;
    EXPECT_EQ(c.call(tp::cmd::tasks, all).tasks.size(), listed.size());
}

TEST_F(StoreV1, WorkflowsReadTheSame) {
    client c(ctx_, fe());
    auto done = read_json("workflow-done.json");
    EXPECT_EQ(wf_status(c, done["id"].get<std::string>()), done);
    auto open = read_json("workflow-open.json");
    for (auto& s : open["steps"]) {
        if (s["state"] == "RUNNING") {
            s["state"] = "QUEUED";  // its attempt was lost with the old broker
            s["attempts"] = s["attempts"].get<int>() - 1;
        }
    }
    EXPECT_EQ(wf_status(c, open["id"].get<std::string>()), open);
}

// Cancelling by tag goes through the old store's tags index; the cancelled
// records are rewritten in the current format and read back after a restart.
TEST_F(StoreV1, RewrittenRecordsReadBackAfterARestart) {
    std::vector<std::string> tagged;
    for (const auto& t : read_json("tasks.json")) {
        if (std::find(t["tags"].begin(), t["tags"].end(), "delayed-tag") != t["tags"].end()) {
            tagged.push_back(t["id"].get<std::string>());
        }
    }
    ASSERT_EQ(tagged.size(), 2u);
    {
        client c(ctx_, fe());
        tp::request rq;
        rq.tag = "delayed-tag";
        auto rep = c.call(tp::cmd::cancel, rq);
        ASSERT_TRUE(rep.ok) << rep.error;
        EXPECT_EQ(rep.note, "2 unfinished task(s) with tag delayed-tag");
    }
    stop();
    start();
    client c(ctx_, fe());
    for (const auto& id : tagged) {
        auto st = c.status(id);
        EXPECT_EQ(st.state, "CANCELLED") << id;
        EXPECT_EQ(st.tags, std::vector<std::string>{"delayed-tag"}) << id;
    }
}

}  // namespace
