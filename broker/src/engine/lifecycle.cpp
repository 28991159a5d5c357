// Task state transitions and the timers that drive them. Every transition
// updates the store (in the turn's transaction) and the in-memory indexes
// together, so that a commit leaves both describing the same state.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>

#include "engine/engine.hpp"
#include "model/message_size.hpp"
#include "store/keys.hpp"

namespace taskmill::broker {

result<task_record> engine::create(const protocol::task_spec& spec, const std::string& peer) {
    task_record r;
    r.id = ids_.next(now_);
    r.handler = spec.handler;
    // A handler always gets one msgpack value: no payload is nil.
    r.payload = spec.payload.empty() ? std::string(protocol::msgpack_nil) : spec.payload;
    // What the submit leaves unset comes from the handler's own defaults,
    // as its workers announced them, then from the broker's.
    auto ref = parse_handler(spec.handler);
    auto own = ref ? defaults_.find(*ref) : std::nullopt;
    r.queue = !spec.queue.empty() ? spec.queue : own && !own->queue.empty() ? own->queue : "default";
    r.priority = spec.priority.value_or(0);
    r.max_retries = spec.retries ? *spec.retries : own && own->retries ? *own->retries : cfg_.default_retries;
    r.timeout_ms = spec.timeout_ms ? *spec.timeout_ms : own && own->timeout_ms ? *own->timeout_ms : 0;
    r.ttl_ms = spec.ttl_ms.value_or(0);
    r.eta_ms = spec.eta_ms ? *spec.eta_ms : add_ms(now_, spec.delay_ms.value_or(0));
    r.backoff_base_ms = spec.backoff_base_ms.value_or(0);
    r.backoff_factor = spec.backoff_factor.value_or(0);
    r.backoff_cap_ms = spec.backoff_cap_ms.value_or(0);
    r.tags = spec.tags;
    r.keep_ms = spec.keep_ms;
    r.key = spec.key;
    r.parent = spec.parent;
    r.notify = spec.notify;
    if (spec.notify) {
        r.notify_peer = peer;
    }
    r.created_ms = now_;
    return r;
}

void engine::enqueue(task_record& r, bool keep_place) {
    if (r.expires_ms() > 0 && r.expires_ms() <= now_) {
        finish(r, task_state::expired, "ttl elapsed before the task started");
        return;
    }
    const auto& id = r.id;
    if (!keep_place || r.seq == 0) {
        r.seq = next_seq();
    }
    check(txn_->put(table::ready, keys::ready_key(r.queue, r.priority, r.seq),
                    keys::ready_value(id, r.expires_ms(), ready_name(r))),
          "put ready");
    ready_.push(r.queue, r.priority, ready_.intern(ready_name(r)), {r.seq, id, r.expires_ms()});
    alone_queued_ = alone_queued_ || r.runs_alone();
    if (r.expires_ms() > 0) {
        ttl_.set(id, r.expires_ms());
    }
    set_state(r, task_state::queued);
    save(r);
}

void engine::delay(task_record& r, int64_t eta_ms, task_state s) {
    const auto& id = r.id;
    r.eta_ms = eta_ms;
    check(txn_->put(table::delayed, keys::delayed_key(eta_ms, id), ""), "put delayed");
    delayed_.set(id, eta_ms);
    set_state(r, s);
    save(r);
}

// Takes a waiting task out of the ready or delayed index.
void engine::unqueue(task_record& r) {
    const auto& id = r.id;
    if (r.state == task_state::queued) {
        ready_.remove(r.queue, id);
        ttl_.erase(id);
        check(txn_->erase(table::ready, keys::ready_key(r.queue, r.priority, r.seq)), "erase ready");
    } else if (r.state == task_state::pending || r.state == task_state::retrying) {
        delayed_.erase(id);
        check(txn_->erase(table::delayed, keys::delayed_key(r.eta_ms, id)), "erase delayed");
    }
}

void engine::finish(task_record& r, task_state s, std::string error) {
    if (!error.empty()) {
        r.error = std::move(error);
    }
    r.finished_ms = now_;
    set_state(r, s);
    save(r);
    on_final(r);
}

// Forgets the running attempt: the ready key that kept it durable (see
// start_attempt), lease, worker's credit.
void engine::stop_running(task_record& r) {
    const auto& id = r.id;
    check(txn_->erase(table::ready, keys::ready_key(r.queue, r.priority, r.seq)), "erase ready");
    leases_.erase(id);
    if (auto it = running_.find(id); it != running_.end()) {
        if (auto* w = workers_.find(it->second.worker)) {
            w->release(id, it->second.started);
        }
        if (flow_.active()) {
            flow_stopped(r);  // not the entry's record: a caller may have moved it out
        }
        running_.erase(it);
    }
}

int64_t engine::lease_end(const task_record& r) const {
    return add_ms(now_, r.timeout_ms, cfg_.lease_grace_ms, cfg_.liveness_ms);  // saturating
}

int64_t engine::backoff_ms(const task_record& r) {
    static std::mt19937_64 rng{std::random_device{}()};
    double base = static_cast<double>(r.backoff_base_ms > 0 ? r.backoff_base_ms : cfg_.backoff_base_ms);
    double factor = r.backoff_factor >= 1.0 ? r.backoff_factor : cfg_.backoff_factor;
    double cap = static_cast<double>(r.backoff_cap_ms > 0 ? r.backoff_cap_ms : cfg_.backoff_cap_ms);
    double exponent = r.attempts > 0 ? static_cast<double>(r.attempts - 1) : 0.0;
    double d = std::min(cap, base * std::pow(factor, std::min(exponent, 64.0)));
    // "Equal jitter": half fixed, half random, so retries of tasks that
    // failed together spread out but never come back instantly.
    std::uniform_real_distribution<double> jitter(0.5, 1.0);
    return static_cast<int64_t>(d * jitter(rng));
}

void engine::retry_or_fail(task_record& r, const std::string& error, std::optional<int64_t> retry_after_ms) {
    r.error = error;
    if (static_cast<int64_t>(r.attempts) <= r.max_retries) {
        count("retried");
        metrics_.retried(r.handler, run_seconds(r));
        // A handler's own delay is a peer's figure: at most max_duration_ms.
        int64_t wait =
            retry_after_ms && *retry_after_ms >= 0 ? std::min(*retry_after_ms, max_duration_ms) : backoff_ms(r);
        delay(r, now_ + wait, task_state::retrying);
        log_.info("task={} retrying attempt={} in_ms={} error={}", to_hex(r.id), r.attempts, wait,
                  protocol::printable(error));
        return;
    }
    finish(r, task_state::failed, error);
}

// The attempt running `id` is gone without a result (worker dead, silent,
// unroutable, or restarted).
void engine::lost(const task_id& id, blame b, const std::string& why) {
    auto r = load(id);
    if (!r || r->state != task_state::running) {
        return;
    }
    stop_running(*r);
    end_attempt(*r, lost_outcome(*r), why);
    if (r->cancel_requested) {
        finish(*r, task_state::cancelled, "cancelled");
        return;
    }
    // Past its deadline, the worker's death is the host enforcing the
    // timeout (its own "timeout" result may arrive after this report, on
    // another connection): a timed-out attempt, retried like one, not a crash.
    if (r->timeout_ms > 0 && r->started_ms > 0 && now_ >= add_ms(r->started_ms, r->timeout_ms)) {
        retry_or_fail(*r, "timeout (worker " + why + ")", std::nullopt);
        return;
    }
    if (charge(*r, b)) {
        finish(*r, task_state::failed, poison_error(*r));
        return;
    }
    count("requeued");
    r->error = why;
    log_.info("task={} requeued reason=\"{}\" attempt={}", to_hex(r->id), protocol::printable(why), r->attempts);
    enqueue(*r, true);
}

void engine::cancel(task_record& r, protocol::reply& rep, const std::string& why) {
    rep.ids.push_back(to_hex(r.id));
    if (is_final(r.state)) {
        rep.note = "already finished (" + std::string(to_string(r.state)) + ")";
        return;
    }
    if (r.state != task_state::running) {
        unqueue(r);
        finish(r, task_state::cancelled, why);
        return;
    }
    r.cancel_requested = true;
    save(r);
    auto it = running_.find(r.id);
    if (it != running_.end()) {
        protocol::control c;
        c.ids = {to_hex(r.id)};
        c.attempt = it->second.attempt;
        send_back(it->second.worker, protocol::cmd::cancel, c);
    }
    rep.note = "cancel requested";
}

void engine::on_final(const task_record& r) {
    count(lower_name(r.state));
    bool ran = r.started_ms > 0 && (r.state == task_state::succeeded || r.state == task_state::failed);
    metrics_.finished(r.handler, r.state, ran ? run_seconds(r) : -1.0, now_);
    // One line per task would cost more than the task at full rate: a
    // success is a debug line, every other end is worth an info line.
    log_.log(r.state == task_state::succeeded ? spdlog::level::debug : spdlog::level::info,
             "task={} state={} attempts={} handler={}", to_hex(r.id), to_string(r.state), r.attempts, r.handler);
    if (r.notify && !r.notify_peer.empty()) {
        pending_done_[r.notify_peer].push_back(to_info(r));
    }
    answer_waiters(r);
    workflows_.on_task_final(r);
}

// One DONE per client per turn, or more when they would not fit in one.
void engine::flush_done() {
    for (auto& [peer, all] : pending_done_) {
        while (!all.empty()) {
            std::vector<protocol::task_info> tasks;
            take_fitting(all, tasks);
            protocol::reply done;
            if (tasks.size() == 1) {
                done.task = std::move(tasks.front());
            } else {
                done.tasks = std::move(tasks);
            }
            reply_front(peer, protocol::cmd::done, done);
        }
    }
    pending_done_.clear();
}

void engine::take_fitting(std::vector<protocol::task_info>& from, std::vector<protocol::task_info>& tasks) const {
    std::size_t bytes = envelope_bound;
    std::size_t n = 0;
    for (; n < from.size(); ++n) {
        if (n == 0) {
            fit_alone(from[n], out_max_body_);
        }
        auto size = size_bound(from[n]);
        if (n > 0 && bytes + size > out_max_body_) {
            break;
        }
        bytes += size;
    }
    tasks.assign(std::make_move_iterator(from.begin()),
                 std::make_move_iterator(from.begin() + static_cast<std::ptrdiff_t>(n)));
    from.erase(from.begin(), from.begin() + static_cast<std::ptrdiff_t>(n));
}

void engine::answer_waiters(const task_record& r) {
    for (auto& w : waiters_.take_task(r.id)) {
        protocol::reply rep;
        rep.req = w.req;
        rep.task = to_status_info(r);
        fit_alone(*rep.task, out_max_body_);
        reply_front(w.peer, protocol::cmd::status, rep);
    }
}

// ---- timers ----

void engine::on_timers() {
    report_malformed();
    fire_delayed();
    fire_ttl();
    fire_leases();
    fire_waiters();
    check_workers();
    schedules_.fire_due();
    sweep_expired();
    run_jobs();
    refresh_slow_figures();
}

void engine::fire_delayed() {
    for (const auto& id : delayed_.take_due(now_)) {
        auto r = load(id);
        if (r && (r->state == task_state::pending || r->state == task_state::retrying)) {
            check(txn_->erase(table::delayed, keys::delayed_key(r->eta_ms, id)), "erase delayed");
            enqueue(*r);
        }
    }
}

void engine::fire_ttl() {
    for (const auto& id : ttl_.take_due(now_)) {
        auto r = load(id);
        if (r && r->state == task_state::queued) {
            unqueue(*r);
            finish(*r, task_state::expired, "ttl elapsed before the task started");
        }
    }
}

// A lease ran out: the attempt is given up on (retried like a timeout) and
// its worker told to stop it. Its slot stays taken (worker::stale) until
// the worker reports it over, so the next task does not land beside an
// attempt that is still running.
void engine::fire_leases() {
    for (const auto& id : leases_.take_due(now_)) {
        auto it = running_.find(id);
        if (it == running_.end() || it->second.record.state != task_state::running) {
            continue;
        }
        task_record r = it->second.record;
        std::string worker_id = it->second.worker;
        uint32_t attempt = it->second.attempt;
        protocol::control c;
        c.ids = {to_hex(r.id)};
        c.attempt = attempt;
        send_back(worker_id, protocol::cmd::cancel, c);
        stop_running(r);
        end_attempt(r, lost_outcome(r), "lease expired: no result, start or heartbeat naming the task in time");
        if (auto* w = workers_.find(worker_id)) {
            w->stale[id] = attempt;
        }
        count("timeouts");
        if (r.cancel_requested) {
            finish(r, task_state::cancelled, "cancelled");
        } else {
            retry_or_fail(r, "timeout: lease expired (no result, start or heartbeat naming the task in time)",
                          std::nullopt);
        }
    }
}

// A parked STATUS request whose wait ended: answered with the task as it
// is now.
void engine::fire_waiters() {
    for (auto& w : waiters_.take_due(now_)) {
        protocol::reply rep;
        rep.req = w.req;
        if (auto r = load(w.id)) {
            rep.task = to_status_info(*r);
            fit_alone(*rep.task, out_max_body_);
        }
        reply_front(w.peer, protocol::cmd::status, rep);
    }
}

void engine::check_workers() {
    for (const auto& id : workers_.silent(now_, cfg_.liveness_ms)) {
        remove_worker(id, false, "silent past liveness");
    }
    if (now_ >= next_heartbeat_) {
        for (const auto& [id, w] : workers_.all()) {
            protocol::control hb;
            hb.req = w.results_seq;  // the worker may forget the outcomes up to it
            send_back(id, protocol::cmd::heartbeat, hb);
        }
        next_heartbeat_ = now_ + cfg_.heartbeat_ms;
    }
}

}  // namespace taskmill::broker
