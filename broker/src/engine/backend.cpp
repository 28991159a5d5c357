// Worker and supervisor commands (backend ROUTER), found by name in
// peer_commands() (any peer) and worker_commands() (registered workers).
#include "engine/engine.hpp"

#include <algorithm>
#include <set>
#include <unordered_set>

namespace taskmill::broker {

namespace {
constexpr uint32_t max_slots = 100000;
}

void engine::send_back(const std::string& peer, std::string_view command, const protocol::control& c) {
    out_.messages.push_back({target::backend, peer, std::string(command), protocol::encode(c)});
}

void engine::warn_malformed(std::string_view peer, std::string_view what, const std::string& why) {
    report_malformed();
    if (malformed_log_.admit()) {
        log_.warn("peer={} malformed {}: {}", protocol::printable(peer), what, protocol::printable(why));
    }
}

void engine::report_malformed() {
    if (auto n = malformed_log_.take_summary()) {
        log_.warn("malformed messages from peers: {} more in the last interval (answered, not logged)", n);
    }
}

void engine::send_error(const std::string& peer, std::string_view command, uint64_t req, const std::string& error) {
    protocol::control c;
    c.req = req;
    c.ok = false;
    c.error = error;
    send_back(peer, command, c);
}

void engine::on_backend(const protocol::incoming& in) {
    const auto& peer = in.peer;
    const auto& msg = in.msg;
    if (!msg) {
        warn_malformed(peer, "backend message", msg.error().message);
        // A CHECKPOINT or SPAWN (e.g. over the body limit) is answered as
        // itself: the worker's call waiting for that reply ends now.
        bool call = in.command == protocol::cmd::checkpoint || in.command == protocol::cmd::spawn;
        send_error(peer, call ? std::string_view(in.command) : protocol::cmd::error, in.req, msg.error().message);
        return;
    }
    const auto& cmd = msg->command;
    if (auto any = peer_commands().find(cmd); any != peer_commands().end()) {
        (this->*any->second)(in, *msg);
        return;
    }
    worker* w = workers_.find(peer);
    if (w == nullptr) {
        // Typically a worker of a previous broker life: it says HELLO again.
        send_back(peer, protocol::cmd::unknown, protocol::control{});
        return;
    }
    w->last_seen_ms = now_;
    if (auto mine = worker_commands().find(cmd); mine != worker_commands().end()) {
        (this->*mine->second)(*w, *msg);
        return;
    }
    send_error(peer, protocol::cmd::error, 0, "unknown command " + cmd);
}

const std::unordered_map<std::string_view, engine::peer_command>& engine::peer_commands() {
    namespace cmd = protocol::cmd;
    static const std::unordered_map<std::string_view, peer_command> table = {
        {cmd::hello, &engine::hello},
        {cmd::dead, &engine::dead},
        {cmd::plugins, &engine::plugins_changed},
    };
    return table;
}

const std::unordered_map<std::string_view, engine::worker_command>& engine::worker_commands() {
    namespace cmd = protocol::cmd;
    static const std::unordered_map<std::string_view, worker_command> table = {
        {cmd::heartbeat, &engine::heartbeat}, {cmd::results, &engine::results},
        {cmd::credit, &engine::credit},       {cmd::bye, &engine::bye},
        {cmd::progress, &engine::progress},   {cmd::checkpoint, &engine::checkpoint},
        {cmd::spawn, &engine::spawn},
    };
    return table;
}

void engine::bye(worker& w, const protocol::message&) {
    const std::string id = w.id;  // w goes with the worker
    remove_worker(id, false, "worker said BYE");
    departed_.erase(id);  // it left on its own: a later death is not its tasks' doing
}

void engine::hello(const protocol::incoming& in, const protocol::message& m) {
    const auto& peer = in.peer;
    auto h = protocol::decode_hello(m.body);
    metrics_.hello(h && h->slots <= max_slots);
    if (!h || h->slots > max_slots) {
        protocol::control c;
        c.ok = false;
        c.error = h ? "slots over " + std::to_string(max_slots) : h.error().message;
        send_back(peer, protocol::cmd::error, c);
        return;
    }
    bool known = workers_.find(peer) != nullptr;
    for (const auto& id : workers_.upsert(peer, *h, now_)) {
        lost(id, blame::none, "worker re-registered");
    }
    auto& w = *workers_.find(peer);
    w.user_id = in.user_id;
    const std::size_t kept = keep_held(w, h->held);
    remember_offers(h->handlers);
    for (const auto& hi : h->handlers) {
        if (auto entry = defaults_.learn(hi)) {
            check(txn_->put(table::meta, entry->first, entry->second), "put handler defaults");
        }
    }
    protocol::welcome wel{cfg_.heartbeat_ms, cfg_.liveness_ms};
    early_.push_back({target::backend, peer, std::string(protocol::cmd::welcome), protocol::encode(wel)});
    if (!known) {
        log_.info("worker={} joined slots={} handlers={} generation={} held={} kept={}", protocol::printable(peer),
                  h->slots, h->handlers.size(), h->generation, h->held.size(), kept);
        emit_worker("worker.joined", peer);
    }
}

void engine::remove_worker(const std::string& id, bool crashed, const std::string& why,
                           const std::vector<std::string>* running) {
    const worker* w = workers_.find(id);
    if (w == nullptr) {
        return;
    }
    uint32_t concurrency = w->info.slots > w->info.prefetch ? w->info.slots - w->info.prefetch : w->info.slots;
    std::vector<task_id> held(w->in_flight.begin(), w->in_flight.end());
    auto order_of = [&](const task_id& t) {
        auto it = running_.find(t);
        return it == running_.end() ? 0 : it->second.order;
    };
    std::sort(held.begin(), held.end(), [&](const task_id& a, const task_id& b) { return order_of(a) < order_of(b); });
    if (!crashed) {
        remember_departure(*w, held, concurrency);
    }
    remember_offers(w->info.handlers);  // offered until now
    workers_.remove(id);
    log_.info("worker={} left reason=\"{}\" requeued={}", protocol::printable(id), protocol::printable(why),
              held.size());
    emit_worker("worker.left", id);
    auto blames = crashed ? blame_crash(held, concurrency, running) : std::vector<blame>(held.size(), blame::none);
    for (std::size_t i = 0; i < held.size(); ++i) {
        lost(held[i], blames[i], why);
    }
}

// Only the supervisor a worker named in its HELLO may report it dead, and,
// with CURVE, only over a connection authenticated with the worker's own
// key: a DEAD from anyone else would let any backend peer requeue (and,
// repeated, fail as poison) the tasks of a healthy worker. A routing id
// alone could be taken by another peer once the supervisor disconnects;
// the key cannot. A worker that named no supervisor leaves by BYE or
// silence only.
void engine::dead(const protocol::incoming& in, const protocol::message& m) {
    const auto& peer = in.peer;
    auto c = protocol::decode_control(m.body);
    if (!c) {
        warn_malformed("backend", "DEAD", c.error().message);
        return;
    }
    std::vector<std::string> refused;
    for (const auto& id : c->ids) {
        const worker* w = workers_.find(id);
        if (w == nullptr) {
            // Already gone (BYE, an earlier DEAD), or removed as unroutable
            // or silent just before this report: then its crash still counts.
            charge_departed(in, id, c->running ? &*c->running : nullptr);
            continue;
        }
        if (w->info.supervisor.empty() || w->info.supervisor != peer || w->user_id != in.user_id) {
            refused.push_back(id);
            continue;
        }
        remove_worker(id, true, "worker died: " + (c->note.empty() ? std::string("no reason given") : c->note),
                      c->running ? &*c->running : nullptr);
    }
    if (!refused.empty()) {
        log_.warn("peer={} DEAD refused for {} worker(s) it does not supervise", protocol::printable(peer),
                  refused.size());
        protocol::control e;
        e.ok = false;
        e.ids = std::move(refused);
        e.error = "DEAD refused: only the supervisor a worker named in its HELLO may report it dead";
        send_back(peer, protocol::cmd::error, e);
    }
}

void engine::results(worker& w, const protocol::message& m) {
    auto rs = protocol::decode_results(m.body);
    if (!rs) {
        warn_malformed(w.id, "RESULTS", rs.error().message);
        send_error(w.id, protocol::cmd::error, 0, rs.error().message);
        return;
    }
    w.results_seq = std::max(w.results_seq, rs->seq);
    for (const auto& o : rs->items) {
        apply_outcome(w, o);
    }
    for (const auto& id : rs->started) {
        started(w, id);
    }
}

// A slot of `w` began the task (it may have waited in the worker's prefetch
// queue since its DISPATCH): its lease counts from now, and should the
// worker die, the crash is charged to it.
void engine::started(worker& w, const std::string& hex) {
    auto id = parse_task_id(hex);
    auto it = id ? running_.find(*id) : running_.end();
    if (it == running_.end() || it->second.worker != w.id) {
        return;
    }
    if (!it->second.started && w.in_flight.count(*id) > 0) {
        ++w.running;
    }
    it->second.started = true;
    auto& r = it->second.record;
    // In memory only: the store keeps a running task as QUEUED, for which
    // the start of a lost attempt means nothing; the final save records it.
    r.started_ms = now_;
    leases_.set(*id, lease_end(r));
}

// HEARTBEAT `ids`: every task the worker holds, queued or running. Each
// renews its lease; an attempt the broker gave up on that is no longer
// named is over, and its slot is free again. `rss_bytes`: its memory.
void engine::heartbeat(worker& w, const protocol::message& m) {
    auto c = protocol::decode_control(m.body);
    if (!c) {
        return;  // still a sign of life
    }
    if (c->rss_bytes) {
        w.rss_bytes = *c->rss_bytes;
    }
    std::unordered_set<task_id, task_id_hash> named;
    for (const auto& hex : c->ids) {
        if (auto id = parse_task_id(hex)) {
            named.insert(*id);
            renew(w, *id);
        }
    }
    std::erase_if(w.stale, [&](const auto& s) { return named.count(s.first) == 0; });
}

// The worker showed it still holds `id`: a task without a timeout, or one
// still waiting for a slot, keeps its lease. A started task with a timeout
// is bounded by that timeout alone.
void engine::renew(worker& w, const task_id& id) {
    auto it = running_.find(id);
    if (it == running_.end() || it->second.worker != w.id) {
        return;
    }
    if (it->second.record.timeout_ms > 0 && it->second.started) {
        return;
    }
    leases_.set(id, lease_end(it->second.record));
}

// A worker that joins holding tasks (it followed a cluster's leader to this
// broker) keeps those whose attempt is still the one due: each is taken out
// of the queue as running on `w`, with a fresh lease, so it is not run twice.
std::size_t engine::keep_held(worker& w, const std::vector<protocol::held_task>& held) {
    std::size_t kept = 0;
    for (const auto& t : held) {
        auto id = parse_task_id(t.id);
        if (!id || running_.count(*id) != 0 || !adopt(w, *id, t.attempt)) {
            continue;
        }
        auto& run = running_.at(*id);
        run.started = false;  // whether it started is the worker's to know: the lease decides
        leases_.set(*id, lease_end(run.record));
        count("kept_on_rejoin");
        ++kept;
    }
    return kept;
}

// After a broker restart the store has a task that was running as QUEUED,
// its lost attempt being the next one. A worker that resends that attempt's
// outcome (it finished while the broker was away) spares a second run: the
// task is taken out of the queue as running on `w`, and the outcome applies.
bool engine::adopt(worker& w, const task_id& id, uint32_t attempt) {
    auto r = load(id);
    if (!r || r->state != task_state::queued || attempt == 0 || r->attempts + 1 != attempt) {
        return false;
    }
    unqueue(*r);
    r->attempts = attempt;
    r->worker = w.id;
    if (r->started_ms == 0) {
        r->started_ms = now_;
    }
    set_state(*r, task_state::running);
    running_[id] = run_info{w.id, attempt, true, ++dispatch_order_, *r};
    if (flow_.active()) {
        flow_.add_running(r->queue, handler_name_of(r->handler));
    }
    if (w.in_flight.insert(id).second) {
        ++w.running;
    }
    return true;
}

// First result wins: only the worker the task is currently running on may
// finish it; anything else is a late duplicate. An earlier attempt from that
// same worker counts: a worker runs one copy per task id and ignores a second
// DISPATCH of a task it is still running (e.g. requeued by a broker restart),
// so its result is the one the current attempt is waiting for.
void engine::apply_outcome(worker& w, const protocol::outcome& o) {
    auto id = parse_task_id(o.id);
    if (auto s = id ? w.stale.find(*id) : w.stale.end();
        s != w.stale.end() && (o.attempt == 0 || o.attempt <= s->second)) {
        // The end of an attempt whose lease ran out: too late to count, but
        // its slot is free now.
        w.stale.erase(s);
        count("duplicates");
        log_.debug("task={} late result of an expired attempt from worker={} attempt={}", o.id, w.id, o.attempt);
        return;
    }
    auto it = id ? running_.find(*id) : running_.end();
    if (it == running_.end() && id && adopt(w, *id, o.attempt)) {
        count("results_after_restart");
        it = running_.find(*id);
    }
    if (it == running_.end() || it->second.worker != w.id || (o.attempt != 0 && o.attempt > it->second.attempt)) {
        count("duplicates");
        log_.debug("task={} late or duplicate result from worker={} attempt={}", protocol::printable(o.id),
                   protocol::printable(w.id), o.attempt);
        return;
    }
    std::optional<task_record> r = std::move(it->second.record);  // stop_running() drops the entry
    if (r->state != task_state::running) {
        if (flow_.active()) {
            flow_stopped(*r);
        }
        w.release(*id, it->second.started);
        running_.erase(it);
        return;
    }
    stop_running(*r);
    r->version = o.version;
    r->error_code = o.status == "ok" ? std::nullopt : o.error_code;
    end_attempt(*r, attempt_outcome(o.status), o.error, r->error_code, o.version);
    if (o.status == "ok") {
        // A result is msgpack bytes or absent: no bytes means none set.
        if (o.result.empty()) {
            r->result.reset();
        } else {
            r->result = o.result;
        }
    }
    outcome_run_us_ = o.run_us;  // for the run-time histogram (run_seconds)
    if (r->cancel_requested) {
        finish(*r, task_state::cancelled,
               o.status == "cancelled" ? "cancelled" : "cancelled (attempt ended: " + o.status + ")");
    } else if (o.status == "ok") {
        r->error.clear();
        finish(*r, task_state::succeeded, "");
    } else if (o.status == "retry") {
        retry_or_fail(*r, o.error.empty() ? "handler asked for a retry" : o.error, o.retry_after_ms);
    } else if (o.status == "timeout") {
        count("timeouts");
        retry_or_fail(*r, "timeout" + (o.error.empty() ? std::string() : ": " + o.error), std::nullopt);
    } else if (o.status == "cancelled") {
        finish(*r, task_state::cancelled, o.error.empty() ? "cancelled" : o.error);
    } else if (o.status == "fail") {
        finish(*r, task_state::failed, o.error.empty() ? "failed" : o.error);
    } else {
        finish(*r, task_state::failed, "worker reported unknown status '" + o.status + "'");
    }
    outcome_run_us_.reset();
}

// A host's plugin set was reloaded or a change refused: logged and
// published as plugin.reloaded / plugin.refused.
void engine::plugins_changed(const protocol::incoming&, const protocol::message& m) {
    auto c = protocol::decode_control(m.body);
    if (!c || (c->note != "reloaded" && c->note != "refused")) {
        warn_malformed("backend", "PLUGINS", c ? "note must be reloaded or refused" : c.error().message);
        return;
    }
    if (c->note == "refused") {
        log_.warn("host={} refused a plugin change: {}", protocol::printable(c->id),
                  protocol::printable(c->error, 1024));
    } else {
        log_.info("host={} reloaded its plugins generation={} files={}", protocol::printable(c->id), c->slots,
                  c->ids.size());
    }
    events_.emit("plugin." + c->note, [&](event& e) {
        e.add("host", c->id).add("generation", c->slots).add("files", c->ids).add("error", c->error);
    });
}

void engine::credit(worker& w, const protocol::message& m) {
    auto c = protocol::decode_control(m.body);
    if (!c || c->slots > max_slots) {
        auto why = c ? "CREDIT: slots over " + std::to_string(max_slots) : c.error().message;
        warn_malformed(w.id, "CREDIT", why);
        send_error(w.id, protocol::cmd::error, 0, why);
        return;
    }
    w.slots = c->slots;
    // The ack tells the worker that every DISPATCH sent before it is already
    // on its way (one connection keeps order): a draining worker runs those
    // and only then says BYE, so nothing is bounced back to the queue.
    protocol::control ack;
    ack.slots = w.slots;
    send_back(w.id, protocol::cmd::credit, ack);
}

void engine::progress(worker& w, const protocol::message& m) {
    auto c = protocol::decode_control(m.body);
    if (!c) {
        warn_malformed(w.id, "PROGRESS", c.error().message);
        send_error(w.id, protocol::cmd::error, 0, c.error().message);
        return;
    }
    // A report for a task that is no longer running here is a race, not an
    // error: the task ended or moved on since the worker sent it.
    auto id = parse_task_id(c->id);
    if (id) {
        renew(w, *id);
    }
    auto r = id ? load(*id) : std::nullopt;
    if (!r || r->state != task_state::running) {
        return;
    }
    r->progress_fraction = std::clamp(c->fraction, 0.0, 1.0);
    r->progress_note = c->note.substr(0, 1024);
    save(*r);
}

void engine::checkpoint(worker& w, const protocol::message& m) {
    const auto& peer = w.id;
    auto c = protocol::decode_control(m.body);
    protocol::control rep;
    auto id = c ? parse_task_id(c->id) : result<task_id>(fail(errc::invalid_argument, c.error().message));
    if (id) {
        renew(w, *id);
    }
    auto r = id ? load(*id) : std::nullopt;
    rep.req = c ? c->req : protocol::peek_req(m.body).value_or(0);
    if (!r || r->state != task_state::running) {
        rep.ok = false;
        rep.error = !c ? c.error().message : (r ? "task is " + std::string(to_string(r->state)) : "no task " + c->id);
    } else if (c->data.size() > cfg_.max_body_bytes) {
        rep.ok = false;
        rep.error = "checkpoint too large";
    } else {
        r->checkpoint = c->data;
        save(*r);
    }
    send_back(peer, protocol::cmd::checkpoint, rep);  // sent after the commit
}

// A SPAWN is refused as a whole (nothing created) when its parent is not
// running on that worker, a subtask is invalid, or no connected worker
// serves a subtask's handler (which would leave the subtask waiting for
// good). A subtask with a key is created once per parent, across the
// parent's attempts and crashes: the key is the parent's id and the key,
// in the broker's idempotency table, and a repeat gets the existing id.
void engine::spawn(worker& w, const protocol::message& m) {
    auto c = protocol::decode_control(m.body);
    const uint64_t req = c ? c->req : protocol::peek_req(m.body).value_or(0);
    if (!c) {
        refuse_spawn(w.id, req, errc::invalid_argument, c.error().message);
        return;
    }
    auto id = parse_task_id(c->id);
    auto run = id ? running_.find(*id) : running_.end();
    if (run == running_.end() || run->second.worker != w.id) {
        refuse_spawn(w.id, req, errc::conflict, "parent task " + c->id + " is not running on this worker");
        return;
    }
    if (auto valid = validate_batch(c->tasks, limits_, now_); !valid) {
        refuse_spawn(w.id, req, valid.error().code, valid.error().message);
        return;
    }
    for (const auto& spec : c->tasks) {
        if (!runnable(spec.handler)) {
            refuse_spawn(w.id, req, "unknown_handler", "no connected worker serves handler " + spec.handler);
            return;
        }
    }
    if (auto why = new_work_refused()) {
        refuse_spawn(w.id, req, errc::unavailable, *why);
        return;
    }
    task_record parent = run->second.record;
    protocol::control rep;
    rep.req = req;
    for (auto spec : c->tasks) {
        rep.ids.push_back(to_hex(spawn_one(parent, spec, w.id)));
    }
    save(parent);
    send_back(w.id, protocol::cmd::spawn, rep);
}

task_id engine::spawn_one(task_record& parent, protocol::task_spec spec, const std::string& peer) {
    std::string key = spec.key.empty() ? std::string() : spawn_key(parent.id, spec.key);
    if (!key.empty()) {
        if (auto existing = txn_->get(table::keys, key); existing && existing->size() == 16) {
            count("duplicate_spawns");
            return *id_from_bytes(*existing);
        }
    }
    spec.parent = to_hex(parent.id);
    spec.notify = false;
    auto r = create(spec, peer);
    if (!key.empty()) {
        check(txn_->put(table::keys, key, id_bytes(r->id)), "put key");
    }
    if (r->eta_ms > now_) {
        delay(*r, r->eta_ms, task_state::pending);
    } else {
        enqueue(*r);
    }
    count("submitted");
    parent.children.push_back(r->id);
    return r->id;
}

std::string engine::spawn_key(const task_id& parent, const std::string& key) {
    // Client keys cannot start with NUL (validate_batch): no collision.
    return std::string(1, '\0') + "spawn/" + to_hex(parent) + "/" + key;
}

void engine::refuse_spawn(const std::string& peer, uint64_t req, errc code, const std::string& why) {
    refuse_spawn(peer, req, std::string(to_string(code)), why);
}

void engine::refuse_spawn(const std::string& peer, uint64_t req, const std::string& code, const std::string& why) {
    protocol::control rep;
    rep.req = req;
    rep.ok = false;
    rep.error_code = code;
    rep.error = why;
    send_back(peer, protocol::cmd::spawn, rep);
}

}  // namespace taskmill::broker
