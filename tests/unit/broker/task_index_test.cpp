// The listing indexes on a real LMDB store: what add writes, remove takes
// back exactly, moved follows a state change, and scan pages newest first
// through the most selective index, resuming from a cursor across commits,
// reading a bounded number of entries whatever else is stored.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "index/task_index.hpp"
#include "store/keys.hpp"

using namespace tmtest;
using tb::task_state;

namespace {

class TaskIndex : public ::testing::Test {
protected:
    void SetUp() override {
        st_ = tb::open_lmdb_store(tb::lmdb_options{dir_.path.string(), 256ull << 20, tb::durability::none});
        txn_ = st_->begin(true);
    }
    void commit() {
        ASSERT_TRUE(txn_->commit());
        txn_ = st_->begin(true);
    }
    // A record stored and indexed as the engine leaves it.
    tb::task_record put(int64_t created, task_state s, const std::string& handler, const std::string& queue = "q",
                        std::vector<std::string> tags = {}) {
        tb::task_record r;
        r.id = ids_.next(created);
        r.handler = handler;
        r.queue = queue;
        r.state = s;
        r.has_state = true;
        r.created_ms = created;
        r.finished_ms = tb::is_final(s) ? created + 1000 : 0;
        r.tags = std::move(tags);
        EXPECT_TRUE(txn_->put(tb::table::tasks, tb::id_bytes(r.id), tb::encode(r)));
        EXPECT_TRUE(tb::task_index::add(*txn_, r));
        for (const auto& t : r.tags) {
            EXPECT_TRUE(txn_->put(tb::table::tags, tb::keys::tag_key(t, r.id), ""));
        }
        return r;
    }
    // Every id a scan gives, page by page of `budget` entries.
    std::vector<std::string> all(const tb::task_filter& f, uint32_t budget = 1000) {
        std::vector<std::string> out;
        std::string cursor;
        for (int pages = 0; pages < 10000; ++pages) {
            auto next = tb::task_index::scan(*txn_, f, cursor, budget, [&](const tb::task_id& id) {
                out.push_back(tb::to_hex(id));
                return true;
            });
            EXPECT_TRUE(next) << next.error().message;
            if (!next || next->empty()) {
                break;
            }
            cursor = *next;
        }
        return out;
    }
    std::size_t index_entries() {
        std::size_t n = 0;
        EXPECT_TRUE(txn_->scan(tb::table::index, "", false, [&](std::string_view, std::string_view) {
            ++n;
            return true;
        }));
        return n;
    }

    temp_dir dir_;
    std::unique_ptr<tb::store> st_;
    std::unique_ptr<tb::transaction> txn_;
    tb::id_generator ids_;
};

// A filter from the fields a test names (task_filter's strings have no
// initializers, so designated initializers would leave them unnamed).
struct spec {
    std::optional<task_state> state{};
    std::string queue{};
    std::string handler{};
    std::string tag{};
    int64_t since_ms = 0;
    int64_t until_ms = 0;
};
tb::task_filter F(const spec& s) {
    tb::task_filter f;
    f.state = s.state;
    f.queue = s.queue;
    f.handler = s.handler;
    f.tag = s.tag;
    f.since_ms = s.since_ms;
    f.until_ms = s.until_ms;
    return f;
}

std::vector<std::string> hex(std::initializer_list<tb::task_record> rs) {
    std::vector<std::string> out;
    for (const auto& r : rs) out.push_back(tb::to_hex(r.id));
    return out;
}

}  // namespace

TEST_F(TaskIndex, RemoveTakesBackExactlyWhatAddWrote) {
    auto a = put(1000, task_state::queued, "m.send@2", "mail", {"x"});
    auto b = put(2000, task_state::failed, "m.send");
    const auto before = index_entries();
    ASSERT_GT(before, 0u);
    ASSERT_TRUE(tb::task_index::remove(*txn_, b));
    ASSERT_TRUE(tb::task_index::remove(*txn_, a));
    EXPECT_EQ(index_entries(), 0u);
}

TEST_F(TaskIndex, EachFilterListsItsTasksNewestFirst) {
    auto a = put(1000, task_state::failed, "m.send@1", "mail", {"t"});
    auto b = put(2000, task_state::succeeded, "m.send", "mail");
    auto c = put(3000, task_state::failed, "img.resize", "img", {"t"});
    auto d = put(4000, task_state::queued, "m.send", "img");
    const auto failed = F({.state = task_state::failed});
    EXPECT_EQ(all(failed), hex({c, a}));
    EXPECT_EQ(all(F({.handler = "m.send"})), hex({d, b, a}));
    EXPECT_EQ(all(F({.state = task_state::failed, .handler = "m.send"})), hex({a}));
    EXPECT_EQ(all(F({.queue = "img"})), hex({d, c}));
    EXPECT_TRUE(all(F({.state = task_state::queued, .queue = "img"})).empty()) << "QUEUED: listed from memory";
    EXPECT_EQ(all(F({.tag = "t"})), hex({c, a}));
    EXPECT_EQ(all(F({})), hex({d, c, b, a}));
    // A name that is another's prefix (or holds \0) lists nothing of the other.
    EXPECT_TRUE(all(F({.handler = "m"})).empty());
    EXPECT_TRUE(all(F({.queue = std::string("mail\0x", 6)})).empty());
}

TEST_F(TaskIndex, SinceAndUntilBoundTheScanByTheTimeCompared) {
    auto a = put(1000, task_state::failed, "h.a");  // finished 2000
    auto b = put(5000, task_state::failed, "h.a");  // finished 6000
    auto c = put(9000, task_state::queued, "h.a");
    // Final state: the finish time.
    EXPECT_EQ(all(F({.state = task_state::failed, .since_ms = 2000, .until_ms = 6000})), hex({a}));
    EXPECT_EQ(all(F({.state = task_state::failed, .since_ms = 2001})), hex({b}));
    // No state: the creation time, through the tasks table and the handler index.
    EXPECT_EQ(all(F({.since_ms = 1001, .until_ms = 9000})), hex({b}));
    EXPECT_EQ(all(F({.handler = "h.a", .since_ms = 5000})), hex({c, b}));
    EXPECT_EQ(all(F({.handler = "h.a", .until_ms = 5001})), hex({b, a}));
}

// QUEUED and RUNNING have no entries by state (live_index lists them); a
// final state has three, and a retry takes them back.
TEST_F(TaskIndex, MovedFollowsAStateChangeAndAFinish) {
    auto r = put(1000, task_state::queued, "h.a", "q");
    const auto entries = index_entries();
    EXPECT_EQ(entries, 2u) << "by queue and by handler only";
    EXPECT_EQ(all(F({.handler = "h.a"})), hex({r}));
    r.state = task_state::running;
    ASSERT_TRUE(tb::task_index::moved(*txn_, r, task_state::queued, 1000));
    EXPECT_EQ(index_entries(), entries);
    r.state = task_state::failed;
    r.finished_ms = 7000;
    ASSERT_TRUE(tb::task_index::moved(*txn_, r, task_state::running, 1000));
    EXPECT_EQ(all(F({.state = task_state::failed, .since_ms = 7000})), hex({r}));
    EXPECT_EQ(all(F({.state = task_state::failed, .queue = "q"})), hex({r}));
    EXPECT_EQ(all(F({.state = task_state::failed, .handler = "h.a"})), hex({r}));
    EXPECT_EQ(index_entries(), entries + 3);
    // A retry: back to QUEUED from the finish time the index had.
    r.finished_ms = 0;
    r.state = task_state::queued;
    ASSERT_TRUE(tb::task_index::moved(*txn_, r, task_state::failed, 7000));
    EXPECT_TRUE(all(F({.state = task_state::failed})).empty());
    EXPECT_EQ(index_entries(), entries);
    // A delayed retry (RETRYING) is listed from here.
    r.state = task_state::retrying;
    ASSERT_TRUE(tb::task_index::moved(*txn_, r, task_state::queued, 1000));
    EXPECT_EQ(all(F({.state = task_state::retrying, .handler = "h.a"})), hex({r}));
    EXPECT_EQ(index_entries(), entries + 3);
}

// A store written when QUEUED tasks had entries by state: the engine's
// start erases them with remove_queued_entries.
TEST_F(TaskIndex, RemoveQueuedEntriesTakesBackWhatOlderReleasesWrote) {
    auto r = put(1000, task_state::queued, "h.a@2", "q");
    const auto entries = index_entries();
    auto old_key = [&](std::string prefix) {
        prefix.push_back(static_cast<char>(task_state::queued));
        tb::keys::put_u64(prefix, 1000);
        return prefix + std::string(tb::id_bytes(r.id));
    };
    for (const auto& k : {old_key("s"), old_key(std::string("qq\0", 3)), old_key(std::string("hh.a\0", 5))}) {
        ASSERT_TRUE(txn_->put(tb::table::index, k, ""));
    }
    ASSERT_EQ(index_entries(), entries + 3);
    ASSERT_TRUE(tb::task_index::remove_queued_entries(*txn_, r));
    EXPECT_EQ(index_entries(), entries);
}

// Bulk jobs keep the cursor across turns and restarts while tasks come and
// go: every entry still there and older than the cursor is given, once.
TEST_F(TaskIndex, CursorResumesAcrossCommitsWhileEntriesComeAndGo) {
    std::vector<tb::task_record> rs;
    for (int i = 0; i < 10; ++i) rs.push_back(put(1000 + i, task_state::failed, "h.a"));
    std::vector<std::string> seen;
    auto take = [&](const tb::task_id& id) {
        seen.push_back(tb::to_hex(id));
        return true;
    };
    const auto f = F({.state = task_state::failed});
    auto cur = tb::task_index::scan(*txn_, f, "", 3, take);
    ASSERT_TRUE(cur);
    ASSERT_FALSE(cur->empty());
    commit();
    // The last one given is deleted, one older is deleted, a newer one comes.
    ASSERT_TRUE(tb::task_index::remove(*txn_, rs[7]));
    ASSERT_TRUE(tb::task_index::remove(*txn_, rs[2]));
    put(5000, task_state::failed, "h.a");
    commit();
    while (cur && !cur->empty()) {
        cur = tb::task_index::scan(*txn_, f, *cur, 3, take);
        ASSERT_TRUE(cur) << cur.error().message;
    }
    EXPECT_EQ(seen, hex({rs[9], rs[8], rs[7], rs[6], rs[5], rs[4], rs[3], rs[1], rs[0]}));
}

TEST_F(TaskIndex, ATaskIdIsACursorAndAForeignCursorIsRefused) {
    auto a = put(1000, task_state::failed, "h.a");
    auto b = put(2000, task_state::failed, "h.a");
    auto c = put(3000, task_state::failed, "h.a");
    std::vector<std::string> seen;
    auto take = [&](const tb::task_id& id) {
        seen.push_back(tb::to_hex(id));
        return true;
    };
    ASSERT_TRUE(tb::task_index::scan(*txn_, F({.state = task_state::failed}), tb::to_hex(c.id), 10, take));
    EXPECT_EQ(seen, hex({b, a}));
    seen.clear();
    ASSERT_TRUE(tb::task_index::scan(*txn_, F({.handler = "h.a"}), tb::to_hex(b.id), 10, take));
    EXPECT_EQ(seen, hex({a}));

    auto cur = tb::task_index::scan(*txn_, F({.state = task_state::failed}), "", 1, take);
    ASSERT_TRUE(cur);
    for (const std::string& bad : {std::string("zz"), *cur + "00", std::string("abc")}) {
        auto r = tb::task_index::scan(*txn_, F({.handler = "h.a"}), bad, 10, take);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, taskmill::errc::invalid_argument);
    }
    EXPECT_FALSE(tb::task_index::scan(*txn_, F({.handler = "h.a"}), *cur, 10, take));
}

// The cost of a page does not grow with what else is stored: 100k tasks
// that match none of the filters, and a page reads about `limit` entries.
TEST_F(TaskIndex, APageReadsBoundedEntriesWhateverElseIsStored) {
    std::vector<tb::task_record> wanted;
    for (int i = 0; i < 100000; ++i) {
        put(1000 + i / 10, task_state::succeeded, "bulk.job", "bulk", {"noise"});
        if (i % 20000 == 0) {
            wanted.push_back(put(1000 + i / 10, task_state::failed, "rare.job", "rare", {"rare"}));
        }
    }
    commit();
    const std::vector<tb::task_filter> filters = {F({.state = task_state::failed}), F({.handler = "rare.job"}),
                                                  F({.tag = "rare"}), F({.state = task_state::failed, .queue = "rare"}),
                                                  F({.state = task_state::failed, .handler = "rare.job"})};
    for (const auto& f : filters) {
        uint32_t given = 0;
        tb::task_index::scan_stats stats;
        auto next = tb::task_index::walk(
            *txn_, f, "", 100000,
            [&](const tb::task_id&) {
                return ++given >= 3 ? tb::task_index::step::stop_after : tb::task_index::step::next;
            },
            &stats);
        ASSERT_TRUE(next) << f.text();
        EXPECT_EQ(given, 3u) << f.text();
        EXPECT_LE(stats.entries_read, 3u) << f.text();
        EXPECT_FALSE(next->empty()) << f.text();
        // The whole listing holds exactly the matching ones.
        EXPECT_EQ(all(f).size(), wanted.size()) << f.text();
    }
}
