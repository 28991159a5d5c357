// Storage faults at the store and engine level: the data-folder lock, and
// stored records that do not decode.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "model/task_id.hpp"
#include "store/keys.hpp"

using namespace taskmill::broker;
using namespace tmtest;

namespace {

lmdb_options options(const temp_dir& dir) { return lmdb_options{dir.path.string(), 64ull << 20, durability::none}; }

// Two stores on one folder would hand out the same queued tasks; LMDB's own
// lock lets them share it, the folder lock does not.
TEST(StoreLock, SecondOpenOfAFolderIsRefusedUntilTheFirstCloses) {
    temp_dir dir;
    auto first = open_lmdb_store(options(dir));
    try {
        auto second = open_lmdb_store(options(dir));
        ADD_FAILURE() << "a second store opened the same folder";
    } catch (const store_busy& e) {
        EXPECT_NE(std::string(e.what()).find("in use by another process"), std::string::npos) << e.what();
    }
    first.reset();
    EXPECT_NO_THROW(open_lmdb_store(options(dir)));
}

// A stored record that does not decode answered `not_found`, as if the task
// had never been accepted.
class CorruptRecord : public broker_test {
protected:
    std::string plant_bad_record() {
        task_id id{};
        id[0] = 0x42;
        id[15] = 7;
        auto st = open_lmdb_store(options(dir_));
        auto txn = st->begin(true);
        EXPECT_TRUE(txn->put(table::tasks, id_bytes(id), std::string("\xc1\xc1\xc1", 3)).has_value());
        EXPECT_TRUE(txn->commit().has_value());
        return to_hex(id);
    }
};

TEST_F(CorruptRecord, StatusCancelAndRetryAnswerCorrupt) {
    const auto id = plant_bad_record();
    start();
    client c(ctx_, fe());
    tp::request rq;
    rq.id = id;
    for (auto cmd : {tp::cmd::status, tp::cmd::cancel, tp::cmd::retry}) {
        auto rep = c.call(cmd, rq);
        EXPECT_FALSE(rep.ok) << cmd;
        EXPECT_EQ(rep.error_code, "corrupt") << cmd << ": " << rep.error;
        EXPECT_NE(rep.error.find("--check-store"), std::string::npos) << rep.error;
    }
    rq.id = std::string(32, '0');
    EXPECT_EQ(c.call(tp::cmd::status, rq).error_code, "not_found");
}

TEST_F(CorruptRecord, CheckStoreNamesTheRecord) {
    const auto id = plant_bad_record();
    auto report = check_store(cfg_);
    ASSERT_FALSE(report.has_value());
    EXPECT_EQ(report.error().code, taskmill::errc::corrupt);
    EXPECT_NE(report.error().message.find("1 task record(s) do not decode (first: " + id), std::string::npos)
        << report.error().message;
}

TEST_F(CorruptRecord, CheckStoreOfAHealthyStoreSaysSo) {
    start();
    {
        client c(ctx_, fe());
        ASSERT_EQ(c.submit({task("a.b"), task("a.b")}).size(), 2u);
    }
    stop();
    auto report = check_store(cfg_);
    ASSERT_TRUE(report.has_value()) << report.error().message;
    EXPECT_NE(report->find("2 task(s)"), std::string::npos) << *report;
    EXPECT_NE(report->find("healthy"), std::string::npos) << *report;
}

}  // namespace

namespace {

// A broker restarted on a full map (here one whose recovery must also
// recount the tasks, as for an older store) comes up, serves reads and
// refuses new work with `unavailable`.
TEST_F(broker_test, StartAtAFullMapServesReadsAndRefusesNewWork) {
    cfg_.map_size_mb = 1;
    start();
    std::vector<std::string> ids;
    {
        client c(ctx_, fe());
        ids = c.submit({task("a.b"), task("a.b"), task("a.b")});
        ASSERT_EQ(ids.size(), 3u);
    }
    stop();
    {
        auto st = open_lmdb_store({dir_.path.string(), 1u << 20, durability::none});
        auto txn = st->begin(true);
        ASSERT_TRUE(txn->erase(table::meta, keys::meta_counts).has_value());
        ASSERT_TRUE(txn->commit().has_value());
        // Fill the map to the last page (and the pages freed on the way).
        int n = 0;
        for (std::size_t size : {1500, 400, 100, 10, 1}) {
            for (;; ++n) {
                auto t = st->begin(true);
                if (!t->put(table::meta, "filler/" + std::to_string(n), std::string(size, 'f')) || !t->commit()) {
                    break;
                }
            }
        }
    }
    cfg_ = test_config(dir_.path.string());
    cfg_.map_size_mb = 1;
    ASSERT_NO_THROW(start());
    client c(ctx_, fe());
    for (const auto& id : ids) {
        EXPECT_EQ(c.status(id).state, "QUEUED") << id;
    }
    tp::request rq;
    auto stats = c.call(tp::cmd::stats, rq);
    ASSERT_TRUE(stats.stats.has_value());
    EXPECT_EQ(stats.stats->states["QUEUED"], 3u);
    rq.tasks = {task("a.b")};
    auto rep = c.call(tp::cmd::submit, rq);
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.error_code, "unavailable") << rep.error;
}

}  // namespace
