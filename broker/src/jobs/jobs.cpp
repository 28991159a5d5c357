// The job runner: advances bulk jobs (bulk_job.hpp) in slices inside the
// loop's turns, so that a purge or a bulk retry of a million tasks never
// holds the loop for more than about job_turn_budget per turn while other
// clients are served. Every slice writes its changes and the job's cursor
// in the turn's transaction: a crash loses at most the uncommitted turn,
// and the job resumes after a restart where its last commit left it.
#include <algorithm>

#include "engine/engine.hpp"

namespace taskmill::broker {

namespace {

// Tasks read from the index per scan call: between two looks at the clock.
constexpr uint32_t job_batch = 64;

bool waiting(task_state s) { return s == task_state::queued || s == task_state::pending || s == task_state::retrying; }

bool retryable(task_state s) {
    return s == task_state::failed || s == task_state::cancelled || s == task_state::expired;
}

}  // namespace

bool engine::job_time_left() {
    const auto now = std::chrono::steady_clock::now();
    if (!job_turn_end_) {
        job_turn_end_ = now + job_turn_budget;
    }
    return now < *job_turn_end_;
}

std::optional<int64_t> engine::jobs_deadline() const {
    std::optional<int64_t> best;
    for (const auto& [id, j] : jobs_) {
        const int64_t at = j.kind == job_kind::retry ? std::max(now_, retry_jobs_held_until_) : now_;
        best = best ? std::min(*best, at) : at;
    }
    return best;
}

void engine::start_job(bulk_job j, const std::string& peer, std::string_view command, uint64_t req,
                       std::vector<std::string>* ids) {
    j.id = ++last_job_id_;
    j.started_ms = now_;
    log_.info("job={} kind={} started filter=\"{}\"", j.id, to_string(j.kind), to_info(j).filter);
    events_.emit("job.started",
                 [&](event& e) { e.add("job", j.id).add("kind", to_string(j.kind)).add("filter", to_info(j).filter); });
    auto& running = jobs_.emplace(j.id, std::move(j)).first->second;
    const uint64_t id = running.id;
    run_slice(running, ids);
    protocol::reply rep;
    rep.req = req;
    if (auto it = jobs_.find(id); it != jobs_.end()) {
        rep.job = to_info(it->second);
        if (ids) {
            ids->clear();  // not finished in this turn: the job has them
        }
    } else if (auto stored = txn_->get(table::jobs, job_key(id)); stored) {
        if (auto done = decode_job(*stored)) {
            rep.job = to_info(*done);
        }
    }
    if (ids) {
        rep.ids = std::move(*ids);
    }
    reply_front(peer, command, rep);
}

void engine::run_jobs() {
    for (auto it = jobs_.begin(); it != jobs_.end() && job_time_left();) {
        auto next = std::next(it);
        if (it->second.kind != job_kind::retry || now_ >= retry_jobs_held_until_) {
            run_slice(it->second);
        }
        it = next;
    }
}

void engine::run_slice(bulk_job& j, std::vector<std::string>* ids) {
    uint32_t read = 0;
    while (!j.done && read < job_slice_tasks && job_time_left()) {
        if (j.kind == job_kind::retry && new_work_refused()) {
            retry_jobs_held_until_ = now_ + job_hold_ms;  // let finishing work have the room
            break;
        }
        std::vector<task_id> batch;
        if (!j.ids.empty()) {
            const auto end = std::min<uint64_t>(j.ids.size(), j.position + job_batch);
            batch.assign(j.ids.begin() + static_cast<std::ptrdiff_t>(j.position),
                         j.ids.begin() + static_cast<std::ptrdiff_t>(end));
            j.position = end;
            j.done = end == j.ids.size();
        } else {
            auto next = walk_tasks(j.filter, j.cursor, job_batch, [&](const task_id& id) {
                batch.push_back(id);
                return task_index::step::next;
            });
            if (!next) {
                throw store_failure(next.error().code, "store scan of the task index failed: " + next.error().message);
            }
            j.cursor = std::move(*next);
            j.started = true;
            j.done = j.cursor.empty();
        }
        read += std::max<uint32_t>(static_cast<uint32_t>(batch.size()), 1);
        for (const auto& id : batch) {
            auto r = load(id);
            if (r && apply_job(j, *r) && ids && ids->size() < max_reported_ids) {
                ids->push_back(to_hex(id));
            }
        }
    }
    save_job(j);
    if (j.done) {
        finish_job(j);
    }
}

bool engine::apply_job(bulk_job& j, task_record& r) {
    if (j.ids.empty() && !j.filter.matches(r)) {
        return false;
    }
    protocol::reply ignored;
    switch (j.kind) {
        case job_kind::purge:
            if (!waiting(r.state)) {
                return false;
            }
            ++j.matched;
            cancel(r, ignored, "purged");
            break;
        case job_kind::cancel:
            if (is_final(r.state)) {
                return false;
            }
            ++j.matched;
            cancel(r, ignored);
            break;
        case job_kind::retry:
            if (!retryable(r.state)) {
                return false;
            }
            ++j.matched;
            restart_task(r);
            break;
        case job_kind::remove:
            ++j.matched;
            if (!is_final(r.state) || workflow_step(r)) {
                return false;  // counted as skipped
            }
            erase_task(r);
            break;
    }
    ++j.changed;
    return true;
}

void engine::save_job(const bulk_job& j) { check(txn_->put(table::jobs, job_key(j.id), encode(j)), "put job"); }

void engine::finish_job(const bulk_job& j) {
    bulk_job done = j;
    done.finished_ms = now_;
    done.cursor.clear();
    done.ids.clear();  // the record stays small once done
    save_job(done);
    count("jobs_done");
    log_.info("job={} kind={} done matched={} changed={} skipped={}", done.id, to_string(done.kind), done.matched,
              done.changed, done.skipped());
    events_.emit("job.done", [&](event& e) {
        e.add("job", done.id)
            .add("kind", to_string(done.kind))
            .add("filter", to_info(j).filter)
            .add("matched", done.matched)
            .add("changed", done.changed)
            .add("skipped", done.skipped());
    });
    jobs_.erase(done.id);
    prune_jobs();
}

void engine::prune_jobs() {
    std::vector<uint64_t> finished;
    check(txn_->scan(table::jobs, "", true,
                     [&](std::string_view k, std::string_view) {
                         if (auto id = job_id_of(k); id && !jobs_.contains(*id)) {
                             finished.push_back(*id);
                         }
                         return true;
                     }),
          "scan jobs");
    for (std::size_t i = finished_jobs_kept; i < finished.size(); ++i) {
        check(txn_->erase(table::jobs, job_key(finished[i])), "erase job");
    }
}

void engine::recover_jobs() {
    check(txn_->scan(table::jobs, "", false,
                     [&](std::string_view k, std::string_view v) {
                         auto id = job_id_of(k);
                         if (!id) {
                             return true;
                         }
                         last_job_id_ = std::max(last_job_id_, *id);
                         auto j = decode_job(v);
                         if (!j) {
                             log_.warn("job={} unreadable, left as it is: {}", *id, j.error().message);
                         } else if (!j->done) {
                             jobs_.emplace(*id, std::move(*j));
                         }
                         return true;
                     }),
          "scan jobs");
    for (const auto& [id, j] : jobs_) {
        log_.info("job={} kind={} resumed matched={} changed={}", id, to_string(j.kind), j.matched, j.changed);
    }
}

void engine::restart_task(task_record& r) {
    r.attempts = 0;
    r.crashes = 0;
    r.suspect_crashes = 0;
    r.error.clear();
    r.result.reset();
    r.cancel_requested = false;
    r.finished_ms = 0;
    r.ttl_ms = 0;  // an explicit retry is a fresh start
    enqueue(r);
}

}  // namespace taskmill::broker
