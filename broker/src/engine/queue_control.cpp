// Queue control and flow limits: the QUEUES, PAUSE, RESUME and LIMIT
// commands, the settings they keep in the store, and the questions
// dispatch asks before it starts a task (flow/flow_control.hpp).
#include <cmath>
#include <sstream>

#include <taskmill/protocol/rate.hpp>

#include "engine/engine.hpp"

namespace taskmill::broker {

namespace {

std::string rate_text(double rate) {
    std::ostringstream out;
    out << rate;
    return out.str();
}

std::string limits_text(const protocol::flow_limits& l) {
    std::string out = "rate=" + (l.rate > 0 ? rate_text(l.rate) + "/s" : std::string("none"));
    out += " burst=" + (l.rate > 0 ? std::to_string(effective_burst(l)) : std::string("-"));
    out += " max_running=" + (l.max_running > 0 ? std::to_string(l.max_running) : std::string("none"));
    return out;
}

// The queue or handler a LIMIT names, or why it names none.
result<std::pair<flow_kind, std::string>> limit_target(const protocol::request& rq) {
    if (rq.queue.empty() == rq.handler.empty()) {
        return fail(errc::invalid_argument, "LIMIT needs a queue or a handler (one of them)");
    }
    if (!rq.queue.empty()) {
        if (!valid_queue_name(rq.queue)) {
            return fail(errc::invalid_argument, "bad queue name '" + rq.queue + "'");
        }
        return std::pair{flow_kind::queue, rq.queue};
    }
    auto ref = parse_handler(rq.handler);
    if (!ref || !ref->version.empty()) {
        return fail(errc::invalid_argument,
                    "bad handler name '" + rq.handler + "': a limit names a handler as ns.name, without a version");
    }
    return std::pair{flow_kind::handler, rq.handler};
}

result<void> check_limits(const protocol::request& rq) {
    if (!rq.rate && !rq.burst && !rq.max_running) {
        return fail(errc::invalid_argument, "LIMIT changes nothing: give rate, burst or max_running");
    }
    if (rq.rate && (!std::isfinite(*rq.rate) || *rq.rate < 0 || *rq.rate > protocol::max_rate)) {
        return fail(errc::invalid_argument, "rate must be a number of tasks per second from 0 (no limit) to 1e9");
    }
    return {};
}

}  // namespace

void engine::queues_cmd(const std::string& peer, const protocol::request& rq) {
    std::set<std::string> names;
    for (const auto& [queue, states] : counters_.per_queue()) {
        names.insert(queue);
    }
    for (const auto& queue : flow_.named(flow_kind::queue)) {
        names.insert(queue);
    }
    protocol::reply rep;
    rep.req = rq.req;
    for (const auto& queue : names) {
        rep.queues.push_back(queue_view(queue));
    }
    reply_front(peer, protocol::cmd::queues, rep);
}

void engine::set_paused(const std::string& peer, const protocol::request& rq, bool paused) {
    const auto command = paused ? protocol::cmd::pause : protocol::cmd::resume;
    if (!valid_queue_name(rq.queue)) {
        reply_error(peer, command, rq.req, errc::invalid_argument,
                    rq.queue.empty() ? std::string(command) + " needs a queue" : "bad queue name '" + rq.queue + "'");
        return;
    }
    protocol::reply rep;
    rep.req = rq.req;
    if (flow_.paused(rq.queue) == paused) {
        rep.note = "queue " + rq.queue + (paused ? " was paused already" : " was not paused");
    } else {
        auto s =
            flow_.settings(flow_kind::queue, rq.queue) ? *flow_.settings(flow_kind::queue, rq.queue) : flow_settings{};
        s.paused = paused ? std::optional(true) : std::nullopt;
        save_flow(flow_kind::queue, rq.queue, s);
        log_.info("queue={} {}", rq.queue, paused ? "paused" : "resumed");
        events_.emit(paused ? "queue.paused" : "queue.resumed", [&](event& e) { e.add("queue", rq.queue); });
    }
    rep.queues.push_back(queue_view(rq.queue));
    reply_front(peer, command, rep);
}

void engine::limit_cmd(const std::string& peer, const protocol::request& rq) {
    auto target = limit_target(rq);
    auto ok = target ? check_limits(rq) : result<void>(fail(target.error().code, target.error().message));
    if (!ok) {
        reply_error(peer, protocol::cmd::limit, rq.req, ok.error().code, ok.error().message);
        return;
    }
    // Not a structured binding: clang 14 cannot capture one in a lambda.
    const flow_kind kind = target->first;
    const std::string& name = target->second;
    auto s = flow_.settings(kind, name) ? *flow_.settings(kind, name) : flow_settings{};
    if (rq.rate) {
        s.rate = rq.rate;
    }
    if (rq.burst) {
        s.burst = rq.burst;
    }
    if (rq.max_running) {
        s.max_running = rq.max_running;
    }
    save_flow(kind, name, s);
    const auto l = flow_.limits(kind, name);
    const char* what = kind == flow_kind::queue ? "queue" : "handler";
    log_.info("{}={} limits {}", what, name, limits_text(l));
    events_.emit(std::string(what) + ".limits", [&](event& e) {
        e.add(what, name)
            .add("rate", rate_text(l.rate))
            .add("burst", l.rate > 0 ? effective_burst(l) : uint32_t{0})
            .add("max_running", l.max_running);
    });
    protocol::reply rep;
    rep.req = rq.req;
    rep.note = std::string(what) + " " + name + ": " + limits_text(l);
    if (kind == flow_kind::queue) {
        rep.queues.push_back(queue_view(name));
    } else {
        rep.stats.emplace();
        rep.stats->handlers.push_back({name, flow_.running(kind, name), l});
    }
    reply_front(peer, protocol::cmd::limit, rep);
}

void engine::save_flow(flow_kind k, const std::string& name, const flow_settings& s) {
    const auto key = settings_key(k, name);
    if (s.empty()) {
        check(txn_->erase(table::settings, key), "erase settings");
    } else {
        check(txn_->put(table::settings, key, encode_settings(s)), "put settings");
    }
    flow_.set(k, name, s);
    apply_flow();
}

void engine::apply_flow() {
    flow_.rebuild();
    for (const auto& [id, run] : running_) {
        flow_.add_running(run.record.queue, handler_name_of(run.record.handler));
    }
}

void engine::recover_flow() {
    check(txn_->scan(table::settings, {}, false,
                     [&](std::string_view k, std::string_view v) {
                         auto target = parse_settings_key(k);
                         if (!target) {
                             return true;  // another part's setting
                         }
                         auto s = decode_settings(v);
                         if (!s) {
                             log_.error("setting {} ignored: {}", protocol::printable(k), s.error().message);
                             return true;
                         }
                         flow_.set(target->first, target->second, *s);
                         return true;
                     }),
          "scan settings");
    apply_flow();
    for (const auto& queue : flow_.named(flow_kind::queue)) {
        if (flow_.paused(queue)) {
            log_.info("queue={} is paused (RESUME to dispatch its tasks)", queue);
        }
    }
}

bool engine::queue_may_start(const std::string& queue) {
    return flow_.may_start(flow_kind::queue, queue, now_, flow_wake_) == flow_block::none;
}

bool engine::handler_may_start(const std::string& handler) {
    return flow_.may_start(flow_kind::handler, handler, now_, flow_wake_) == flow_block::none;
}

void engine::flow_started(const task_record& r) { flow_.started(r.queue, handler_name_of(r.handler), now_); }

void engine::flow_stopped(const task_record& r) { flow_.stopped(r.queue, handler_name_of(r.handler)); }

protocol::queue_stats engine::queue_view(const std::string& queue) const {
    protocol::queue_stats q;
    q.name = queue;
    if (auto it = counters_.per_queue().find(queue); it != counters_.per_queue().end()) {
        auto get = [&](task_state st) {
            auto n = it->second.find(st);
            return n == it->second.end() ? uint64_t{0} : n->second;
        };
        q.ready = get(task_state::queued);
        q.delayed = get(task_state::pending) + get(task_state::retrying);
        q.running = get(task_state::running);
    }
    add_flow(q);
    return q;
}

void engine::add_flow(protocol::queue_stats& q) const {
    q.paused = flow_.paused(q.name);
    q.limits = flow_.limits(flow_kind::queue, q.name);
}

std::vector<protocol::handler_stats> engine::handler_views() const {
    std::vector<protocol::handler_stats> out;
    for (const auto& name : flow_.named(flow_kind::handler)) {
        auto l = flow_.limits(flow_kind::handler, name);
        if (l.rate > 0 || l.max_running > 0) {
            out.push_back({name, flow_.running(flow_kind::handler, name), l});
        }
    }
    return out;
}

}  // namespace taskmill::broker
