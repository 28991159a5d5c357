// Bringing a store written by an older release up to the current layout
// before the recovery turn (engine::recover): the workflow and schedule
// records move out of meta, and every stored task gets its listing index
// entries and, once finished, its expiry entry.
//
// A store of millions of tasks is upgraded in slices of upgrade_slice_tasks
// tasks, each its own transaction that also records where the next slice
// starts (keys::meta_upgrade_from): no transaction grows with the store,
// and a broker killed mid-way resumes at the slice it was in.
#include "engine/engine.hpp"
#include "store/keys.hpp"

namespace taskmill::broker {
namespace {

// ~60k LMDB writes per transaction at most (five index entries, tags, an
// expiry entry and the record per task): a few MiB of dirty pages.
constexpr std::size_t upgrade_slice_tasks = 10000;

struct upgrade_slice {
    std::vector<task_record> records;
    std::optional<std::string> next;  // the key the next slice starts at
};

}  // namespace

void engine::upgrade_store() {
    txn_ = store_.begin(true);
    migrate_store();
    const bool index = !txn_->get(table::meta, keys::meta_listing_indexed);
    const bool expire = !txn_->get(table::meta, keys::meta_expiry_indexed);
    commit_upgrade();
    if (!index && !expire) {
        return;
    }
    log_.info("upgrading the store:{}{}", index ? " listing indexes" : "", expire ? " expiry entries" : "");
    std::size_t done = 0;
    for (bool more = true; more;) {
        txn_ = store_.begin(true);
        more = upgrade_next_slice(index, expire, done);
        commit_upgrade();
    }
    log_.info("store upgraded: {} task(s)", done);
}

// One slice: false once the last task is done (and the flags are set).
bool engine::upgrade_next_slice(bool index, bool expire, std::size_t& done) {
    std::string from;
    if (auto raw = txn_->get(table::meta, keys::meta_upgrade_from)) {
        from = std::move(*raw);
    }
    upgrade_slice slice;
    check(txn_->scan(table::tasks, from, false,
                     [&](std::string_view k, std::string_view v) {
                         if (slice.records.size() == upgrade_slice_tasks) {
                             slice.next = std::string(k);
                             return false;
                         }
                         if (auto r = decode_record(v)) {
                             slice.records.push_back(std::move(*r));
                         }
                         return true;
                     }),
          "scan tasks");
    for (auto& r : slice.records) {
        if (index) {
            index_task(r, std::nullopt, 0);  // as if just created in its state
        }
        if (expire) {
            expire_finished(r);
        }
    }
    done += slice.records.size();
    if (slice.next) {
        check(txn_->put(table::meta, keys::meta_upgrade_from, *slice.next), "put upgrade-from");
        return true;
    }
    check(txn_->erase(table::meta, keys::meta_upgrade_from), "erase upgrade-from");
    if (index) {
        check(txn_->put(table::meta, keys::meta_tags_indexed, "1"), "put tags-indexed");
        check(txn_->put(table::meta, keys::meta_listing_indexed, "1"), "put listing-indexed");
    }
    if (expire) {
        expire_ended_workflows();
        check(txn_->put(table::meta, keys::meta_expiry_indexed, "1"), "put expiry-indexed");
    }
    return false;
}

void engine::commit_upgrade() {
    auto rc = txn_->commit();
    txn_.reset();
    if (!rc) {
        throw store_failure(rc.error().code, "store upgrade failed: " + rc.error().message);
    }
}

}  // namespace taskmill::broker
