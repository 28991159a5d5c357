// Dispatch: hands queued tasks to workers with free credit. Queues take
// turns one task at a time, so a busy queue cannot starve another; within a
// queue, priority 9..0 then FIFO (ready_index::peek).
#include <algorithm>
#include <optional>
#include <utility>

#include "engine/engine.hpp"
#include "model/message_size.hpp"
#include "store/keys.hpp"

namespace taskmill::broker {

std::string engine::ready_name(const task_record& r) {
    return r.runs_alone() ? r.handler + std::string(alone_mark) : r.handler;
}

const engine::ready_handler& engine::handler_of(uint32_t h) {
    while (handler_refs_.size() <= h) {
        // Interned names passed validation (or came from our own store).
        std::string_view name = ready_.handler_name(static_cast<uint32_t>(handler_refs_.size()));
        bool alone = name.ends_with(alone_mark);
        if (alone) {
            name.remove_suffix(alone_mark.size());
        }
        handler_refs_.push_back({parse_handler(name).value_or(handler_ref{}), alone});
    }
    return handler_refs_[h];
}

void engine::dispatch() {
    if (now_ < dispatch_hold_ms_) {
        return;  // next_deadline() wakes the loop when the hold ends
    }
    flow_wake_.reset();  // set again below by a queue still held by its rate
    if (ready_.total() == 0) {
        alone_queued_ = false;
        workers_.clear_reserved();
        return;
    }
    // With every slot taken there is nothing to do, unless a task that
    // runs alone may be waiting: it needs a worker reserved for it.
    if (workers_.free_slots() == 0 && !alone_queued_) {
        return;
    }
    bool alone_waits = false;
    auto queues = ready_.queues();
    bool progress = true;
    while (progress) {
        progress = false;
        for (const auto& q : queues) {
            if (flow_.active() && !queue_may_start(q)) {
                continue;  // paused, at its cap or out of tokens: the others go on
            }
            // The peek only looks: a worker is reserved for a task that runs
            // alone after it, so that a reservation can never take away the
            // worker a picked task was matched to.
            std::optional<handler_ref> reserve_for;
            auto p = ready_.peek(q, [&](uint32_t h) {
                const auto& rh = handler_of(h);
                if (flow_.active() && !handler_may_start(rh.ref.name)) {
                    return false;
                }
                if (workers_.pick(q, rh.ref, rh.alone) != nullptr) {
                    return true;
                }
                if (rh.alone && !reserve_for) {
                    reserve_for = rh.ref;
                }
                return false;
            });
            if (!p) {
                if (reserve_for) {
                    alone_waits = true;
                    workers_.reserve(q, *reserve_for);
                }
                continue;
            }
            const auto& rh = handler_of(p->handler);
            worker* w = workers_.pick(q, rh.ref, rh.alone);
            if (w == nullptr) {
                continue;  // the peek said yes: cannot happen, but never pop what no one takes
            }
            alone_waits = alone_waits || reserve_for.has_value();
            ready_.pop(q, *p);
            w->reserved = false;
            start_attempt(*p, q, *w);
            progress = true;
        }
    }
    if (!alone_waits) {
        workers_.clear_reserved();
    }
}

// Moves one task from the ready index to RUNNING on `w`. Returns false if
// the entry was stale or the task expired instead.
//
// Nothing is written: RUNNING lives in memory only, and the store keeps the
// task QUEUED with its ready key until the attempt ends (stop_running). A
// broker that dies meanwhile finds it queued on restart, which is what
// recovery must do with a lost attempt anyway (at-least-once); and the
// common path costs one record write per state the store must remember
// (QUEUED, then final) instead of three.
bool engine::start_attempt(const ready_index::pick& p, const std::string& queue, worker& w) {
    ttl_.erase(p.e.id);
    auto r = load(p.e.id);
    if (!r || r->state != task_state::queued || r->seq != p.e.seq) {
        check(txn_->erase(table::ready, keys::ready_key(queue, p.priority, p.e.seq)), "erase ready");
        return false;
    }
    if (r->expires_ms() > 0 && r->expires_ms() <= now_) {
        check(txn_->erase(table::ready, keys::ready_key(queue, p.priority, p.e.seq)), "erase ready");
        finish(*r, task_state::expired, "ttl elapsed before the task started");
        return false;
    }
    if (auto size = dispatch_size(*r); size > out_max_body_) {
        // No worker could read it: running it would strand it RUNNING.
        check(txn_->erase(table::ready, keys::ready_key(queue, p.priority, p.e.seq)), "erase ready");
        finish(*r, task_state::failed,
               "too_large: payload and checkpoint make a DISPATCH of up to " + std::to_string(size) +
                   " bytes, over the " + std::to_string(out_max_body_) + "-byte message limit");
        return false;
    }
    ++r->attempts;
    metrics_.dispatched(r->handler, static_cast<double>(now_ - std::max(r->created_ms, r->eta_ms)) / 1000.0);
    r->started_ms = now_;
    r->worker = w.id;
    r->progress_fraction.reset();
    r->progress_note.clear();
    begin_attempt(*r, w, handler_of(p.handler).ref);
    set_state(*r, task_state::running);
    running_[p.e.id] = run_info{w.id, r->attempts, false, 0, *r};
    if (flow_.active()) {
        flow_started(*r);
    }
    w.in_flight.insert(p.e.id);
    if (r->runs_alone()) {
        w.alone = p.e.id;
    }
    workers_.chosen(w);
    // Every attempt has a lease, timeout or not: a worker that holds a task
    // names it in each HEARTBEAT (see renew), and one that stops doing so
    // (or never answers) loses it within liveness + grace.
    leases_.set(p.e.id, lease_end(*r));
    count("dispatched");

    protocol::work_item item;
    item.id = to_hex(r->id);
    item.handler = r->handler;
    item.payload = std::move(r->payload);
    item.attempt = r->attempts;
    item.timeout_ms = std::min(r->timeout_ms, max_duration_ms);  // a record from before the bound
    item.parent = r->parent;
    item.checkpoint = std::move(r->checkpoint);
    early_dispatch_[w.id].tasks.push_back(std::move(item));
    if (log_.should_log(spdlog::level::debug)) {
        log_.debug("task={} dispatched worker={} attempt={}", to_hex(p.e.id), w.id, r->attempts);
    }
    return true;
}

// A worker starts tasks in the order it receives them: number them in the
// order they are sent (remove_worker relies on it).
void engine::number_sent(const protocol::dispatch& d) {
    for (const auto& item : d.tasks) {
        auto id = parse_task_id(item.id);  // written by start_attempt from a task_id
        if (auto it = id ? running_.find(*id) : running_.end(); it != running_.end()) {
            it->second.order = ++dispatch_order_;
        }
    }
}

// One DISPATCH per worker, or more, in order, when the tasks would not fit
// in one message (start_attempt let through only tasks that fit alone).
std::vector<out_message> engine::take_early() {
    for (auto& [worker_id, all] : early_dispatch_) {
        std::size_t bytes = envelope_bound;
        protocol::dispatch d;
        for (auto& item : all.tasks) {
            auto size = size_bound(item);
            if (!d.tasks.empty() && bytes + size > out_max_body_) {
                send_dispatch(worker_id, d);
                bytes = envelope_bound;
            }
            bytes += size;
            d.tasks.push_back(std::move(item));
        }
        send_dispatch(worker_id, d);
    }
    early_dispatch_.clear();
    return std::exchange(early_, {});
}

void engine::send_dispatch(const std::string& worker_id, protocol::dispatch& d) {
    number_sent(d);
    early_.push_back({target::backend, worker_id, std::string(protocol::cmd::dispatch), protocol::encode(d)});
    d.tasks.clear();
}

std::size_t engine::dispatch_size(const task_record& r) const {
    protocol::work_item probe;  // the fields that vary; payload and checkpoint by size only
    probe.id = to_hex(r.id);
    probe.handler = r.handler;
    probe.parent = r.parent;
    return envelope_bound + size_bound(probe) + r.payload.size() + (r.checkpoint ? r.checkpoint->size() + 5 : 0);
}

}  // namespace taskmill::broker
