// The task counters (engine/task_counters.hpp) over the in-memory store.
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>

#include "engine/task_counters.hpp"
#include "model/task_record.hpp"
#include "store/keys.hpp"

using namespace taskmill;
using namespace taskmill::broker;

namespace {

task_id make_id(uint8_t n) {
    task_id id{};
    id[15] = n;
    return id;
}

spdlog::logger& quiet() {
    static spdlog::logger log("counters-test", std::make_shared<spdlog::sinks::null_sink_mt>());
    return log;
}

}  // namespace

TEST(TaskCounters, CountsMovesAndSavesRunningAsQueued) {
    auto st = make_memory_store();
    task_counters c;
    c.moved("q", std::nullopt, task_state::queued);
    c.moved("q", std::nullopt, task_state::queued);
    c.moved("q", task_state::queued, task_state::running);
    c.count("submitted", 2);
    EXPECT_EQ(c.per_queue().at("q").at(task_state::queued), 1u);
    EXPECT_EQ(c.per_queue().at("q").at(task_state::running), 1u);
    EXPECT_EQ(c.counters().at("submitted"), 2u);

    auto txn = st->begin(true);
    ASSERT_TRUE(c.save(*txn));
    task_counters back;
    ASSERT_TRUE(back.recover(*txn, quiet()));
    EXPECT_EQ(back.per_queue().at("q").at(task_state::queued), 2u);  // the store's view
    EXPECT_EQ(back.per_queue().at("q").count(task_state::running), 0u);
    EXPECT_TRUE(back.counters().empty());  // event counters start from zero
}

TEST(TaskCounters, AStoreWithoutCountsIsCountedFromItsRecords) {
    auto st = make_memory_store();
    auto txn = st->begin(true);
    for (uint8_t i = 1; i <= 3; ++i) {
        task_record r;
        r.id = make_id(i);
        r.handler = "ns.h";
        r.queue = i == 3 ? "other" : "q";
        r.state = i == 1 ? task_state::succeeded : task_state::queued;
        r.has_state = true;
        ASSERT_TRUE(txn->put(table::tasks, id_bytes(make_id(i)), encode(r)));
    }
    task_counters c;
    ASSERT_TRUE(c.recover(*txn, quiet()));
    EXPECT_EQ(c.per_queue().at("q").at(task_state::succeeded), 1u);
    EXPECT_EQ(c.per_queue().at("q").at(task_state::queued), 1u);
    EXPECT_EQ(c.per_queue().at("other").at(task_state::queued), 1u);
    // ... and the counts are written at the next save.
    ASSERT_TRUE(c.save(*txn));
    EXPECT_TRUE(txn->get(table::meta, keys::meta_counts));
}

TEST(TaskCounters, CountsNamingAnUnknownStateAreCountedAgain) {
    auto st = make_memory_store();
    auto txn = st->begin(true);
    msgpack::sbuffer buf;
    msgpack::pack(buf, std::map<std::string, std::map<std::string, uint64_t>>{{"q", {{"QUEUD", 1}}}});
    ASSERT_TRUE(txn->put(table::meta, keys::meta_counts, std::string_view(buf.data(), buf.size())));
    task_counters c;
    ASSERT_TRUE(c.recover(*txn, quiet()));
    EXPECT_TRUE(c.per_queue().empty());
}

TEST(TaskCounters, UnreadableCountsAreCountedAgain) {
    auto st = make_memory_store();
    auto txn = st->begin(true);
    ASSERT_TRUE(txn->put(table::meta, keys::meta_counts, "\xc1"));
    task_counters c;
    ASSERT_TRUE(c.recover(*txn, quiet()));
    EXPECT_TRUE(c.per_queue().empty());
}
