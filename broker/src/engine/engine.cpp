// Engine: turns, record access, state bookkeeping and recovery.
#include "engine/engine.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include <msgpack.hpp>

#include "store/keys.hpp"
#include "store/migrate.hpp"

namespace taskmill::broker {

int64_t now_ms() {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

engine::engine(const broker_config& cfg, store& st, spdlog::logger& log)
    : cfg_(cfg),
      store_(st),
      log_(log),
      waiters_(cfg.max_waits, cfg.max_waits_per_client),
      schedules_(cfg.schedules, *this, log) {
    limits_.max_payload = cfg.max_body_bytes;
    // Hosts and clients read at most protocol::default_max_body; a smaller
    // configured limit holds for both directions.
    out_max_body_ = std::min(cfg.max_body_bytes, protocol::default_max_body);
}

// ---- turns ----

void engine::begin_turn(int64_t now) {
    now_ = now;
    events_.set_time(now);
    txn_ = store_.begin(true);
    job_turn_end_.reset();
    auto gone = std::move(unreachable_);
    unreachable_.clear();
    for (const auto& id : gone) {
        remove_worker(id, false, "unroutable");
    }
}

void engine::end_turn() {
    flush_done();
    if (seq_dirty_) {
        std::string v;
        keys::put_u64(v, seq_);
        check(txn_->put(table::meta, keys::meta_seq, v), "put seq");
        seq_dirty_ = false;
    }
    check(counters_.save(*txn_), "put counts");
    auto t0 = std::chrono::steady_clock::now();
    auto rc = txn_->commit();
    metrics_.commit(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    txn_.reset();
    if (!rc) {
        throw store_failure(rc.error().code, "store commit failed: " + rc.error().message);
    }
}

std::vector<std::pair<std::string, uint64_t>> engine::parked() const { return waiters_.all(); }

void engine::hold_new_work(int64_t until_ms, std::string why) {
    hold_until_ms_ = until_ms;
    hold_why_ = std::move(why);
}

// New work is what can fill the store without end; finishing work (results,
// cancels, requeues) must always find room, so it is never refused here.
std::optional<std::string> engine::new_work_refused() {
    if (now_ < hold_until_ms_) {
        return "a store write failed (" + hold_why_ + "); new work is refused for " +
               std::to_string((hold_until_ms_ - now_ + 999) / 1000) + " s more";
    }
    const double fill = store_.fill_ratio();
    if (fill <= store_fill_limit) {
        full_logged_ = false;
        return std::nullopt;
    }
    const std::string what =
        "storage is " + std::to_string(static_cast<int>(fill * 100)) + "% full (" + store_.fill_text() + ")";
    if (!full_logged_) {
        full_logged_ = true;
        log_.warn(
            "{}: new work is refused, finishing work goes on. To make room, restart the broker with a "
            "larger --map-size-mb (if the disk has room) or free disk space in {}",
            what, cfg_.data_dir);
    }
    return what + "; new work is refused: raise --map-size-mb or free disk space";
}

std::optional<int64_t> engine::next_deadline() const {
    std::optional<int64_t> best;
    auto take = [&](std::optional<int64_t> t) {
        if (t && (!best || *t < *best)) {
            best = t;
        }
    };
    take(delayed_.next());
    take(ttl_.next());
    take(leases_.next());
    take(schedules_.next_fire_ms());
    take(waiters_.next_deadline());
    take(next_expiry_ms_);
    take(flow_wake_);
    take(jobs_deadline());
    if (dispatch_hold_ms_ > now_) {
        take(dispatch_hold_ms_);
    }
    if (metrics_wanted_ && (ready_.total() > 0 || !running_.empty())) {
        // The oldest-ready ages and running counts of /metrics move only
        // while tasks wait or run: refreshed once a second then.
        take(slow_figures_ms_ + 1000);
    }
    if (workers_.size() > 0) {
        take(next_heartbeat_);
        if (auto seen = workers_.earliest_seen()) {
            take(*seen + cfg_.liveness_ms + 1);
        }
    }
    return best;
}

// ---- records ----

std::optional<task_record> engine::load(const task_id& id) {
    auto r = lookup(id);
    if (!r) {
        return std::nullopt;
    }
    return std::move(r.value());
}

result<task_record> engine::lookup(const task_id& id) {
    if (auto it = running_.find(id); it != running_.end()) {
        return it->second.record;
    }
    auto raw = txn_->get(table::tasks, id_bytes(id));
    if (!raw) {
        if (raw.error().code != errc::not_found) {
            throw store_failure(raw.error().code, "store read failed: " + raw.error().message);
        }
        return fail(errc::not_found, "no task " + to_hex(id));
    }
    auto rec = decode_record(*raw);
    if (!rec) {
        log_.error("task={} record unreadable: {}", to_hex(id), rec.error().message);
        return fail(errc::corrupt, "task " + to_hex(id) + " is stored but its record cannot be read (" +
                                       rec.error().message + "); run taskmill-broker --check-store");
    }
    return std::move(rec.value());
}

void engine::save(const task_record& r) {
    const auto& id = r.id;
    if (r.state != task_state::running) {
        check(txn_->put(table::tasks, id_bytes(id), encode(r)), "put task");
        return;
    }
    // A running task (a checkpoint, progress, a cancel request) is stored
    // as QUEUED, as start_attempt left it, with what changed since.
    if (auto it = running_.find(id); it != running_.end() && &it->second.record != &r) {
        it->second.record = r;
    }
    task_record image = r;
    image.state = task_state::queued;
    image.worker.clear();
    check(txn_->put(table::tasks, id_bytes(id), encode(image)), "put task");
}

void engine::erase_task(const task_record& r) {
    check(task_index::remove(*txn_, r), "erase index entries");
    erase_unindexed(r);
}

void engine::erase_tasks(const std::vector<task_record>& rs) {
    check(task_index::remove(*txn_, rs), "erase index entries");
    for (auto it = rs.rbegin(); it != rs.rend(); ++it) {
        erase_unindexed(*it);
    }
}

// What erase_task erases beside the listing indexes.
void engine::erase_unindexed(const task_record& r) {
    const auto id = id_bytes(r.id);
    for (const auto& tag : r.tags) {
        check(txn_->erase(table::tags, keys::tag_key(tag, r.id)), "erase tag");
    }
    // The key may have been taken over since (it names another task then).
    if (!r.key.empty()) {
        if (auto named = txn_->get(table::keys, r.key); named && *named == id) {
            check(txn_->erase(table::keys, r.key), "erase key");
        }
    }
    if (r.delete_at_ms != 0 && !r.expiry_implied) {
        check(txn_->erase(table::expiry, task_expiry_key(r.delete_at_ms, r.id)), "erase expiry");
    }
    check(txn_->erase(table::tasks, id), "erase task");
    counters_.removed(r.queue, r.state);
    count("deleted");
}

task_record engine::current(task_record stored) const {
    if (auto it = running_.find(stored.id); it != running_.end()) {
        return it->second.record;
    }
    return stored;
}

// A failed write leaves the transaction unusable and memory ahead of the
// store: stop, and let recovery rebuild a consistent state on restart.
void engine::check(const result<void>& r, const char* what) {
    if (!r) {
        throw store_failure(r.error().code, std::string("store ") + what + " failed: " + r.error().message);
    }
}

uint64_t engine::next_seq() {
    seq_dirty_ = true;
    return ++seq_;
}

void engine::set_state(task_record& r, task_state s) {
    auto from = r.has_state ? std::optional(r.state) : std::nullopt;
    metrics_.state_change(r.queue, r.priority, from, s);
    counters_.moved(r.queue, from, s);
    const int64_t from_time = from ? indexed_time(r, *from) : 0;
    track_expiry(r, from, s);
    r.state = s;
    r.has_state = true;
    index_task(r, from, from_time);
    track_live(r, from);
    emit_task(r);
}

void engine::track_live(const task_record& r, std::optional<task_state> from) {
    if (live_index::lists(r.state)) {
        live_.set(r.id, r.queue, r.handler, r.state);
    } else if (from && live_index::lists(*from)) {
        live_.erase(r.id);
    }
}

// A final state's entries are keyed by the finish time the store has; a
// retry clears r.finished_ms before the state changes, so read it there.
int64_t engine::indexed_time(const task_record& r, task_state from) {
    if (!is_final(from)) {
        return task_index::time_in_state(r, from);
    }
    auto raw = txn_->get(table::tasks, id_bytes(r.id));
    if (!raw) {
        return r.finished_ms;
    }
    auto stored = decode_record(*raw);
    return stored ? stored->finished_ms : r.finished_ms;
}

// The listing indexes follow every state change; the tags table lists a
// task from its creation until it is deleted.
void engine::index_task(const task_record& r, std::optional<task_state> from, int64_t from_time) {
    if (from) {
        check(task_index::moved(*txn_, r, *from, from_time), "move index entries");
        return;
    }
    check(task_index::add(*txn_, r), "put index entries");
    for (const auto& tag : r.tags) {
        check(txn_->put(table::tags, keys::tag_key(tag, r.id), ""), "put tag");
    }
}

// Topic task.<state in lower case>.
void engine::emit_task(const task_record& r) {
    if (!events_.anyone()) {
        return;  // spares building the topic
    }
    events_.emit("task." + lower_name(r.state), [&](event& e) {
        e.add("id", to_hex(r.id))
            .add("state", to_string(r.state))
            .add("handler", r.handler)
            .add("queue", r.queue)
            .add("attempt", r.attempts)
            .add("error", r.error)
            .add("worker", r.worker);
    });
}

void engine::emit_worker(std::string_view type, const std::string& id) {
    events_.emit(type, [&](event& e) { e.add("worker", id); });
}

void engine::reply_front(const std::string& peer, std::string_view command, const protocol::reply& r) {
    out_.messages.push_back({target::frontend, peer, std::string(command), protocol::encode(r)});
}

void engine::reply_error(const std::string& peer, std::string_view command, uint64_t req, errc code,
                         const std::string& message) {
    protocol::reply r;
    r.req = req;
    r.ok = false;
    r.error_code = std::string(to_string(code));
    r.error = message;
    reply_front(peer, command, r);
}

// ---- recovery ----

void engine::recover(int64_t now) {
    started_ms_ = now;
    now_ = now;
    try_upgrade_store();
    begin_turn(now);
    if (auto raw = txn_->get(table::meta, keys::meta_seq); raw && raw->size() == 8) {
        seq_ = keys::get_u64(*raw);
    }
    check(counters_.recover(*txn_, log_), "read counts");
    recover_indexes();
    recover_running();
    recover_handler_defaults();
    recover_flow();
    recover_jobs();
    recover_handler_memory();
    workflows_.recover();
    schedules_.recover();
    recover_expiry();
    try {
        end_turn();
    } catch (const store_failure& e) {
        if (e.code == errc::corrupt) {
            throw;
        }
        // Recovery only redoes what the store already implies (requeue the
        // running, rebuild counters and indexes), and does it again at every
        // start: serving from memory loses nothing.
        log_.error("recovery could not be saved ({}); serving from memory, new work refused", e.what());
        hold_new_work(now + store_hold_ms, e.what());
    }
    out_.clear();  // events of the recovery are not news to anyone
}

// A store written before the workflows and schedules tables had their
// records in meta: moved in this transaction, so once for good.
void engine::migrate_store() {
    auto moved = move_meta_records(*txn_);
    if (!moved) {
        throw store_failure(moved.error().code, "store migration failed: " + moved.error().message);
    }
    if (moved->workflows > 0 || moved->schedules > 0) {
        log_.info("moved workflows={} schedules={} from the meta table to their own tables", moved->workflows,
                  moved->schedules);
    }
}

// An upgrade that cannot be saved (a full map or disk) leaves the store as
// it was up to its last slice, and the next start goes on from there;
// meanwhile listings and retention miss the tasks not yet upgraded.
void engine::try_upgrade_store() {
    try {
        upgrade_store();
    } catch (const store_failure& e) {
        txn_.reset();
        if (e.code == errc::corrupt) {
            throw;
        }
        log_.error("{}; listings and retention miss older tasks until a start completes the upgrade", e.what());
    }
}

// Every task carrying `tag`, from the tags table (finished ones too).
std::vector<task_id> engine::tasks_with_tag(const std::string& tag) {
    const auto prefix = keys::tag_prefix(tag);
    std::vector<task_id> ids;
    check(txn_->scan(table::tags, prefix, false,
                     [&](std::string_view k, std::string_view) {
                         if (k.substr(0, prefix.size()) != prefix) {
                             return false;  // past the tag's entries
                         }
                         if (auto id = keys::parse_tag_key(k, prefix.size())) {
                             ids.push_back(*id);
                         }
                         return true;
                     }),
          "scan tags");
    return ids;
}

void engine::recover_indexes() {
    const bool unlist = !txn_->get(table::meta, keys::meta_queued_unlisted);
    std::vector<task_id> queued;
    check(txn_->scan(
              table::ready, "", false,
              [&](std::string_view k, std::string_view v) {
                  if (auto e = keys::parse_ready(k, v)) {
                      metrics_.queued_recovered(e->queue, e->priority);
                      ready_.push(e->queue, e->priority, ready_.intern(e->handler), {e->seq, e->id, e->expires_ms});
                      live_.set(e->id, e->queue, e->handler, task_state::queued);
                      if (unlist) {
                          queued.push_back(e->id);
                      }
                      alone_queued_ = alone_queued_ || std::string_view(e->handler).ends_with(alone_mark);
                      if (e->expires_ms > 0) {
                          ttl_.set(e->id, e->expires_ms);
                      }
                  }
                  return true;
              }),
          "scan ready");
    check(txn_->scan(table::delayed, "", false,
                     [&](std::string_view k, std::string_view) {
                         if (auto d = keys::parse_delayed(k)) {
                             delayed_.set(d->second, d->first);
                         }
                         return true;
                     }),
          "scan delayed");
    if (unlist) {
        unlist_queued(queued);
    }
}

// A store written before QUEUED tasks were listed from memory has by-state
// index entries for them, which nothing would erase: they go once, in the
// recovery turn.
void engine::unlist_queued(const std::vector<task_id>& ids) {
    for (const auto& id : ids) {
        if (auto r = load(id)) {
            check(task_index::remove_queued_entries(*txn_, *r), "erase index entries");
        }
    }
    check(txn_->put(table::meta, keys::meta_queued_unlisted, "1"), "put queued-unlisted");
    if (!ids.empty()) {
        log_.info("store upgraded: the {} QUEUED task(s) are listed from memory now", ids.size());
    }
}

// The attempts that were running when the last broker stopped are lost with
// it, and their tasks are queued again (at-least-once). This broker keeps
// RUNNING in memory and its store has those tasks QUEUED already (see
// start_attempt); only a store from a release that wrote the running
// table still lists some there.
void engine::recover_running() {
    std::vector<task_id> ids;
    check(txn_->scan(table::running, "", false,
                     [&](std::string_view k, std::string_view) {
                         if (auto id = id_from_bytes(k)) {
                             ids.push_back(*id);
                         }
                         return true;
                     }),
          "scan running");
    for (const auto& id : ids) {
        check(txn_->erase(table::running, id_bytes(id)), "erase running");
        auto r = load(id);
        if (r && r->state == task_state::running) {
            r->worker.clear();
            enqueue(*r, true);
        }
    }
    if (!ids.empty()) {
        log_.info("recovered running={} requeued as QUEUED", ids.size());
    }
}

void engine::recover_handler_defaults() {
    const auto prefix = handler_defaults::key_prefix;
    check(txn_->scan(table::meta, prefix, false,
                     [&](std::string_view k, std::string_view v) {
                         if (k.substr(0, prefix.size()) != prefix) {
                             return false;  // past the entries
                         }
                         if (!defaults_.restore(k, v)) {
                             log_.warn("meta entry {} unreadable: ignored", protocol::printable(k));
                         }
                         return true;
                     }),
          "scan handler defaults");
}

}  // namespace taskmill::broker
