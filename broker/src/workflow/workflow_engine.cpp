// Workflows run by the broker (see workflow_engine.hpp).
#include "workflow/workflow_engine.hpp"

#include <cctype>
#include <functional>
#include <set>
#include <vector>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>
#include <taskmill/protocol/peer_text.hpp>
#include <taskmill/protocol/wire.hpp>

#include "model/message_size.hpp"
#include "workflow/workflow_json.hpp"

namespace taskmill::broker {
namespace {

using json = nlohmann::json;
namespace cmd = protocol::cmd;

std::string lower(std::string_view name) {
    std::string s(name);
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A step's task id as its JSON shows it: "" before it started.
std::string task_hex(const wf_step& s) { return s.task ? to_hex(*s.task) : std::string(); }

std::string to_msgpack_string(const json& j) { return protocol::json_to_msgpack(j); }

}  // namespace

void workflow_engine::submit(const std::string& peer, const protocol::request& rq) {
    if (!protocol::msgpack_within_nesting(rq.data)) {
        auto e = protocol::nesting_error("WF_SUBMIT data").err;
        ops_.reply_error(peer, cmd::wf_submit, rq.req, e.code, e.message);
        return;
    }
    auto def = json::from_msgpack(rq.data.begin(), rq.data.end(), true, false);
    if (rq.data.empty() || def.is_discarded()) {
        ops_.reply_error(peer, cmd::wf_submit, rq.req, errc::invalid_argument,
                         "WF_SUBMIT needs data: the workflow as a msgpack map");
        return;
    }
    if (auto why = ops_.new_work_refused()) {
        ops_.reply_error(peer, cmd::wf_submit, rq.req, errc::unavailable, *why);
        return;
    }
    // Handlers are known from the connected workers; with none connected the
    // check is left to dispatch time (the steps wait for a worker).
    std::function<bool(const std::string&)> known;
    if (ops_.workers_connected()) {
        known = [this](const std::string& h) { return ops_.runnable(h); };
    }
    auto w = parse_workflow(def, known);
    if (!w) {
        ops_.reply_error(peer, cmd::wf_submit, rq.req, w.error().code, w.error().message);
        return;
    }
    w->id = to_hex(ops_.new_id());
    w->created_ms = ops_.now();
    auto [it, inserted] = running_.emplace(w->id, std::move(*w));
    auto& wf = it->second;
    ops_.count("workflows_submitted");
    log_.info("workflow={} submitted steps={} name={} fail_fast={}", wf.id, wf.steps.size(),
              protocol::printable(wf.name), wf.fail_fast);
    emit(wf, "workflow.started", nullptr);
    start_ready(wf);
    save(wf);
    protocol::reply rep;
    rep.req = rq.req;
    rep.ids.push_back(wf.id);
    if (!ops_.workers_connected()) {
        rep.note = "no worker connected: handlers not checked";
        warn_unoffered(wf, rep);
    }
    ops_.reply(peer, cmd::wf_submit, rep);
}

// With no worker connected, the steps' handlers are checked against the
// handlers workers offered recently (the submit guard) instead.
void workflow_engine::warn_unoffered(const workflow& w, protocol::reply& rep) {
    std::set<std::string> seen;
    for (const auto& s : w.steps) {
        if (seen.insert(s.handler).second) {
            if (auto why = ops_.unoffered(s.handler)) {
                rep.warnings.push_back(*why + "; the step will wait until one does");
            }
        }
    }
}

void workflow_engine::start_ready(workflow& w) {
    if (w.state != workflow_state::running || w.cancel_requested) {
        return;
    }
    for (auto i : ready_steps(w)) {
        auto& s = w.steps[i];
        std::map<std::string, std::string> results;
        for (auto d : s.deps) {
            const auto& id = w.steps[d].task;
            auto r = id ? ops_.find(*id) : std::nullopt;
            if (r && r->result) results[w.steps[d].name] = *r->result;
        }
        protocol::task_spec spec;
        spec.handler = s.handler;
        spec.payload = step_payload(w, i, results);
        spec.queue = s.queue;
        spec.priority = s.priority;
        spec.retries = s.retries;
        spec.timeout_ms = s.timeout_ms;
        spec.parent = w.id;
        spec.tags = {"workflow:" + w.id, "step:" + s.name};
        auto r = ops_.submit(spec);
        s.task = r.id;
        s.state = step_state::queued;
        log_.info("task={} workflow={} step={} started", to_hex(r.id), w.id, protocol::printable(s.name));
        emit(w, "workflow.step", &s);
    }
}

void workflow_engine::on_task_final(const task_record& r) {
    if (r.parent.empty()) {
        return;
    }
    auto it = running_.find(r.parent);
    if (it == running_.end()) {
        return;
    }
    auto& w = it->second;
    wf_step* step = nullptr;
    for (auto& s : w.steps) {
        if (s.task == r.id) step = &s;
    }
    if (step == nullptr || step_final(step->state)) {
        return;  // e.g. a step this workflow already cancelled, or a retried step task
    }
    step->state = step_state_of(r.state);
    step->error = r.error;
    emit(w, "workflow.step", step);
    if (step_unsuccessful(step->state) && w.fail_fast) {
        fail_fast(w);
    }
    for (auto i : skip_blocked(w)) {
        emit(w, "workflow.step", &w.steps[i]);
    }
    start_ready(w);
    settle(w);
}

// Fail fast: every step that has not started is cancelled; running ones
// finish on their own (their results are kept).
void workflow_engine::fail_fast(workflow& w) {
    for (auto& s : w.steps) {
        if (s.state == step_state::waiting) {
            s.state = step_state::cancelled;
            s.error = "workflow failed fast";
            emit(w, "workflow.step", &s);
            continue;
        }
        if (step_final(s.state) || !s.task) continue;
        const task_id id = *s.task;
        auto r = ops_.find(id);
        if (r && (r->state == task_state::queued || r->state == task_state::pending)) {
            s.state = step_state::cancelled;  // first, so the nested on_task_final sees a final step
            s.error = "workflow failed fast";
            ops_.cancel(id, "workflow failed fast");
            emit(w, "workflow.step", &s);
        }
    }
}

// Ends the workflow once every step is final; saves it either way.
void workflow_engine::settle(workflow& w) {
    if (w.state == workflow_state::running && all_final(w)) {
        w.state = final_state(w);
        w.finished_ms = ops_.now();
        ops_.count("workflows_" + lower(to_string(w.state)));
        log_.info("workflow={} state={}", w.id, to_string(w.state));
        emit(w, "workflow." + lower(to_string(w.state)), nullptr);
        ops_.retain_workflow(w.id, w.state, w.finished_ms);
    }
    save(w);
    if (w.state != workflow_state::running) {
        running_.erase(w.id);  // w is gone after this line
    }
}

void workflow_engine::save(const workflow& w) { ops_.put(table::workflows, w.id, encode_workflow(w)); }

void workflow_engine::emit(const workflow& w, std::string_view type, const wf_step* s) {
    ops_.events().emit(type, [&](event& e) {
        e.add("workflow", w.id).add("name", w.name);
        if (s == nullptr) {
            e.add("state", to_string(w.state));
            return;
        }
        e.add("state", to_string(s->state)).add("step", s->name).add("task", task_hex(*s)).add("error", s->error);
    });
}

void workflow_engine::status(const std::string& peer, const protocol::request& rq) {
    auto raw = ops_.get(table::workflows, rq.id);
    auto w = raw ? decode_workflow(*raw) : result<workflow>(fail(errc::not_found, "no workflow " + rq.id));
    if (!w) {
        ops_.reply_error(peer, cmd::wf_status, rq.req, w.error().code, w.error().message);
        return;
    }
    json steps = json::array();
    std::map<std::string, json> results;
    for (const auto& s : w->steps) {
        json deps = json::array();
        for (auto d : s.deps) deps.push_back(w->steps[d].name);
        json j = {{"name", s.name},
                  {"handler", s.handler},
                  {"depends_on", deps},
                  {"state", to_string(s.state)},
                  {"task", s.task ? json(to_hex(*s.task)) : json(nullptr)},
                  {"error", s.error.empty() ? json(nullptr) : json(s.error)},
                  {"attempts", 0},
                  {"result", nullptr}};
        if (s.task) {
            if (auto r = ops_.find(*s.task)) {
                // The step's task as every task is shown (json_view.hpp); its
                // own state is the live one while the step runs.
                auto task = protocol::to_json(to_info(*r));
                if (!step_final(s.state)) j["state"] = task["state"];
                j["attempts"] = task["attempts"];
                j["result"] = task["result"];
                if (r->result) results[s.name] = j["result"];
            }
        }
        steps.push_back(std::move(j));
    }
    json result = json::object();
    for (auto i : sink_steps(*w)) {
        auto it = results.find(w->steps[i].name);
        result[w->steps[i].name] = it == results.end() ? json(nullptr) : it->second;
    }
    json out = {{"id", w->id},
                {"name", w->name},
                {"state", to_string(w->state)},
                {"on_failure", w->fail_fast ? "fail_fast" : "continue"},
                {"created_ms", w->created_ms},
                {"finished_ms", w->finished_ms},
                {"steps", steps},
                {"result", result}};
    protocol::reply rep;
    rep.req = rq.req;
    rep.data = to_msgpack_string(out);
    const std::size_t max_body = ops_.max_body();
    if (rep.data.size() + envelope_bound > max_body) {
        // The step results do not fit in one message: the steps without them
        // (each task's STATUS still has its result).
        for (auto& s : out["steps"]) {
            s["result"] = nullptr;
            s["result_omitted"] = true;
        }
        for (auto& r : out["result"]) {
            r = nullptr;
        }
        out["note"] = "step results left out: over the " + std::to_string(max_body) + "-byte message limit";
        rep.data = to_msgpack_string(out);
    }
    if (rep.data.size() + envelope_bound > max_body) {
        ops_.reply_error(peer, cmd::wf_status, rq.req, errc::too_large,
                         "the workflow's status is over the message limit");
        return;
    }
    ops_.reply(peer, cmd::wf_status, rep);
}

void workflow_engine::cancel(const std::string& peer, const protocol::request& rq) {
    auto it = running_.find(rq.id);
    protocol::reply rep;
    rep.req = rq.req;
    if (it == running_.end()) {
        if (!ops_.get(table::workflows, rq.id)) {
            ops_.reply_error(peer, cmd::wf_cancel, rq.req, errc::not_found, "no workflow " + rq.id);
            return;
        }
        rep.note = "already finished";
        ops_.reply(peer, cmd::wf_cancel, rep);
        return;
    }
    auto& w = it->second;
    w.cancel_requested = true;
    for (auto& s : w.steps) {
        if (s.state == step_state::waiting) {
            s.state = step_state::cancelled;
            s.error = "workflow cancelled";
            emit(w, "workflow.step", &s);
        }
    }
    // Cancelling a waiting task finishes it at once, which calls back into
    // on_task_final and may end (and erase) the workflow: work on a copy of
    // the task ids.
    std::vector<task_id> tasks;
    for (const auto& s : w.steps) {
        if (s.task && !step_final(s.state)) tasks.push_back(*s.task);
    }
    std::string id = w.id;
    for (const auto& t : tasks) {
        ops_.cancel(t, "cancelled");
    }
    rep.ids.push_back(id);
    if (auto again = running_.find(id); again != running_.end()) {
        settle(again->second);
        rep.note = running_.count(id) != 0 ? "cancel requested; running steps are being stopped" : "";
    }
    log_.info("workflow={} cancel requested", id);
    ops_.reply(peer, cmd::wf_cancel, rep);
}

void workflow_engine::recover() {
    std::vector<workflow> running;
    ops_.scan(table::workflows, [&](std::string_view k, std::string_view v) {
        auto w = decode_workflow(v);
        if (!w) {
            log_.error("workflow record {} unreadable: {}", k, w.error().message);
        } else if (w->state == workflow_state::running) {
            running.push_back(std::move(*w));
        }
        return true;
    });
    for (auto& w : running) {
        auto id = w.id;
        running_.emplace(id, std::move(w));
    }
    if (!running.empty()) {
        log_.info("recovered workflows={} running", running.size());
    }
}

}  // namespace taskmill::broker
