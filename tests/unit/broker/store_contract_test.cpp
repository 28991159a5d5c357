// The store contract (store.hpp), run against both implementations: the
// in-memory store stands in for LMDB in the engine's tests, so it must
// order, scan, isolate and refuse exactly as LMDB does.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include <taskmill/broker/store.hpp>

#include "broker_harness.hpp"
#include "store/keys.hpp"

using namespace taskmill::broker;
using tmtest::temp_dir;

namespace {

class StoreContract : public ::testing::TestWithParam<bool> {
protected:
    void SetUp() override {
        st_ = GetParam() ? open_lmdb_store(lmdb_options{dir_.path.string(), 64ull << 20, durability::none})
                         : make_memory_store();
    }

    void put_all(const std::vector<std::string>& keys) {
        auto txn = st_->begin(true);
        for (const auto& k : keys) {
            ASSERT_TRUE(txn->put(table::meta, k, "v:" + k)) << k;
        }
        ASSERT_TRUE(txn->commit());
    }

    // The keys a scan visits, in order.
    static std::vector<std::string> scan(transaction& txn, std::string_view from, bool reverse,
                                         std::size_t stop_after = 100) {
        std::vector<std::string> seen;
        auto rc = txn.scan(table::meta, from, reverse, [&](std::string_view k, std::string_view) {
            seen.emplace_back(k);
            return seen.size() < stop_after;
        });
        EXPECT_TRUE(rc.has_value()) << rc.error().message;
        return seen;
    }
    std::vector<std::string> scan(std::string_view from, bool reverse, std::size_t stop_after = 100) {
        return scan(*st_->begin(false), from, reverse, stop_after);
    }

    temp_dir dir_;
    std::unique_ptr<store> st_;
};

using key_list = std::vector<std::string>;

task_id make_id(uint8_t n) {
    task_id id{};
    id[15] = n;
    return id;
}

}  // namespace

TEST_P(StoreContract, ReadyTableOrdersByPriorityThenFifo) {
    auto txn = st_->begin(true);
    ASSERT_TRUE(txn->put(table::ready, keys::ready_key("q", 1, 1), keys::ready_value(make_id(1), 0, "a.b")));
    ASSERT_TRUE(txn->put(table::ready, keys::ready_key("q", 9, 3), keys::ready_value(make_id(3), 0, "a.b")));
    ASSERT_TRUE(txn->put(table::ready, keys::ready_key("q", 1, 2), keys::ready_value(make_id(2), 0, "a.b")));
    ASSERT_TRUE(txn->put(table::ready, keys::ready_key("q", 9, 300), keys::ready_value(make_id(4), 0, "a.b")));
    ASSERT_TRUE(txn->put(table::ready, keys::ready_key("q", 0, 4), keys::ready_value(make_id(5), 77, "a.b@2")));
    ASSERT_TRUE(txn->commit());
    std::vector<std::string> order;
    ASSERT_TRUE(st_->begin(false)->scan(table::ready, "", false, [&](std::string_view k, std::string_view v) {
        auto e = keys::parse_ready(k, v);
        EXPECT_TRUE(e.has_value());
        order.push_back(e->queue + ":" + std::to_string(e->priority) + ":" + std::to_string(e->seq));
        return true;
    }));
    EXPECT_EQ(order, (std::vector<std::string>{"q:9:3", "q:9:300", "q:1:1", "q:1:2", "q:0:4"}));
}

TEST_P(StoreContract, GetPutEraseAndReverseScan) {
    auto txn = st_->begin(true);
    for (std::string k : {"a", "c", "e"}) {
        ASSERT_TRUE(txn->put(table::meta, k, "v" + k));
    }
    ASSERT_TRUE(txn->erase(table::meta, "c"));
    ASSERT_TRUE(txn->erase(table::meta, "zzz"));  // absent: fine
    EXPECT_EQ(txn->get(table::meta, "a").value(), "va");
    EXPECT_EQ(txn->get(table::meta, "c").error().code, taskmill::errc::not_found);
    EXPECT_EQ(scan(*txn, "d", true), key_list{"a"});
    EXPECT_EQ(scan(*txn, "", true), (key_list{"e", "a"}));
}

// Keys are bytes compared unsigned, a prefix before its extensions: what
// the big-endian key layouts (keys.hpp) rely on.
TEST_P(StoreContract, KeysAreOrderedAsUnsignedBytesShorterFirst) {
    const std::string zero("a\0", 2);
    put_all({"b", "\x80", "\x7f", "a", "ab", zero, "\xff\x01", "\xff"});
    EXPECT_EQ(scan("", false), (key_list{"a", zero, "ab", "b", "\x7f", "\x80", "\xff", "\xff\x01"}));
    EXPECT_EQ(scan("", true), (key_list{"\xff\x01", "\xff", "\x80", "\x7f", "b", "ab", zero, "a"}));
}

TEST_P(StoreContract, ForwardScansStartAtTheFirstKeyNotBeforeFrom) {
    put_all({"b", "d", "f"});
    EXPECT_EQ(scan("d", false), (key_list{"d", "f"}));
    EXPECT_EQ(scan("c", false), (key_list{"d", "f"}));
    EXPECT_EQ(scan("a", false), (key_list{"b", "d", "f"}));
    EXPECT_TRUE(scan("g", false).empty());
    EXPECT_EQ(scan("", false, 2), (key_list{"b", "d"})) << "false from the callback stops the scan";
}

TEST_P(StoreContract, ReverseScansStartAtTheLastKeyNotAfterFrom) {
    put_all({"b", "d", "f"});
    EXPECT_EQ(scan("d", true), (key_list{"d", "b"}));
    EXPECT_EQ(scan("e", true), (key_list{"d", "b"}));
    EXPECT_EQ(scan("z", true), (key_list{"f", "d", "b"}));
    EXPECT_EQ(scan("dd", true), (key_list{"d", "b"}));
    EXPECT_TRUE(scan("a", true).empty());
    EXPECT_EQ(scan("", true, 1), key_list{"f"});
}

TEST_P(StoreContract, AnEmptyTableScansToNothing) {
    EXPECT_TRUE(scan("", false).empty());
    EXPECT_TRUE(scan("", true).empty());
    EXPECT_TRUE(scan("k", true).empty());
}

TEST_P(StoreContract, TablesAreSeparate) {
    auto txn = st_->begin(true);
    ASSERT_TRUE(txn->put(table::tasks, "k", "task"));
    ASSERT_TRUE(txn->put(table::tags, "k", "tag"));
    EXPECT_EQ(txn->get(table::tasks, "k").value(), "task");
    EXPECT_EQ(txn->get(table::tags, "k").value(), "tag");
    EXPECT_EQ(txn->get(table::meta, "k").error().code, taskmill::errc::not_found);
}

TEST_P(StoreContract, PutReplacesAndEmptyValuesAreValues) {
    auto txn = st_->begin(true);
    ASSERT_TRUE(txn->put(table::meta, "k", "one"));
    ASSERT_TRUE(txn->put(table::meta, "k", "two"));
    ASSERT_TRUE(txn->put(table::meta, "e", ""));
    EXPECT_EQ(txn->get(table::meta, "k").value(), "two");
    EXPECT_EQ(txn->get(table::meta, "e").value(), "");
    EXPECT_EQ(scan(*txn, "", false), (key_list{"e", "k"})) << "a write transaction sees its own writes";
}

TEST_P(StoreContract, ClearEmptiesOneTableAndTheTableStaysUsable) {
    put_all({"a", "b"});
    auto txn = st_->begin(true);
    ASSERT_TRUE(txn->put(table::tags, "t", "1"));
    ASSERT_TRUE(txn->erase(table::meta, "a"));  // leaves a kept cursor on the table
    ASSERT_TRUE(txn->clear(table::meta));
    EXPECT_TRUE(scan(*txn, "", false).empty());
    ASSERT_TRUE(txn->put(table::meta, "c", "3"));
    ASSERT_TRUE(txn->erase(table::meta, "c"));
    ASSERT_TRUE(txn->put(table::meta, "d", "4"));
    ASSERT_TRUE(txn->commit());
    EXPECT_EQ(scan("", false), key_list{"d"});
    EXPECT_EQ(st_->begin(false)->get(table::tags, "t").value(), "1") << "other tables keep their entries";
}

TEST_P(StoreContract, AnUncommittedTransactionChangesNothing) {
    put_all({"kept"});
    {
        auto txn = st_->begin(true);
        ASSERT_TRUE(txn->put(table::meta, "lost", "x"));
        ASSERT_TRUE(txn->erase(table::meta, "kept"));
    }
    EXPECT_EQ(scan("", false), key_list{"kept"});
}

TEST_P(StoreContract, AReadTransactionSeesTheStateItBeganIn) {
    put_all({"a"});
    auto reader = st_->begin(false);
    put_all({"b"});
    EXPECT_EQ(scan(*reader, "", false), key_list{"a"});
    EXPECT_EQ(reader->get(table::meta, "b").error().code, taskmill::errc::not_found);
    EXPECT_EQ(scan("", false), (key_list{"a", "b"}));
}

// LMDB refuses empty keys, and keys over 511 bytes (MDB_BAD_VALSIZE) as
// values to store: an idempotency key or a tag that long fails the same
// way in the engine's tests as in a broker.
TEST_P(StoreContract, EmptyAndOverlongKeysAreRefusedAsTooLarge) {
    auto txn = st_->begin(true);
    EXPECT_EQ(txn->put(table::keys, "", "x").error().code, taskmill::errc::too_large);
    EXPECT_EQ(txn->put(table::keys, std::string(512, 'k'), "x").error().code, taskmill::errc::too_large);
    EXPECT_TRUE(txn->put(table::keys, std::string(511, 'k'), "x"));
    EXPECT_EQ(txn->get(table::keys, "").error().code, taskmill::errc::too_large);
    EXPECT_EQ(txn->erase(table::keys, "").error().code, taskmill::errc::too_large);
    // Looking up a key that could not have been stored finds nothing.
    EXPECT_EQ(txn->get(table::keys, std::string(512, 'k')).error().code, taskmill::errc::not_found);
    EXPECT_TRUE(txn->erase(table::keys, std::string(512, 'k')));
}

TEST_P(StoreContract, AReadTransactionRefusesWrites) {
    put_all({"a"});
    auto txn = st_->begin(false);
    EXPECT_EQ(txn->put(table::meta, "b", "x").error().code, taskmill::errc::internal);
    EXPECT_EQ(txn->erase(table::meta, "a").error().code, taskmill::errc::internal);
    EXPECT_EQ(scan("", false), key_list{"a"});
}

// A scan may change the table it walks (as recovery does): it goes on
// from where it was, over the table as it now is.
TEST_P(StoreContract, AScanMayEraseWhatItVisits) {
    put_all({"a", "b", "c", "d"});
    auto txn = st_->begin(true);
    std::vector<std::string> seen;
    ASSERT_TRUE(txn->scan(table::meta, "", false, [&](std::string_view k, std::string_view) {
        seen.emplace_back(k);
        EXPECT_TRUE(txn->erase(table::meta, std::string(k)));
        return true;
    }));
    EXPECT_EQ(seen, (key_list{"a", "b", "c", "d"}));
    EXPECT_TRUE(scan(*txn, "", false).empty());
}

// Many erases in one transaction, in every order and mixed with puts and
// reads (LMDB's erase keeps a cursor for the transaction): exactly the
// keys erased are gone, and the next transaction erases as well.
TEST_P(StoreContract, ErasesInAnyOrderAmongPutsLeaveExactlyTheRest) {
    std::vector<std::string> keys;
    for (int i = 0; i < 3000; ++i) {
        keys.push_back("k" + std::to_string(100000 + i));
    }
    put_all(keys);
    std::set<std::string> left(keys.begin(), keys.end());
    {
        auto txn = st_->begin(true);
        for (int i = 2999; i >= 0; i -= 2) {  // descending, every other key
            ASSERT_TRUE(txn->erase(table::meta, keys[i]));
            left.erase(keys[i]);
            if (i % 7 == 0) {
                ASSERT_TRUE(txn->put(table::meta, keys[i] + "x", "new"));
                left.insert(keys[i] + "x");
            }
        }
        for (int i = 0; i < 3000; i += 6) {  // ascending, among the gaps
            ASSERT_TRUE(txn->erase(table::meta, keys[i]));
            left.erase(keys[i]);
            EXPECT_FALSE(txn->get(table::meta, keys[i]));
        }
        EXPECT_TRUE(txn->erase(table::meta, "absent"));
        ASSERT_TRUE(txn->commit());
    }
    {
        auto txn = st_->begin(true);
        ASSERT_TRUE(txn->erase(table::meta, keys[2]));
        left.erase(keys[2]);
        ASSERT_TRUE(txn->commit());
    }
    auto seen = scan("", false, 10000);
    EXPECT_EQ(seen, key_list(left.begin(), left.end()));
}

INSTANTIATE_TEST_SUITE_P(Both, StoreContract, ::testing::Values(false, true),
                         [](const auto& p) { return p.param ? "lmdb" : "memory"; });

// Only one write transaction at a time (store.hpp). LMDB makes a second one
// wait, for ever in the thread that holds the first; the in-memory store
// says so at once.
TEST(MemoryStore, ASecondWriteTransactionThrowsUntilTheFirstEnds) {
    auto st = make_memory_store();
    {
        auto first = st->begin(true);
        EXPECT_THROW(st->begin(true), std::runtime_error);
        auto reader = st->begin(false);  // readers do not wait
        ASSERT_TRUE(first->commit());
        auto second = st->begin(true);  // committed: free again
    }
    auto aborted = st->begin(true);
    aborted.reset();
    EXPECT_NO_THROW(st->begin(true));
}
