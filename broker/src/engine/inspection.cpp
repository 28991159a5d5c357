// Inspection: the attempt history each task record keeps, and the submit
// guard, which warns about (or, strict, refuses) a task that no worker has
// offered to run recently.
#include <algorithm>
#include <set>

#include <taskmill/protocol/duration.hpp>

#include "engine/engine.hpp"

namespace taskmill::broker {

// ---- attempt history ----

namespace {

void keep_last(std::vector<attempt_record>& history) {
    if (history.size() > max_history) {
        history.erase(history.begin(), history.end() - static_cast<std::ptrdiff_t>(max_history));
    }
}

// The version of the plugin that serves `want` on `w`, if it offers one.
std::string version_on(const worker& w, const handler_ref& want) {
    for (const auto& h : w.info.handlers) {
        if (handler_matches(want, h.name, h.version)) {
            return h.version;
        }
    }
    return {};
}

}  // namespace

void engine::begin_attempt(task_record& r, const worker& w, const handler_ref& handler) {
    auto& a = r.history.emplace_back();
    a.attempt = r.attempts;
    a.worker = w.id;
    a.started_ms = now_;
    a.version = version_on(w, handler);
    keep_last(r.history);
}

void engine::end_attempt(task_record& r, std::string_view outcome, const std::string& error,
                         std::optional<int64_t> error_code, const std::string& version) {
    if (r.history.empty() || r.history.back().finished_ms != 0 || r.history.back().attempt != r.attempts) {
        auto& a = r.history.emplace_back();
        a.attempt = r.attempts;
        a.worker = r.worker;
        a.started_ms = r.started_ms;
        keep_last(r.history);
    }
    auto& a = r.history.back();
    a.finished_ms = std::max<int64_t>(now_, 1);
    a.outcome = outcome;
    a.error = error.substr(0, 1024);  // a record carries up to max_history of them
    a.error_code = error_code;
    if (!version.empty()) {
        a.version = version;
    }
}

std::string_view engine::attempt_outcome(const std::string& status) {
    for (std::string_view known : {"ok", "retry", "fail", "timeout", "cancelled"}) {
        if (status == known) {
            return known;
        }
    }
    return "fail";  // an unknown status fails the task (apply_outcome)
}

std::string_view engine::lost_outcome(const task_record& r) const {
    if (r.cancel_requested) {
        return "cancelled";
    }
    if (r.timeout_ms > 0 && r.started_ms > 0 && now_ >= add_ms(r.started_ms, r.timeout_ms)) {
        return "timeout";
    }
    return "lost";
}

// ---- the submit guard ----

void engine::remember_offers(const std::vector<protocol::handler_info>& handlers) {
    for (const auto& h : handlers) {
        if (auto entry = offered_.offered(h.name, h.version, now_)) {
            check(txn_->put(table::meta, entry->first, entry->second), "put handler seen");
        }
    }
}

void engine::recover_handler_memory() {
    const auto prefix = handler_memory::key_prefix;
    check(txn_->scan(table::meta, prefix, false,
                     [&](std::string_view k, std::string_view v) {
                         if (!k.starts_with(prefix)) {
                             return false;  // past the entries
                         }
                         if (!offered_.restore(k, v)) {
                             log_.warn("meta entry {} unreadable: ignored", protocol::printable(k));
                         }
                         return true;
                     }),
          "scan handler memory");
}

std::optional<std::string> engine::unoffered(const std::string& handler) const {
    if (runnable(handler)) {
        return std::nullopt;
    }
    auto ref = parse_handler(handler);  // validated: a bad name was refused before
    if (!ref) {
        return std::nullopt;
    }
    if (auto at = offered_.last_offered(*ref); at && now_ - *at <= cfg_.handler_memory_ms) {
        return std::nullopt;
    }
    std::string why =
        "no worker has offered " + handler + " in the last " + protocol::format_duration_ms(cfg_.handler_memory_ms);
    if (!ref->version.empty() && offered_.known_name(ref->name)) {
        why += " (other versions of " + ref->name + " were offered)";
    }
    return why;
}

std::vector<std::string> engine::unoffered(const std::vector<protocol::task_spec>& tasks) const {
    std::vector<std::string> out;
    const std::string* last = nullptr;  // a batch usually names one handler: compare, no set
    std::set<std::string_view> checked;
    for (const auto& t : tasks) {
        if ((last != nullptr && *last == t.handler) || !checked.insert(t.handler).second) {
            continue;
        }
        last = &t.handler;
        if (auto why = unoffered(t.handler)) {
            out.push_back(std::move(*why));
        }
    }
    return out;
}

bool engine::guard_submit(const std::string& peer, const protocol::request& rq, protocol::reply& rep) {
    auto unknown = unoffered(rq.tasks);
    if (unknown.empty()) {
        return true;
    }
    count("unoffered_submits");
    if (rq.strict) {
        std::string why;
        for (const auto& u : unknown) {
            why += (why.empty() ? "" : "; ") + u;
        }
        reply_error(peer, protocol::cmd::submit, rq.req, errc::unknown_handler, why + " (strict: nothing submitted)");
        return false;
    }
    for (auto& u : unknown) {
        rep.warnings.push_back(std::move(u) + "; the task will wait until one does");
    }
    return true;
}

}  // namespace taskmill::broker
