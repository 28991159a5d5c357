// The operator verbs of docs/PROTOCOL.md, "Operating queues": PURGE,
// CANCEL and RETRY by filter, DELETE, RUN_NOW and JOB. Those that may touch
// many tasks start a bulk job (jobs.cpp), whose first slice runs in the
// request's own turn: a small job's reply already says "done".
#include <algorithm>

#include "engine/engine.hpp"
#include "store/keys.hpp"

namespace taskmill::broker {

namespace {

// The most ids one DELETE may name (a job record holds them all).
constexpr std::size_t max_delete_ids = 10000;

bool has_filter(const protocol::request& rq) {
    return !rq.state.empty() || !rq.queue.empty() || !rq.handler.empty() || !rq.tag.empty() || rq.since_ms != 0 ||
           rq.until_ms != 0;
}

// Which states a verb can act on, for the error that names them.
bool state_allowed(job_kind kind, task_state s) {
    switch (kind) {
        case job_kind::cancel: return !is_final(s);
        case job_kind::retry: return s == task_state::failed || s == task_state::cancelled || s == task_state::expired;
        case job_kind::remove: return is_final(s);
        case job_kind::purge: return false;
    }
    return false;
}

std::string_view allowed_states(job_kind kind) {
    switch (kind) {
        case job_kind::cancel: return "PENDING, QUEUED, RUNNING or RETRYING";
        case job_kind::retry: return "FAILED, CANCELLED or EXPIRED";
        default: return "SUCCEEDED, FAILED, CANCELLED or EXPIRED";
    }
}

std::string_view command_of(job_kind kind) {
    switch (kind) {
        case job_kind::purge: return protocol::cmd::purge;
        case job_kind::cancel: return protocol::cmd::cancel;
        case job_kind::retry: return protocol::cmd::retry;
        case job_kind::remove: return protocol::cmd::remove;
    }
    return protocol::cmd::cancel;
}

}  // namespace

result<task_filter> engine::job_filter(const protocol::request& rq, job_kind kind) const {
    const auto command = std::string(command_of(kind));
    task_filter f;
    if (!rq.state.empty()) {
        f.state = parse_task_state(rq.state);
        if (!f.state) {
            return fail(errc::invalid_argument, "unknown state " + rq.state);
        }
        if (!state_allowed(kind, *f.state)) {
            return fail(errc::invalid_argument,
                        command + " applies to " + std::string(allowed_states(kind)) + " tasks, not " + rq.state);
        }
    }
    if (rq.handler.find('@') != std::string::npos) {
        return fail(errc::invalid_argument, "handler filter " + rq.handler + ": give the name without @version");
    }
    if (rq.since_ms < 0 || rq.until_ms < 0) {
        return fail(errc::invalid_argument, "since_ms and until_ms must be unix milliseconds (>= 0)");
    }
    if (rq.since_ms != 0 && rq.until_ms != 0 && rq.since_ms >= rq.until_ms) {
        return fail(errc::invalid_argument, "since_ms must be before until_ms");
    }
    f.queue = rq.queue;
    f.handler = rq.handler;
    f.tag = rq.tag;
    f.since_ms = rq.since_ms;
    f.until_ms = rq.until_ms;
    if (f.empty() && !rq.all) {
        return fail(errc::invalid_argument,
                    command +
                        " without a filter would apply to every task: give a filter (state, queue, handler, "
                        "tag, since_ms, until_ms) or all=true");
    }
    return f;
}

void engine::purge_cmd(const std::string& peer, const protocol::request& rq) {
    if (rq.queue.empty()) {
        reply_error(peer, protocol::cmd::purge, rq.req, errc::invalid_argument, "PURGE needs a queue");
        return;
    }
    bulk_job j;
    j.kind = job_kind::purge;
    j.filter.queue = rq.queue;
    start_job(std::move(j), peer, protocol::cmd::purge, rq.req);
}

void engine::cancel_filter(const std::string& peer, const protocol::request& rq) {
    if (!rq.tag.empty() && !rq.all && rq.state.empty() && rq.queue.empty() && rq.handler.empty() && rq.since_ms == 0 &&
        rq.until_ms == 0) {
        // The tags table lists exactly the unfinished tasks with the tag: a
        // few are cancelled at once, as CANCEL {tag} always did.
        const auto prefix = keys::tag_prefix(rq.tag);
        std::vector<task_id> ids;
        check(txn_->scan(table::tags, prefix, false,
                         [&](std::string_view k, std::string_view) {
                             if (k.substr(0, prefix.size()) != prefix || ids.size() > max_reported_ids) {
                                 return false;
                             }
                             if (auto id = keys::parse_tag_key(k, prefix.size())) {
                                 ids.push_back(*id);
                             }
                             return true;
                         }),
              "scan tags");
        if (ids.size() <= max_reported_ids) {
            protocol::reply rep;
            rep.req = rq.req;
            std::size_t hits = 0;
            for (const auto& id : ids) {
                auto r = load(id);
                if (r && !is_final(r->state) && std::find(r->tags.begin(), r->tags.end(), rq.tag) != r->tags.end()) {
                    cancel(*r, rep);
                    ++hits;
                }
            }
            rep.note = std::to_string(hits) + " unfinished task(s) with tag " + rq.tag;
            reply_front(peer, protocol::cmd::cancel, rep);
            return;
        }
    }
    auto f = job_filter(rq, job_kind::cancel);
    if (!f) {
        reply_error(peer, protocol::cmd::cancel, rq.req, f.error().code,
                    has_filter(rq) || rq.all ? f.error().message : "CANCEL needs an id, a tag or a filter");
        return;
    }
    bulk_job j;
    j.kind = job_kind::cancel;
    j.filter = std::move(*f);
    std::vector<std::string> ids;
    start_job(std::move(j), peer, protocol::cmd::cancel, rq.req, &ids);
}

void engine::retry_filter(const std::string& peer, const protocol::request& rq) {
    auto f = job_filter(rq, job_kind::retry);
    if (!f) {
        reply_error(peer, protocol::cmd::retry, rq.req, f.error().code, f.error().message);
        return;
    }
    if (auto why = new_work_refused()) {
        reply_error(peer, protocol::cmd::retry, rq.req, errc::unavailable, *why);
        return;
    }
    bulk_job j;
    j.kind = job_kind::retry;
    j.filter = std::move(*f);
    std::vector<std::string> ids;
    start_job(std::move(j), peer, protocol::cmd::retry, rq.req, &ids);
}

void engine::delete_cmd(const std::string& peer, const protocol::request& rq) {
    auto refuse = [&](errc code, const std::string& why) {
        reply_error(peer, protocol::cmd::remove, rq.req, code, why);
    };
    std::vector<std::string> named = rq.ids;
    if (!rq.id.empty()) {
        named.push_back(rq.id);
    }
    if (!named.empty() && (has_filter(rq) || rq.all)) {
        refuse(errc::invalid_argument, "DELETE takes ids or a filter, not both");
        return;
    }
    if (named.size() > max_delete_ids) {
        refuse(errc::invalid_argument,
               "DELETE names at most " + std::to_string(max_delete_ids) + " ids; use a filter for more");
        return;
    }
    std::vector<task_id> ids;
    for (const auto& text : named) {
        auto id = parse_task_id(text);
        if (!id) {
            refuse(id.error().code, "DELETE: " + text + ": " + id.error().message);
            return;
        }
        ids.push_back(*id);
    }
    if (ids.size() == 1) {
        auto r = lookup(ids.front());
        if (!r) {
            refuse(r.error().code, r.error().code == errc::not_found ? "no task " + named.front() : r.error().message);
        } else if (!is_final(r->state)) {
            refuse(errc::conflict, "task is " + std::string(to_string(r->state)) +
                                       "; only finished tasks can be deleted (cancel it first)");
        } else if (workflow_step(*r)) {
            refuse(errc::conflict, "task is a step of workflow " + r->parent + "; it goes with its workflow");
        } else {
            erase_task(*r);
            count("deleted");
            log_.info("task={} deleted", named.front());
            protocol::reply rep;
            rep.req = rq.req;
            rep.ids.push_back(to_hex(r->id));
            reply_front(peer, protocol::cmd::remove, rep);
        }
        return;
    }
    bulk_job j;
    j.kind = job_kind::remove;
    if (!ids.empty()) {
        j.ids = std::move(ids);
    } else {
        auto f = job_filter(rq, job_kind::remove);
        if (!f) {
            refuse(f.error().code, f.error().message);
            return;
        }
        j.filter = std::move(*f);
    }
    start_job(std::move(j), peer, protocol::cmd::remove, rq.req);
}

void engine::run_now_cmd(const std::string& peer, const protocol::request& rq) {
    auto id = parse_task_id(rq.id);
    if (!id) {
        reply_error(peer, protocol::cmd::run_now, rq.req, id.error().code, id.error().message);
        return;
    }
    auto r = lookup(*id);
    if (!r) {
        reply_error(peer, protocol::cmd::run_now, rq.req, r.error().code,
                    r.error().code == errc::not_found ? "no task " + rq.id : r.error().message);
        return;
    }
    if (r->state != task_state::pending && r->state != task_state::retrying) {
        reply_error(peer, protocol::cmd::run_now, rq.req, errc::conflict,
                    "task is " + std::string(to_string(r->state)) + "; only a PENDING or RETRYING task can be run now");
        return;
    }
    unqueue(*r);
    r->eta_ms = now_;
    enqueue(*r);
    log_.info("task={} run now", rq.id);
    protocol::reply rep;
    rep.req = rq.req;
    rep.ids.push_back(to_hex(r->id));
    reply_front(peer, protocol::cmd::run_now, rep);
}

void engine::job_cmd(const std::string& peer, const protocol::request& rq) {
    if (rq.job == 0) {
        reply_error(peer, protocol::cmd::job, rq.req, errc::invalid_argument, "JOB needs a job id");
        return;
    }
    protocol::reply rep;
    rep.req = rq.req;
    if (auto it = jobs_.find(rq.job); it != jobs_.end()) {
        rep.job = to_info(it->second);
    } else if (auto stored = txn_->get(table::jobs, job_key(rq.job)); stored) {
        auto j = decode_job(*stored);
        if (!j) {
            reply_error(peer, protocol::cmd::job, rq.req, j.error().code, j.error().message);
            return;
        }
        rep.job = to_info(*j);
    } else {
        reply_error(peer, protocol::cmd::job, rq.req, errc::not_found,
                    "no job " + std::to_string(rq.job) + " (the broker keeps the last " +
                        std::to_string(finished_jobs_kept) + " finished jobs)");
        return;
    }
    reply_front(peer, protocol::cmd::job, rep);
}

}  // namespace taskmill::broker
