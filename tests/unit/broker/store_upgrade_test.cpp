// A store written before the listing indexes and retention is upgraded at
// start in slices, each its own transaction recording where the next one
// starts: every task gets its index entries and every finished one its
// expiry entry, and an upgrade cut short resumes at its mark.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "model/task_record.hpp"
#include "store/keys.hpp"

using namespace tmtest;

namespace {

std::unique_ptr<tb::store> lmdb_in(const temp_dir& dir) {
    return tb::open_lmdb_store(tb::lmdb_options{dir.path.string(), 256ull << 20, tb::durability::none});
}

std::size_t count_entries(tb::store& st, tb::table t) {
    auto txn = st.begin(false);
    std::size_t n = 0;
    EXPECT_TRUE(txn->scan(t, "", false, [&](std::string_view, std::string_view) {
        ++n;
        return true;
    }));
    return n;
}

void erase_all(tb::transaction& txn, tb::table t) {
    std::vector<std::string> keys;
    ASSERT_TRUE(txn.scan(t, "", false, [&](std::string_view k, std::string_view) {
        keys.emplace_back(k);
        return true;
    }));
    for (const auto& k : keys) ASSERT_TRUE(txn.erase(t, k));
}

// Leaves the store as a release before indexes and retention wrote it: no
// index, tag or expiry entries, no delete_at in the records, no flags.
void make_it_older(tb::store& st) {
    auto txn = st.begin(true);
    erase_all(*txn, tb::table::index);
    erase_all(*txn, tb::table::tags);
    erase_all(*txn, tb::table::expiry);
    std::vector<std::pair<std::string, tb::task_record>> finished;
    ASSERT_TRUE(txn->scan(tb::table::tasks, "", false, [&](std::string_view k, std::string_view v) {
        auto r = tb::decode_record(v);
        EXPECT_TRUE(r.has_value());
        if (r && r->delete_at_ms != 0) finished.emplace_back(std::string(k), std::move(*r));
        return true;
    }));
    for (auto& [k, r] : finished) {
        r.delete_at_ms = 0;
        ASSERT_TRUE(txn->put(tb::table::tasks, k, tb::encode(r)));
    }
    for (auto key : {tb::keys::meta_listing_indexed, tb::keys::meta_tags_indexed, tb::keys::meta_expiry_indexed}) {
        ASSERT_TRUE(txn->erase(tb::table::meta, key));
    }
    ASSERT_TRUE(txn->commit());
}

bool has_meta(tb::store& st, std::string_view key) {
    auto txn = st.begin(false);
    return txn->get(tb::table::meta, key).has_value();
}

std::string failed_task(engine_harness& h) {
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 0;
    t.tags = {"old"};
    return h.run_once(w, t, "fail", "boom");
}

}  // namespace

TEST(StoreUpgrade, AStoreLargerThanASliceGetsEveryEntry) {
    temp_dir dir;
    engine_harness h(sim_config(), lmdb_in(dir), sim_epoch_ms);
    constexpr std::size_t waiting = 25000;  // three slices
    for (std::size_t sent = 0; sent < waiting; sent += 5000) {
        auto ids = h.submit(std::vector<tp::task_spec>(5000, task("z.none")));
        ASSERT_EQ(ids.size(), 5000u);
    }
    auto failed = failed_task(h);
    const auto entries = count_entries(h.store(), tb::table::index);
    ASSERT_EQ(entries, 2 * waiting + 5) << "two index entries a QUEUED task, five a FAILED one";
    make_it_older(h.store());
    ASSERT_EQ(count_entries(h.store(), tb::table::index), 0u);

    h.restart();
    EXPECT_EQ(count_entries(h.store(), tb::table::index), entries);
    EXPECT_EQ(count_entries(h.store(), tb::table::expiry), 1u) << "the failed task expires";
    EXPECT_GT(h.status(failed).delete_at_ms, 0);
    EXPECT_TRUE(has_meta(h.store(), tb::keys::meta_listing_indexed));
    EXPECT_TRUE(has_meta(h.store(), tb::keys::meta_expiry_indexed));
    EXPECT_FALSE(has_meta(h.store(), tb::keys::meta_upgrade_from)) << "the mark goes once done";
    tp::request by_tag;
    by_tag.tag = "old";
    auto rep = h.call(tp::cmd::tasks, by_tag);
    ASSERT_EQ(rep.tasks.size(), 1u);
    EXPECT_EQ(rep.tasks[0].id, failed);
}

TEST(StoreUpgrade, AnUpgradeCutShortResumesAtItsMark) {
    temp_dir dir;
    engine_harness h(sim_config(), lmdb_in(dir), sim_epoch_ms);
    auto ids = h.submit(std::vector<tp::task_spec>(3, task("z.none")));
    ASSERT_EQ(ids.size(), 3u);
    make_it_older(h.store());
    {
        // As a broker killed after committing the first slice left it.
        auto txn = h.store().begin(true);
        auto second = tb::parse_task_id(ids[1]);
        ASSERT_TRUE(second);
        ASSERT_TRUE(txn->put(tb::table::meta, tb::keys::meta_upgrade_from, std::string(tb::id_bytes(*second))));
        ASSERT_TRUE(txn->commit());
    }
    h.restart();
    tp::request rq;
    rq.handler = "z.none";  // through the index by handler
    auto rep = h.call(tp::cmd::tasks, rq);
    std::vector<std::string> listed;
    for (const auto& t : rep.tasks) listed.push_back(t.id);
    std::sort(listed.begin(), listed.end());
    EXPECT_EQ(listed, (std::vector{ids[1], ids[2]})) << "the first slice was done already, so not redone";
    EXPECT_FALSE(has_meta(h.store(), tb::keys::meta_upgrade_from));
    EXPECT_TRUE(has_meta(h.store(), tb::keys::meta_listing_indexed));
}
