// Storage faults at the store and engine level: the data-folder lock, and
// stored records that do not decode.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "task_id.hpp"

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
