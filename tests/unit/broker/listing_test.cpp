// TASKS over the listing indexes: the engine on the simulated clock, with
// its filters (state, queue, handler, tag, since/until), its cursor, RUNNING
// from memory, the index following every state change, and the indexing of
// a store written before the indexes existed.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "store/keys.hpp"

using namespace tmtest;

namespace {

std::vector<std::string> ids_of(const tp::reply& rep) {
    std::vector<std::string> out;
    for (const auto& t : rep.tasks) out.push_back(t.id);
    return out;
}

tp::request filter(std::string state = "", std::string handler = "") {
    tp::request rq;
    rq.state = std::move(state);
    rq.handler = std::move(handler);
    return rq;
}

// Every page of a listing, following `next`.
std::vector<std::string> pages(engine_harness& h, tp::request rq, std::size_t* count = nullptr) {
    std::vector<std::string> out;
    std::size_t n = 0;
    do {
        auto rep = h.call(tp::cmd::tasks, rq);
        EXPECT_TRUE(rep.ok) << rep.error;
        auto ids = ids_of(rep);
        out.insert(out.end(), ids.begin(), ids.end());
        rq.before = rep.next;
        ++n;
    } while (!rq.before.empty() && n < 100);
    if (count) *count = n;
    return out;
}

}  // namespace

TEST(Listing, FiltersByStateHandlerAndTime) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.send"), handler("b.resize")});
    std::vector<std::string> failed;
    std::vector<std::string> all;
    for (int i = 0; i < 6; ++i) {
        auto t = task(i % 2 == 0 ? "a.send" : "b.resize@1");
        t.retries = 0;
        all.insert(all.begin(), h.submit(t));
        auto d = w.dispatched();
        ASSERT_EQ(d.size(), 1u);
        h.advance(1000);
        w.result(d[0], i < 3 ? "fail" : "ok", "", "boom");
        if (i < 3) failed.insert(failed.begin(), all.front());
    }
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("FAILED"))), failed);
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("", "b.resize"))), (std::vector{all[0], all[2], all[4]}));
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("FAILED", "a.send"))), (std::vector{all[3], all[5]}));
    // A final state compares the finish time: task i finished at epoch + (i+1) s.
    auto rq = filter("FAILED");
    rq.since_ms = sim_epoch_ms + 2000;
    rq.until_ms = sim_epoch_ms + 3000;
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, rq)), (std::vector{all[4]}));
    // Without a state, the creation time: task i was created at epoch + i s.
    rq = filter();
    rq.since_ms = sim_epoch_ms + 4000;
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, rq)), (std::vector{all[0], all[1]}));
}

TEST(Listing, ARetryLeavesTheFailedListingAndRunningIsListedFromMemory) {
    engine_harness h;
    auto& w = h.connect_worker(2, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 0;
    auto id = h.run_once(w, t, "fail", "boom");
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("FAILED"))), std::vector{id});
    tp::request rq;
    rq.id = id;
    ASSERT_TRUE(h.call(tp::cmd::retry, rq).ok);
    EXPECT_TRUE(h.call(tp::cmd::tasks, filter("FAILED")).tasks.empty());
    ASSERT_EQ(w.dispatched().size(), 1u);
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("RUNNING"))), std::vector{id});
    EXPECT_TRUE(h.call(tp::cmd::tasks, filter("QUEUED")).tasks.empty()) << "stored QUEUED, but running";
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("RUNNING", "a.b"))), std::vector{id});
    EXPECT_EQ(h.call(tp::cmd::tasks, filter()).tasks.at(0).state, "RUNNING");
}

TEST(Listing, PagesFollowTheCursorAndATaskIdWorksAsBefore) {
    auto cfg = sim_config();
    cfg.list_scan_budget = 4;
    engine_harness h(cfg);
    std::vector<std::string> ids;
    for (int i = 0; i < 9; ++i) {
        auto t = task(i % 3 == 0 ? "x.rare" : "x.common");
        ids.insert(ids.begin(), h.submit(t));
        h.advance(1);
    }
    auto rq = filter("", "x.common");
    rq.limit = 2;
    std::size_t n = 0;
    EXPECT_EQ(pages(h, rq, &n), (std::vector{ids[0], ids[1], ids[3], ids[4], ids[6], ids[7]}));
    EXPECT_GE(n, 3u);
    // An old client's `before`: a task id, of any listing.
    rq = filter("QUEUED");
    rq.before = ids[6];
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, rq)), (std::vector{ids[7], ids[8]}));
}

TEST(Listing, RefusesBadFiltersWithClearErrors) {
    engine_harness h;
    h.submit(task("a.b"));
    auto first = filter("", "a.b");  // through the index by handler
    first.limit = 1;
    h.submit(task("a.b"));
    auto cursor = h.call(tp::cmd::tasks, first).next;
    ASSERT_FALSE(cursor.empty());
    struct bad {
        tp::request rq;
        std::string says;
    };
    std::vector<bad> cases;
    cases.push_back({filter("DONE"), "unknown state"});
    cases.push_back({filter("", "a.b@1"), "without @version"});
    auto r = filter();
    r.since_ms = 5;
    r.until_ms = 5;
    cases.push_back({r, "since_ms must be before until_ms"});
    r = filter();
    r.queue = "default";
    r.before = cursor;  // a cursor of another listing
    cases.push_back({r, "before must be"});
    r = filter("RUNNING");
    r.before = "nothex";
    cases.push_back({r, "before must be"});
    for (const auto& c : cases) {
        auto rep = h.call(tp::cmd::tasks, c.rq);
        EXPECT_FALSE(rep.ok) << c.says;
        EXPECT_EQ(rep.error_code, "invalid_argument") << c.says;
        EXPECT_NE(rep.error.find(c.says), std::string::npos) << rep.error;
    }
}

// A store written before the listing indexes (and before the tags table
// kept finished tasks) gets their entries at its first start, once.
TEST(Listing, AStoreWithoutIndexEntriesIsIndexedAtStart) {
    temp_dir dir;
    auto st = tb::open_lmdb_store(tb::lmdb_options{dir.path.string(), 64ull << 20, tb::durability::none});
    engine_harness h(sim_config(), std::move(st), sim_epoch_ms);
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.retries = 0;
    t.tags = {"old"};
    auto done = h.run_once(w, t, "fail", "boom");
    auto waiting = h.submit(task("z.none"));  // no worker serves it: it waits
    {
        // As an older release left it: no index entries, no finished tags.
        auto txn = h.store().begin(true);
        std::vector<std::string> keys;
        ASSERT_TRUE(txn->scan(tb::table::index, "", false, [&](std::string_view k, std::string_view) {
            keys.emplace_back(k);
            return true;
        }));
        ASSERT_FALSE(keys.empty());
        for (const auto& k : keys) ASSERT_TRUE(txn->erase(tb::table::index, k));
        ASSERT_TRUE(txn->erase(tb::table::tags, tb::keys::tag_key("old", *tb::parse_task_id(done))));
        ASSERT_TRUE(txn->erase(tb::table::meta, tb::keys::meta_listing_indexed));
        ASSERT_TRUE(txn->commit());
    }
    EXPECT_TRUE(h.call(tp::cmd::tasks, filter("FAILED")).tasks.empty()) << "no entries: nothing listed";
    h.restart();
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("FAILED"))), std::vector{done});
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("QUEUED", "z.none"))), std::vector{waiting});
    tp::request by_tag;
    by_tag.tag = "old";
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, by_tag)), std::vector{done});
    auto txn = h.store().begin(false);
    EXPECT_TRUE(txn->get(tb::table::meta, tb::keys::meta_listing_indexed));
}

// QUEUED and RUNNING tasks are listed from memory: the store holds no entry
// by state for them. A store written when it did loses those entries at its
// first start (nothing else would ever erase them), and lists as before.
TEST(Listing, QueuedTasksHaveNoStateEntriesAndOldOnesGoAtStart) {
    temp_dir dir;
    auto st = tb::open_lmdb_store(tb::lmdb_options{dir.path.string(), 64ull << 20, tb::durability::none});
    engine_harness h(sim_config(), std::move(st), sim_epoch_ms);
    auto t = task("z.none");
    t.queue = "parked";
    t.retries = 0;
    auto waiting = h.submit(t);  // no worker serves it: it waits
    auto by_state = [&] {
        std::vector<std::string> keys;
        auto txn = h.store().begin(false);
        EXPECT_TRUE(txn->scan(tb::table::index, "", false, [&](std::string_view k, std::string_view) {
            if (k[0] == 's' || k[0] == 'q' || k[0] == 'h') keys.emplace_back(k);
            return true;
        }));
        return keys;
    };
    EXPECT_TRUE(by_state().empty());
    {
        // As a release that indexed QUEUED tasks left it.
        const auto id = *tb::parse_task_id(waiting);
        const int64_t created = h.status(waiting).created_ms;
        auto old_key = [&](std::string prefix) {
            prefix.push_back(static_cast<char>(tb::task_state::queued));
            tb::keys::put_u64(prefix, static_cast<uint64_t>(created));
            return prefix + std::string(tb::id_bytes(id));
        };
        auto txn = h.store().begin(true);
        for (const auto& k :
             {old_key("s"), old_key(std::string("qparked\0", 8)), old_key(std::string("hz.none\0", 8))}) {
            ASSERT_TRUE(txn->put(tb::table::index, k, ""));
        }
        ASSERT_TRUE(txn->erase(tb::table::meta, tb::keys::meta_queued_unlisted));
        ASSERT_TRUE(txn->commit());
    }
    ASSERT_EQ(by_state().size(), 3u);
    h.restart();
    EXPECT_TRUE(by_state().empty());
    EXPECT_TRUE(h.store().begin(false)->get(tb::table::meta, tb::keys::meta_queued_unlisted));
    tp::request rq = filter("QUEUED", "z.none");
    rq.queue = "parked";
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, rq)), std::vector{waiting});
    // Running, then failed: the FAILED entries come, and QUEUED lists nothing.
    auto& w = h.connect_worker(1, {handler("z.none")});
    auto d = w.dispatched();
    ASSERT_EQ(d.size(), 1u);
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("RUNNING", "z.none"))), std::vector{waiting});
    EXPECT_TRUE(h.call(tp::cmd::tasks, rq).tasks.empty());
    w.result(d[0], "fail", "", "boom");
    EXPECT_EQ(by_state().size(), 3u);
    EXPECT_EQ(ids_of(h.call(tp::cmd::tasks, filter("FAILED", "z.none"))), std::vector{waiting});
    EXPECT_TRUE(h.call(tp::cmd::tasks, filter("QUEUED")).tasks.empty());
}
