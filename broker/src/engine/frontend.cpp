// Client commands (frontend ROUTER), found by name in client_commands().
// Every request gets exactly one reply, named like the request; a frame
// that cannot be parsed, or an unknown command, gets ERROR. Replies are
// queued and sent after the commit.
#include <algorithm>

#include "engine/engine.hpp"
#include "model/message_size.hpp"

namespace taskmill::broker {

namespace {
constexpr int64_t max_wait_ms = 5 * 60 * 1000;
}  // namespace

void engine::on_frontend(const protocol::incoming& in) {
    const auto& peer = in.peer;
    const auto& msg = in.msg;
    if (!msg) {
        reply_error(peer, protocol::cmd::error, in.req, msg.error().code, msg.error().message);
        return;
    }
    const auto& cmd = msg->command;
    auto rq = protocol::decode_request(msg->body);
    if (!rq) {
        // The body's req may still read (a wrong type elsewhere): the error
        // then answers the request instead of leaving it to time out.
        warn_malformed(peer, cmd, rq.error().message);
        reply_error(peer, protocol::cmd::error, protocol::peek_req(msg->body).value_or(0), rq.error().code,
                    rq.error().message);
        return;
    }
    auto handler = client_command_of(cmd);
    if (handler == nullptr) {
        reply_error(peer, protocol::cmd::error, rq->req, errc::invalid_argument, "unknown command " + cmd);
        return;
    }
    (this->*handler)(peer, *rq);
}

engine::client_command engine::client_command_of(std::string_view name) {
    for (const auto* table : {&client_commands(), &ops_commands()}) {
        if (auto it = table->find(name); it != table->end()) {
            return it->second;
        }
    }
    return nullptr;
}

// Workflow listing and schedule control.
const std::unordered_map<std::string_view, engine::client_command>& engine::ops_commands() {
    namespace cmd = protocol::cmd;
    static const std::unordered_map<std::string_view, client_command> table = {
        {cmd::workflows, &engine::workflows_cmd},
        {cmd::schedule_trigger, &engine::schedule_trigger_cmd},
        {cmd::schedule_pause, &engine::schedule_pause_cmd},
        {cmd::schedule_resume, &engine::schedule_resume_cmd},
    };
    return table;
}

const std::unordered_map<std::string_view, engine::client_command>& engine::client_commands() {
    namespace cmd = protocol::cmd;
    static const std::unordered_map<std::string_view, client_command> table = {
        {cmd::submit, &engine::submit_cmd},       {cmd::status, &engine::status},
        {cmd::cancel, &engine::cancel_cmd},       {cmd::retry, &engine::retry_cmd},
        {cmd::tasks, &engine::tasks_cmd},         {cmd::stats, &engine::stats_cmd},
        {cmd::workers, &engine::workers_cmd},     {cmd::ping, &engine::ping_cmd},
        {cmd::wf_submit, &engine::wf_submit_cmd}, {cmd::wf_status, &engine::wf_status_cmd},
        {cmd::wf_cancel, &engine::wf_cancel_cmd}, {cmd::schedules, &engine::schedules_cmd},
        {cmd::queues, &engine::queues_cmd},       {cmd::pause, &engine::pause_cmd},
        {cmd::resume, &engine::resume_cmd},       {cmd::limit, &engine::limit_cmd},
        {cmd::purge, &engine::purge_cmd},         {cmd::remove, &engine::delete_cmd},
        {cmd::run_now, &engine::run_now_cmd},     {cmd::job, &engine::job_cmd},
    };
    return table;
}

void engine::ping_cmd(const std::string& peer, const protocol::request& rq) {
    protocol::reply rep;
    rep.req = rq.req;
    reply_front(peer, protocol::cmd::ping, rep);
}

void engine::submit_cmd(const std::string& peer, const protocol::request& rq) {
    if (auto ok = validate_batch(rq.tasks, limits_, now_); !ok) {
        reply_error(peer, protocol::cmd::submit, rq.req, ok.error().code, ok.error().message);
        return;
    }
    if (auto why = new_work_refused()) {
        reply_error(peer, protocol::cmd::submit, rq.req, errc::unavailable, *why);
        return;
    }
    protocol::reply rep;
    rep.req = rq.req;
    if (!guard_submit(peer, rq, rep)) {
        return;
    }
    for (const auto& spec : rq.tasks) {
        if (!spec.key.empty()) {
            if (auto existing = txn_->get(table::keys, spec.key); existing && existing->size() == 16) {
                rep.ids.push_back(to_hex(*id_from_bytes(*existing)));
                rep.note = "idempotency key seen before: returned the existing task id";
                count("duplicate_submits");
                continue;
            }
        }
        auto r = create(spec, peer);
        if (!spec.key.empty()) {
            check(txn_->put(table::keys, spec.key, id_bytes(r->id)), "put key");
        }
        if (r->eta_ms > now_) {
            delay(*r, r->eta_ms, task_state::pending);
        } else {
            enqueue(*r);
        }
        count("submitted");
        metrics_.submitted(r->handler);
        rep.ids.push_back(to_hex(r->id));
    }
    reply_front(peer, protocol::cmd::submit, rep);
}

void engine::status(const std::string& peer, const protocol::request& rq) {
    auto id = parse_task_id(rq.id);
    if (!id) {
        reply_error(peer, protocol::cmd::status, rq.req, id.error().code, id.error().message);
        return;
    }
    auto r = lookup(*id);
    if (!r) {
        reply_error(peer, protocol::cmd::status, rq.req, r.error().code,
                    r.error().code == errc::not_found ? "no task " + rq.id : r.error().message);
        return;
    }
    if (is_final(r->state) || rq.wait_ms <= 0) {
        protocol::reply rep;
        rep.req = rq.req;
        rep.task = to_status_info(*r);
        fit_alone(*rep.task, out_max_body_);
        reply_front(peer, protocol::cmd::status, rep);
        return;
    }
    // Parked until answer_waiters() or fire_waiters() answers it.
    if (auto parked = waiters_.park(peer, rq.req, *id, now_ + std::min(rq.wait_ms, max_wait_ms)); !parked) {
        reply_error(peer, protocol::cmd::status, rq.req, parked.error().code, parked.error().message);
    }
}

void engine::cancel_cmd(const std::string& peer, const protocol::request& rq) {
    protocol::reply rep;
    rep.req = rq.req;
    if (!rq.id.empty()) {
        auto id = parse_task_id(rq.id);
        if (!id) {
            reply_error(peer, protocol::cmd::cancel, rq.req, id.error().code, id.error().message);
            return;
        }
        auto r = lookup(*id);
        if (!r) {
            reply_error(peer, protocol::cmd::cancel, rq.req, r.error().code,
                        r.error().code == errc::not_found ? "no task " + rq.id : r.error().message);
            return;
        }
        cancel(*r, rep);
    } else {
        cancel_filter(peer, rq);  // a tag or other filters: jobs/job_commands.cpp
        return;
    }
    reply_front(peer, protocol::cmd::cancel, rep);
}

void engine::retry_cmd(const std::string& peer, const protocol::request& rq) {
    if (rq.id.empty()) {
        retry_filter(peer, rq);
        return;
    }
    auto id = parse_task_id(rq.id);
    if (!id) {
        reply_error(peer, protocol::cmd::retry, rq.req, id.error().code, id.error().message);
        return;
    }
    auto r = lookup(*id);
    if (!r) {
        reply_error(peer, protocol::cmd::retry, rq.req, r.error().code,
                    r.error().code == errc::not_found ? "no task " + rq.id : r.error().message);
        return;
    }
    if (r->state != task_state::failed && r->state != task_state::cancelled && r->state != task_state::expired) {
        reply_error(
            peer, protocol::cmd::retry, rq.req, errc::conflict,
            "task is " + std::string(to_string(r->state)) + "; only FAILED, CANCELLED or EXPIRED tasks can be retried");
        return;
    }
    if (auto why = new_work_refused()) {
        reply_error(peer, protocol::cmd::retry, rq.req, errc::unavailable, *why);
        return;
    }
    restart_task(*r);
    protocol::reply rep;
    rep.req = rq.req;
    rep.ids.push_back(to_hex(r->id));
    reply_front(peer, protocol::cmd::retry, rep);
}

void engine::stats_cmd(const std::string& peer, const protocol::request& rq) {
    protocol::stats_info s;
    for (const auto& entry : counters_.per_queue()) {
        // Not a structured binding: clang 14 (the fuzz build) cannot
        // capture one in the lambda below.
        const auto& queue = entry.first;
        const auto& states = entry.second;
        protocol::queue_stats q;
        q.name = queue;
        auto get = [&](task_state st) {
            auto it = states.find(st);
            return it == states.end() ? uint64_t{0} : it->second;
        };
        q.ready = get(task_state::queued);
        q.delayed = get(task_state::pending) + get(task_state::retrying);
        q.running = get(task_state::running);
        add_flow(q);
        s.queues.push_back(q);
        for (const auto& [st, n] : states) {
            s.states[std::string(to_string(st))] += n;
        }
    }
    s.counters = counters_.counters();
    s.workers = static_cast<uint32_t>(workers_.size());
    s.slots = workers_.total_concurrency();
    s.busy = workers_.total_busy();
    s.uptime_ms = now_ - started_ms_;
    s.handlers = handler_views();
    s.prefetch = workers_.total_prefetch();
    s.running = workers_.total_running();
    protocol::reply rep;
    rep.req = rq.req;
    rep.stats = std::move(s);
    reply_front(peer, protocol::cmd::stats, rep);
}

void engine::workers_cmd(const std::string& peer, const protocol::request& rq) {
    protocol::reply rep;
    rep.req = rq.req;
    for (const auto& [id, w] : workers_.all()) {
        rep.workers.push_back(w.to_info());
    }
    reply_front(peer, protocol::cmd::workers, rep);
}

}  // namespace taskmill::broker
