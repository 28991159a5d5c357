// Retention: when each finished task or workflow is to be deleted, and the
// sweep that deletes them when that falls due, in bounded slices inside the
// loop's turns (each slice in the turn's transaction, so a crash in the
// middle loses nothing: what is not yet committed as deleted is swept again
// after the restart).
//
// Most tasks keep the broker's retention for their final state, so their
// deletion times run in the order of their finish times: the sweep walks
// the state's by-state index (src/index/task_index.hpp), oldest first, and
// needs no entry of its own for them. A task with a retention of its own
// (--keep) or of its queue's, and a workflow, gets an entry in the expiry
// table, which is ordered by deletion time.
#include <algorithm>
#include <chrono>
#include <limits>
#include <utility>

#include "engine/engine.hpp"
#include "store/keys.hpp"
#include "workflow/workflow_model.hpp"

namespace taskmill::broker {
namespace {

// Entries read from the expiry table, or from a state's index, at a time.
constexpr std::size_t sweep_batch = 128;

bool has_tag(const task_record& r, const std::string& tag) {
    return std::find(r.tags.begin(), r.tags.end(), tag) != r.tags.end();
}

}  // namespace

bool sweep_slice::spent() const {
    if (deleted < pace) {
        return false;
    }
    return deleted >= max_sweep_deletes ||
           std::chrono::steady_clock::now() - started >= std::chrono::microseconds(max_sweep_us);
}

uint32_t sweep_slice::room() const {
    const uint32_t cap = std::max(pace, max_sweep_deletes);
    return deleted >= cap ? 0 : cap - deleted;
}

void engine::track_expiry(task_record& r, std::optional<task_state> from, task_state to) {
    if (from && is_final(*from) && r.delete_at_ms != 0 && !r.expiry_implied) {
        // Leaving a final state (RETRY): the deletion is off.
        check(txn_->erase(table::expiry, task_expiry_key(r.delete_at_ms, r.id)), "erase expiry");
    }
    r.delete_at_ms = 0;
    r.expiry_implied = false;
    if (!is_final(to) || workflow_step(r)) {
        return;  // a step is deleted with its workflow
    }
    r.delete_at_ms = retention_.delete_at(r, to, now_);
    if (r.delete_at_ms == 0) {
        return;
    }
    r.expiry_implied = retention_.follows_broker(r, to);
    if (r.expiry_implied) {
        // A clock set back could finish a task before the walk's position.
        auto key = task_index::state_key(r, to);
        if (auto& from_key = finished_from(to); key < from_key) {
            from_key = std::move(key);
        }
    } else {
        check(txn_->put(table::expiry, task_expiry_key(r.delete_at_ms, r.id), ""), "put expiry");
    }
    expiry_due(r.delete_at_ms);
    ++expiries_this_turn_;
}

// A step carries its workflow's id as parent and a "workflow:ID" tag; a
// spawned task's parent is a task, never in the workflows table.
bool engine::workflow_step(const task_record& r) {
    if (r.parent.empty() || !has_tag(r, "workflow:" + r.parent)) {
        return false;
    }
    auto raw = txn_->get(table::workflows, r.parent);
    if (!raw && raw.error().code != errc::not_found) {
        throw store_failure(raw.error().code, "store read failed: " + raw.error().message);
    }
    return raw.has_value();
}

void engine::retain_workflow(const std::string& id, workflow_state s, int64_t finished_ms) {
    const int64_t keep = retention_.keep_ms(s);
    if (keep <= 0) {
        return;
    }
    const int64_t at = finished_ms + keep;  // both are bounded far from overflow (duration.hpp)
    check(txn_->put(table::expiry, expiry_key(at, expiry_kind::workflow, id), ""), "put expiry");
    expiry_due(at);
    ++expiries_this_turn_;
}

void engine::expiry_due(int64_t at_ms) {
    if (!next_expiry_ms_ || at_ms < *next_expiry_ms_) {
        next_expiry_ms_ = at_ms;
    }
}

void engine::sweep_expired() {
    const uint32_t pace = std::exchange(expiries_this_turn_, 0);
    if (!next_expiry_ms_ || *next_expiry_ms_ > now_) {
        return;
    }
    sweep_slice slice;
    slice.pace = pace;
    next_expiry_ms_ = sweep_entries(slice);
    for (auto s : {task_state::succeeded, task_state::failed, task_state::cancelled, task_state::expired}) {
        if (auto next = sweep_finished(s, slice)) {
            expiry_due(*next);
        }
    }
}

std::optional<int64_t> engine::sweep_entries(sweep_slice& slice) {
    while (!slice.spent()) {
        auto due = due_expiries();
        if (due.empty()) {
            return next_expiry_ms_;  // due_expiries set the next time (or none)
        }
        for (const auto& e : due) {
            if (slice.spent() || !sweep_one(e, slice)) {
                return now_;  // more is due: the next turn goes on at once
            }
        }
    }
    return now_;
}

std::string& engine::finished_from(task_state s) {
    return finished_from_.at(static_cast<std::size_t>(s) - static_cast<std::size_t>(task_state::succeeded));
}

// The tasks of final state `s` whose finish time plus the broker's
// retention for `s` has passed, oldest first; of those, the ones whose
// retention is the broker's are deleted (a later change of the setting
// applies to them too), the others have an expiry of their own or none and
// are passed over. The walk stops at the first task not due.
std::optional<int64_t> engine::sweep_finished(task_state s, sweep_slice& slice) {
    const int64_t keep = retention_.broker_keep_ms(s);
    if (keep <= 0) {
        return std::nullopt;  // kept for ever: nothing of this state is walked
    }
    auto& from = finished_from(s);
    const std::string before = from;
    std::optional<int64_t> next;
    while (!next) {
        const std::size_t size = std::clamp<std::size_t>(slice.room(), 1, sweep_batch);
        auto batch = task_index::oldest_finished(*txn_, s, from, size);
        if (!batch) {
            check(fail(batch.error().code, batch.error().message), "scan finished");
        }
        const std::size_t due = due_prefix(*batch, keep, next);
        if (due == 0) {
            break;
        }
        if (slice.spent()) {
            next = now_;
            break;
        }
        slice.deleted += delete_implied(*batch, due);
        from = (*batch)[due - 1].key;
        from.push_back('\0');  // the key right after it
    }
    if (from != before) {
        check(txn_->put(table::meta, std::string(keys::meta_sweep_from) + std::string(to_string(s)), from),
              "put sweep-from");
    }
    return next;
}

// Deletes, of the first `due` of `batch`, the tasks whose retention is the
// broker's (the others are passed over); returns how many.
uint32_t engine::delete_implied(const std::vector<task_index::finished_entry>& batch, std::size_t due) {
    std::vector<task_record> gone;
    gone.reserve(due);
    for (std::size_t i = 0; i < due; ++i) {
        auto r = lookup(batch[i].id);
        if (r && is_final(r->state) && r->expiry_implied && r->delete_at_ms != 0) {
            gone.push_back(std::move(*r));
        }
    }
    erase_tasks(gone);
    return static_cast<uint32_t>(gone.size());
}

// How many of `batch` (oldest first) are due; sets `next` when one is not,
// to when it will be (or never, past the end of time).
std::size_t engine::due_prefix(const std::vector<task_index::finished_entry>& batch, int64_t keep,
                               std::optional<int64_t>& next) const {
    for (std::size_t i = 0; i < batch.size(); ++i) {
        const int64_t finished = batch[i].finished_ms;
        if (finished > std::numeric_limits<int64_t>::max() - keep) {
            next = std::numeric_limits<int64_t>::max();
            return i;
        }
        if (finished + keep > now_) {
            next = finished + keep;
            return i;
        }
    }
    return batch.size();
}

// The first entries due now (at most sweep_batch); sets next_expiry_ms_ to
// the time of the first entry not yet due, or none.
std::vector<expiry_entry> engine::due_expiries() {
    std::vector<expiry_entry> due;
    next_expiry_ms_.reset();
    check(txn_->scan(table::expiry, "", false,
                     [&](std::string_view k, std::string_view) {
                         auto e = parse_expiry_key(k);
                         if (!e) {
                             log_.warn("expiry entry of an unknown layout dropped ({} bytes)", k.size());
                             check(txn_->erase(table::expiry, k), "erase expiry");
                             next_expiry_ms_ = now_;
                             return false;  // the cursor moved under us: read again
                         }
                         if (e->at_ms > now_) {
                             next_expiry_ms_ = e->at_ms;
                             return false;
                         }
                         due.push_back(std::move(*e));
                         return due.size() < sweep_batch;
                     }),
          "scan expiry");
    if (due.size() >= sweep_batch) {
        next_expiry_ms_ = now_;
    }
    return due;
}

bool engine::sweep_one(const expiry_entry& e, sweep_slice& slice) {
    if (e.kind == expiry_kind::workflow) {
        return sweep_workflow(e, slice);
    }
    auto id = id_from_bytes(e.id);
    auto r = id ? lookup(*id) : result<task_record>(fail(errc::not_found, "bad id"));
    // Only a finished task whose record still names this entry is deleted:
    // anything else (retried, deleted already, unreadable) drops the entry.
    if (r && is_final(r->state) && !r->expiry_implied && r->delete_at_ms == e.at_ms) {
        erase_task(*r);  // erases the entry too
        ++slice.deleted;
        return true;
    }
    check(txn_->erase(table::expiry, expiry_key(e.at_ms, e.kind, e.id)), "erase expiry");
    return true;
}

// Deletes the finished steps of the workflow, then its record. A workflow
// with more steps than a slice allows takes several slices: the steps
// deleted are gone, the next slice skips them. Returns false when it had to
// stop with steps left.
bool engine::sweep_workflow(const expiry_entry& e, sweep_slice& slice) {
    auto raw = txn_->get(table::workflows, e.id);
    auto w = raw ? decode_workflow(*raw) : result<workflow>(fail(errc::not_found, "gone"));
    if (w && w->state != workflow_state::running) {
        for (const auto& s : w->steps) {
            if (!s.task) {
                continue;
            }
            if (slice.spent()) {
                return false;
            }
            auto r = lookup(*s.task);
            // A step retried after the workflow ended and not finished yet
            // stays; it gets a retention of its own when it ends.
            if (r && is_final(r->state) && r->parent == w->id) {
                erase_task(*r);
                ++slice.deleted;
            }
        }
        check(txn_->erase(table::workflows, e.id), "erase workflow");
        count("workflows_deleted");
    }
    check(txn_->erase(table::expiry, expiry_key(e.at_ms, e.kind, e.id)), "erase expiry");
    return true;
}

// Where the walks of the finished tasks go on from; the first turn's sweep
// finds when anything is due next.
void engine::recover_expiry() {
    for (auto s : {task_state::succeeded, task_state::failed, task_state::cancelled, task_state::expired}) {
        auto raw = txn_->get(table::meta, std::string(keys::meta_sweep_from) + std::string(to_string(s)));
        finished_from(s) = raw ? *raw : std::string();
    }
    next_expiry_ms_ = now_;
}

// As if `r` had finished under this retention (engine/store_upgrade.cpp).
void engine::expire_finished(task_record& r) {
    if (!is_final(r.state) || r.delete_at_ms != 0 || workflow_step(r)) {
        return;
    }
    r.delete_at_ms = retention_.delete_at(r, r.state, r.finished_ms > 0 ? r.finished_ms : now_);
    if (r.delete_at_ms != 0) {
        check(txn_->put(table::expiry, task_expiry_key(r.delete_at_ms, r.id), ""), "put expiry");
        save(r);
    }
}

void engine::expire_ended_workflows() {
    std::vector<std::pair<std::string, workflow>> ended;
    check(txn_->scan(table::workflows, "", false,
                     [&](std::string_view k, std::string_view v) {
                         if (auto w = decode_workflow(v); w && w->state != workflow_state::running) {
                             ended.emplace_back(std::string(k), std::move(*w));
                         }
                         return true;
                     }),
          "scan workflows");
    for (const auto& [key, w] : ended) {
        retain_workflow(key, w.state, w.finished_ms > 0 ? w.finished_ms : now_);
    }
}

}  // namespace taskmill::broker
