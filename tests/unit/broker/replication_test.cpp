// Replication of the store: the write set of each write transaction a
// leader's engine commits, recorded (replication/recording_store.hpp) and
// applied to another store (replication/apply.hpp), leaves that store equal
// to the leader's, byte for byte; replays change nothing; damaged entries
// change nothing. Real LMDB in temporary folders, the engine on the
// simulated clock.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <vector>

#include "broker_harness.hpp"
#include "engine_harness.hpp"
#include "replication/apply.hpp"
#include "replication/image.hpp"
#include "replication/recording_store.hpp"
#include "replication/write_set.hpp"
#include "store/keys.hpp"

using namespace tmtest;
namespace tr = taskmill::broker::replication;

namespace {

constexpr int64_t second = 1000;

std::unique_ptr<tb::store> lmdb(const temp_dir& dir) {
    return tb::open_lmdb_store(tb::lmdb_options{dir.path.string(), 64ull << 20, tb::durability::none});
}

// Every entry of every table, as (table, key) -> value.
using dump = std::map<std::pair<int, std::string>, std::string>;

dump everything(tb::store& st) {
    dump out;
    auto txn = st.begin(false);
    for (int t = 0; t < tb::table_count; ++t) {
        EXPECT_TRUE(txn->scan(static_cast<tb::table>(t), "", false, [&](std::string_view k, std::string_view v) {
            out[{t, std::string(k)}] = std::string(v);
            return true;
        }));
    }
    return out;
}

// A replica's entries without the index it records.
dump replicated(tb::store& st) {
    auto out = everything(st);
    out.erase({static_cast<int>(tb::table::meta), std::string(tb::keys::meta_applied_index)});
    return out;
}

uint64_t applied(tb::store& st) { return tr::applied_index(*st.begin(false)).value(); }

// Applies log[from..] as indexes from+1...; returns how many were new.
int apply_all(tb::store& st, const std::vector<std::string>& log, std::size_t from = 0) {
    int fresh = 0;
    for (std::size_t i = from; i < log.size(); ++i) {
        auto rc = tr::apply_entry(st, i + 1, log[i]);
        EXPECT_TRUE(rc.has_value()) << rc.error().message;
        fresh += rc.has_value() && *rc ? 1 : 0;
    }
    return fresh;
}

// A leader's engine over a recording LMDB store doing a bit of everything
// that writes: submits with keys and tags, delays, results of each kind,
// a retry, a cancel, the retention sweep and a restart's recovery.
void run_a_workload(const temp_dir& dir, std::vector<std::string>& log) {
    auto cfg = sim_config();
    cfg.retention = {2 * second, 60 * second, 60 * second, 60 * second};  // keeps some
    auto st = tr::make_recording_store(lmdb(dir), [&log](std::string e) { log.push_back(std::move(e)); });
    engine_harness h(cfg, std::move(st), sim_epoch_ms);
    auto& w = h.connect_worker(4, {handler("a.b")});
    for (int i = 0; i < 12; ++i) {
        auto t = task("a.b");
        t.key = "k" + std::to_string(i);
        t.tags = {"even" + std::to_string(i % 2)};
        t.retries = 0;
        h.run_once(w, t, i % 4 == 0 ? "fail" : "ok");
    }
    auto later = task("a.b");
    later.delay_ms = 3 * second;
    h.submit(later);
    auto doomed = task("a.b");
    doomed.delay_ms = 3600 * second;
    tp::request rq;
    rq.id = h.submit(doomed);
    EXPECT_TRUE(h.call(tp::cmd::cancel, rq).ok);
    h.advance(3 * second);
    for (const auto& item : w.dispatched()) {
        w.result(item, "ok");
    }
    h.restart(100);
    h.advance(5 * second);
}

}  // namespace

TEST(WriteSet, DecodesToTheChangesInTheirOrder) {
    tr::write_set ws;
    const std::string binary("\0\xff\x01", 3);
    ws.put(tb::table::tasks, binary, "record");
    ws.erase(tb::table::keys, "gone");
    ws.put(tb::table::jobs, "", "");
    ws.clear(tb::table::tags);
    EXPECT_EQ(ws.changes(), 4u);
    auto entry = ws.take();
    EXPECT_TRUE(ws.empty()) << "take() starts an empty set";

    std::vector<std::string> seen;
    ASSERT_TRUE(tr::for_each_change(entry, [&](const tr::change& c) -> taskmill::result<void> {
        const char* what = c.what == tr::change::put ? "put " : c.what == tr::change::erase ? "erase " : "clear ";
        seen.push_back(what + std::to_string(static_cast<int>(c.t)) + " " + std::string(c.key) + "=" +
                       std::string(c.value));
        return {};
    }));
    EXPECT_EQ(seen,
              (std::vector<std::string>{"put 0 " + binary + "=record", "erase 4 gone=", "put 12 =", "clear 6 ="}));
}

TEST(WriteSet, EveryTruncationAndBadByteIsRefusedBeforeAnyChange) {
    tr::write_set ws;
    ws.put(tb::table::tasks, "key", "value");
    ws.erase(tb::table::ready, "other");
    const auto entry = ws.take();
    auto calls = 0;
    auto count = [&](const tr::change&) -> taskmill::result<void> {
        ++calls;
        return {};
    };
    for (std::size_t n = 0; n < entry.size(); ++n) {
        auto rc = tr::for_each_change(entry.substr(0, n), count);
        ASSERT_FALSE(rc.has_value()) << "cut at " << n;
        EXPECT_EQ(rc.error().code, taskmill::errc::corrupt);
    }
    auto bad_kind = entry;
    bad_kind[8] = 4;
    auto bad_table = entry;
    bad_table[9] = static_cast<char>(tb::table_count);
    auto long_key = entry;
    long_key[10] = 1;  // a key length past the end
    auto miscounted = entry;
    miscounted[7] = 1;  // the header counts one change of two
    for (const auto& bad : {bad_kind, bad_table, long_key, miscounted, entry + "x", "TMW2" + entry.substr(4)}) {
        auto rc = tr::for_each_change(bad, count);
        ASSERT_FALSE(rc.has_value());
        EXPECT_EQ(rc.error().code, taskmill::errc::corrupt);
        EXPECT_NE(rc.error().message.find("damaged at byte"), std::string::npos) << rc.error().message;
    }
    EXPECT_EQ(calls, 0) << "nothing of a damaged entry is visited";
}

TEST(Replication, AnEnginesTurnsAppliedToAnotherStoreLeaveItEqual) {
    temp_dir leader_dir, replica_dir;
    std::vector<std::string> log;
    run_a_workload(leader_dir, log);
    ASSERT_GT(log.size(), 20u);

    auto leader = lmdb(leader_dir);
    auto replica = lmdb(replica_dir);
    EXPECT_EQ(apply_all(*replica, log), static_cast<int>(log.size()));
    EXPECT_EQ(applied(*replica), log.size());
    const auto want = everything(*leader);
    EXPECT_GT(want.size(), 30u);
    EXPECT_EQ(replicated(*replica), want);
}

TEST(Replication, AReplayAfterARestartChangesNothing) {
    temp_dir leader_dir, replica_dir;
    std::vector<std::string> log;
    run_a_workload(leader_dir, log);
    const std::size_t half = log.size() / 2;
    {
        auto replica = lmdb(replica_dir);
        std::vector<std::string> first(log.begin(), log.begin() + static_cast<std::ptrdiff_t>(half));
        EXPECT_EQ(apply_all(*replica, first), static_cast<int>(half));
    }
    auto replica = lmdb(replica_dir);  // reopened: the index was kept with the data
    EXPECT_EQ(applied(*replica), half);
    EXPECT_EQ(apply_all(*replica, log), static_cast<int>(log.size() - half)) << "the first half was skipped";
    EXPECT_EQ(apply_all(*replica, log), 0) << "a second replay changes nothing";
    EXPECT_EQ(replicated(*replica), everything(*lmdb(leader_dir)));
}

TEST(Replication, ADamagedEntryChangesNothing) {
    temp_dir dir;
    auto st = lmdb(dir);
    tr::write_set ws;
    ws.put(tb::table::meta, "first", "1");
    ASSERT_TRUE(tr::apply_entry(*st, 1, ws.take()).value());
    ws.put(tb::table::meta, "second", "2");
    ws.erase(tb::table::meta, "first");
    auto entry = ws.take();
    auto rc = tr::apply_entry(*st, 2, entry.substr(0, entry.size() - 1));
    ASSERT_FALSE(rc.has_value());
    EXPECT_EQ(rc.error().code, taskmill::errc::corrupt);
    EXPECT_EQ(applied(*st), 1u);
    auto txn = st->begin(false);
    EXPECT_EQ(txn->get(tb::table::meta, "first").value(), "1");
    EXPECT_FALSE(txn->get(tb::table::meta, "second").has_value());
}

TEST(Replication, ATransactionThatIsNotCommittedHandsOverNothing) {
    temp_dir dir;
    std::vector<std::string> log;
    auto st = tr::make_recording_store(lmdb(dir), [&log](std::string e) { log.push_back(std::move(e)); });
    {
        auto dropped = st->begin(true);
        ASSERT_TRUE(dropped->put(tb::table::meta, "a", "1"));
    }
    auto reads = st->begin(true);
    ASSERT_FALSE(reads->get(tb::table::meta, "a").has_value()) << "the dropped transaction was aborted";
    ASSERT_TRUE(reads->commit());
    EXPECT_TRUE(log.empty()) << "neither a dropped nor an unchanged transaction is an entry";
    auto txn = st->begin(true);
    ASSERT_TRUE(txn->put(tb::table::meta, "b", "2"));
    ASSERT_TRUE(txn->commit());
    EXPECT_EQ(log.size(), 1u);
}

TEST(Replication, AnImageInstalledOverOtherDataLeavesAnEqualStore) {
    temp_dir leader_dir, replica_dir, fresh_dir;
    std::vector<std::string> log;
    run_a_workload(leader_dir, log);
    auto replica = lmdb(replica_dir);
    apply_all(*replica, log);
    auto image = tr::read_image(*replica->begin(false));
    ASSERT_TRUE(image.has_value()) << image.error().message;
    EXPECT_EQ(tr::image_index(*image).value(), log.size());

    auto fresh = lmdb(fresh_dir);
    tr::write_set stale;  // a member's own older entries, which the image replaces
    stale.put(tb::table::tasks, "stale-task", "x");
    stale.put(tb::table::meta, "stale-meta", "y");
    ASSERT_TRUE(tr::apply_entry(*fresh, 3, stale.take()).value());
    const auto stale_entries = everything(*fresh);
    auto damaged = tr::install_image(*fresh, image->substr(0, image->size() - 3));
    ASSERT_FALSE(damaged.has_value());
    EXPECT_EQ(damaged.error().code, taskmill::errc::corrupt);
    EXPECT_EQ(tr::install_image(*fresh, "short").error().code, taskmill::errc::corrupt);
    EXPECT_EQ(everything(*fresh), stale_entries) << "a damaged image changes nothing";

    EXPECT_TRUE(tr::install_image(*fresh, *image).value());
    EXPECT_EQ(everything(*fresh), everything(*replica));
    EXPECT_FALSE(tr::install_image(*fresh, *image).value()) << "an image no newer than the store is skipped";
}

TEST(Replication, AnOlderImageLeavesANewerStoreAlone) {
    temp_dir leader_dir, replica_dir;
    std::vector<std::string> log;
    run_a_workload(leader_dir, log);
    auto replica = lmdb(replica_dir);
    apply_all(*replica, std::vector<std::string>(log.begin(), log.begin() + 5));
    auto old_image = tr::read_image(*replica->begin(false)).value();
    apply_all(*replica, log, 5);
    const auto before = everything(*replica);
    EXPECT_FALSE(tr::install_image(*replica, old_image).value());
    EXPECT_EQ(everything(*replica), before);
}
