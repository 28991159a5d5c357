// Workflows inside the engine: WF_SUBMIT / WF_STATUS / WF_CANCEL, starting
// steps as ordinary tasks (parent = workflow id, tags "workflow:ID" and
// "step:NAME"), and reacting to their final states. The workflow record
// lives in the meta table under "workflow/ID" and changes in the same
// transaction as the step tasks, so a broker killed at any point restarts
// with the two consistent.
#include <nlohmann/json.hpp>

#include <taskmill/protocol/nesting.hpp>

#include "engine/engine.hpp"
#include "model/message_size.hpp"

namespace taskmill::broker {
namespace {

using json = nlohmann::json;

constexpr std::string_view wf_prefix = "workflow/";
constexpr std::string_view cmd_submit = "WF_SUBMIT";
constexpr std::string_view cmd_status = "WF_STATUS";
constexpr std::string_view cmd_cancel = "WF_CANCEL";
constexpr std::string_view cmd_schedules = "SCHEDULES";

std::string wf_key(const std::string& id) { return std::string(wf_prefix) + id; }

std::string lower(std::string_view name) {
    std::string s(name);
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
}

// A step's task id as its JSON shows it: "" before it started.
std::string task_hex(const wf_step& s) { return s.task ? to_hex(*s.task) : std::string(); }

std::string to_msgpack_string(const json& j) {
    auto v = json::to_msgpack(j);
    return {v.begin(), v.end()};
}

}  // namespace

bool engine::workflow_command(const std::string& peer, const std::string& cmd, const protocol::request& rq) {
    if (cmd == cmd_submit) {
        wf_submit(peer, rq);
    } else if (cmd == cmd_status) {
        wf_status(peer, rq);
    } else if (cmd == cmd_cancel) {
        wf_cancel(peer, rq);
    } else if (cmd == cmd_schedules) {
        schedules_cmd(peer, rq);
    } else {
        return false;
    }
    return true;
}

void engine::wf_submit(const std::string& peer, const protocol::request& rq) {
    if (!protocol::msgpack_within_nesting(rq.data)) {
        auto e = protocol::nesting_error("WF_SUBMIT data").err;
        reply_error(peer, cmd_submit, rq.req, e.code, e.message);
        return;
    }
    auto def = json::from_msgpack(rq.data.begin(), rq.data.end(), true, false);
    if (rq.data.empty() || def.is_discarded()) {
        reply_error(peer, cmd_submit, rq.req, errc::invalid_argument, "WF_SUBMIT needs data: the workflow as a msgpack map");
        return;
    }
    if (auto why = new_work_refused()) {
        reply_error(peer, cmd_submit, rq.req, errc::unavailable, *why);
        return;
    }
    // Handlers are known from the connected workers; with none connected the
    // check is left to dispatch time (the steps wait for a worker).
    std::function<bool(const std::string&)> known;
    if (workers_.size() > 0) {
        known = [this](const std::string& h) {
            auto ref = parse_handler(h);
            for (const auto& [id, w] : workers_.all()) {
                if (ref && w.can_run(*ref)) return true;
            }
            return false;
        };
    }
    auto w = parse_workflow(def, known);
    if (!w) {
        reply_error(peer, cmd_submit, rq.req, w.error().code, w.error().message);
        return;
    }
    w->id = to_hex(ids_.next(now_));
    w->created_ms = now_;
    auto [it, inserted] = workflows_.emplace(w->id, std::move(*w));
    auto& wf = it->second;
    count("workflows_submitted");
    log_.info("workflow={} submitted steps={} name={} fail_fast={}", wf.id, wf.steps.size(),
              protocol::printable(wf.name), wf.fail_fast);
    wf_emit(wf, "workflow.started", nullptr);
    wf_start_ready(wf);
    wf_save(wf);
    protocol::reply rep;
    rep.req = rq.req;
    rep.ids.push_back(wf.id);
    if (workers_.size() == 0) {
        rep.note = "no worker connected: handlers not checked";
    }
    reply_front(peer, cmd_submit, rep);
}

void engine::wf_start_ready(workflow& w) {
    if (w.state != workflow_state::running || w.cancel_requested) {
        return;
    }
    for (auto i : ready_steps(w)) {
        auto& s = w.steps[i];
        std::map<std::string, std::string> results;
        for (auto d : s.deps) {
            const auto& id = w.steps[d].task;
            auto r = id ? load(*id) : std::nullopt;
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
        auto r = create(spec, "");
        s.task = r->id;
        s.state = step_state::queued;
        enqueue(*r);
        count("submitted");
        log_.info("task={} workflow={} step={} started", to_hex(r->id), w.id, protocol::printable(s.name));
        wf_emit(w, "workflow.step", &s);
    }
}

void engine::on_workflow_task_final(const task_record& r) {
    if (r.parent.empty()) {
        return;
    }
    auto it = workflows_.find(r.parent);
    if (it == workflows_.end()) {
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
    wf_emit(w, "workflow.step", step);
    if (step_unsuccessful(step->state) && w.fail_fast) {
        wf_fail_fast(w);
    }
    for (auto i : skip_blocked(w)) {
        wf_emit(w, "workflow.step", &w.steps[i]);
    }
    wf_start_ready(w);
    wf_settle(w);
}

// Fail fast: every step that has not started is cancelled; running ones
// finish on their own (their results are kept).
void engine::wf_fail_fast(workflow& w) {
    for (auto& s : w.steps) {
        if (s.state == step_state::waiting) {
            s.state = step_state::cancelled;
            s.error = "workflow failed fast";
            wf_emit(w, "workflow.step", &s);
            continue;
        }
        if (step_final(s.state) || !s.task) continue;
        auto r = load(*s.task);
        if (r && (r->state == task_state::queued || r->state == task_state::pending)) {
            s.state = step_state::cancelled;  // first, so the nested on_final sees a final step
            s.error = "workflow failed fast";
            unqueue(*r);
            finish(*r, task_state::cancelled, "workflow failed fast");
            wf_emit(w, "workflow.step", &s);
        }
    }
}

// Ends the workflow once every step is final; saves it either way.
void engine::wf_settle(workflow& w) {
    if (w.state == workflow_state::running && all_final(w)) {
        w.state = final_state(w);
        w.finished_ms = now_;
        count("workflows_" + lower(to_string(w.state)));
        log_.info("workflow={} state={}", w.id, to_string(w.state));
        wf_emit(w, "workflow." + lower(to_string(w.state)), nullptr);
    }
    wf_save(w);
    if (w.state != workflow_state::running) {
        workflows_.erase(w.id);  // w is gone after this line
    }
}

void engine::wf_save(const workflow& w) { check(txn_->put(table::meta, wf_key(w.id), encode_workflow(w)), "put workflow"); }

void engine::wf_emit(const workflow& w, std::string_view type, const wf_step* s) {
    if (!wants_event(type)) {
        return;
    }
    json e = {{"type", type}, {"workflow", w.id}, {"name", w.name}, {"state", to_string(w.state)}, {"time_ms", now_}};
    if (s != nullptr) {
        e["step"] = s->name;
        e["task"] = task_hex(*s);
        e["state"] = to_string(s->state);
        e["error"] = s->error;
    }
    out_.events.emplace_back(std::string(type), to_msgpack_string(e));
}

void engine::wf_status(const std::string& peer, const protocol::request& rq) {
    auto raw = txn_->get(table::meta, wf_key(rq.id));
    auto w = raw ? decode_workflow(*raw) : result<workflow>(fail(errc::not_found, "no workflow " + rq.id));
    if (!w) {
        reply_error(peer, cmd_status, rq.req, w.error().code, w.error().message);
        return;
    }
    json steps = json::array();
    std::map<std::string, json> results;
    for (const auto& s : w->steps) {
        json deps = json::array();
        for (auto d : s.deps) deps.push_back(w->steps[d].name);
        json j = {{"name", s.name}, {"handler", s.handler}, {"depends_on", deps}, {"state", to_string(s.state)},
                  {"task", s.task ? json(to_hex(*s.task)) : json(nullptr)}, {"error", s.error.empty() ? json(nullptr) : json(s.error)},
                  {"attempts", 0}, {"result", nullptr}};
        if (s.task) {
            if (auto r = load(*s.task)) {
                // The task's own state is the live one while the step runs.
                if (!step_final(s.state)) j["state"] = to_string(r->state);
                j["attempts"] = r->attempts;
                if (r->result) {
                    j["result"] = from_msgpack_or_null(*r->result);
                    results[s.name] = j["result"];
                }
            }
        }
        steps.push_back(std::move(j));
    }
    json result = json::object();
    for (auto i : sink_steps(*w)) {
        auto it = results.find(w->steps[i].name);
        result[w->steps[i].name] = it == results.end() ? json(nullptr) : it->second;
    }
    json out = {{"id", w->id}, {"name", w->name}, {"state", to_string(w->state)},
                {"on_failure", w->fail_fast ? "fail_fast" : "continue"}, {"created_ms", w->created_ms},
                {"finished_ms", w->finished_ms}, {"steps", steps}, {"result", result}};
    protocol::reply rep;
    rep.req = rq.req;
    rep.data = to_msgpack_string(out);
    if (rep.data.size() + envelope_bound > out_max_body_) {
        // The step results do not fit in one message: the steps without them
        // (each task's STATUS still has its result).
        for (auto& s : out["steps"]) {
            s["result"] = nullptr;
            s["result_omitted"] = true;
        }
        for (auto& r : out["result"]) {
            r = nullptr;
        }
        out["note"] = "step results left out: over the " + std::to_string(out_max_body_) + "-byte message limit";
        rep.data = to_msgpack_string(out);
    }
    if (rep.data.size() + envelope_bound > out_max_body_) {
        reply_error(peer, cmd_status, rq.req, errc::too_large, "the workflow's status is over the message limit");
        return;
    }
    reply_front(peer, cmd_status, rep);
}

void engine::wf_cancel(const std::string& peer, const protocol::request& rq) {
    auto it = workflows_.find(rq.id);
    protocol::reply rep;
    rep.req = rq.req;
    if (it == workflows_.end()) {
        if (!txn_->get(table::meta, wf_key(rq.id))) {
            reply_error(peer, cmd_cancel, rq.req, errc::not_found, "no workflow " + rq.id);
            return;
        }
        rep.note = "already finished";
        reply_front(peer, cmd_cancel, rep);
        return;
    }
    auto& w = it->second;
    w.cancel_requested = true;
    for (auto& s : w.steps) {
        if (s.state == step_state::waiting) {
            s.state = step_state::cancelled;
            s.error = "workflow cancelled";
            wf_emit(w, "workflow.step", &s);
        }
    }
    // Cancelling a waiting task finishes it at once, which calls back into
    // on_workflow_task_final and may end (and erase) the workflow: work on a
    // copy of the task ids.
    std::vector<task_id> tasks;
    for (const auto& s : w.steps) {
        if (s.task && !step_final(s.state)) tasks.push_back(*s.task);
    }
    std::string id = w.id;
    for (const auto& t : tasks) {
        if (auto r = load(t); r && !is_final(r->state)) {
            protocol::reply ignored;
            cancel(*r, ignored);
        }
    }
    rep.ids.push_back(id);
    if (auto again = workflows_.find(id); again != workflows_.end()) {
        wf_settle(again->second);
        rep.note = workflows_.count(id) != 0 ? "cancel requested; running steps are being stopped" : "";
    }
    log_.info("workflow={} cancel requested", id);
    reply_front(peer, cmd_cancel, rep);
}

void engine::recover_workflows() {
    std::vector<workflow> running;
    check(txn_->scan(table::meta, wf_prefix, false, [&](std::string_view k, std::string_view v) {
              if (k.substr(0, wf_prefix.size()) != wf_prefix) return false;
              auto w = decode_workflow(v);
              if (!w) {
                  log_.error("workflow record {} unreadable: {}", k, w.error().message);
              } else if (w->state == workflow_state::running) {
                  running.push_back(std::move(*w));
              }
              return true;
          }), "scan workflows");
    for (auto& w : running) {
        auto id = w.id;
        workflows_.emplace(id, std::move(w));
    }
    if (!running.empty()) {
        log_.info("recovered workflows={} running", running.size());
    }
}

}  // namespace taskmill::broker
