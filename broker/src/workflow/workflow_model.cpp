// Workflow definition parsing, encoding and DAG rules (see workflow_model.hpp).
#include "workflow/workflow_json.hpp"

#include <set>
#include <stdexcept>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "model/validate.hpp"

namespace taskmill::broker {
namespace {

using json = nlohmann::json;

failure bad(const std::string& what) { return fail(errc::invalid_argument, "workflow: " + what); }

// A state name read from a workflow record; decode_workflow turns the throw
// into errc::corrupt.
template <typename E> E named(std::optional<E> parsed, const char* what) {
    if (!parsed) {
        throw std::runtime_error(std::string("unknown ") + what);
    }
    return *parsed;
}

std::string to_bytes(const json& j) {
    if (j.is_null()) {
        return {};
    }
    return protocol::json_to_msgpack(j);
}

json binary_of(const std::string& s) { return json::binary(std::vector<uint8_t>(s.begin(), s.end())); }

std::string bytes_of(const json& j) {
    if (!j.is_binary()) {
        return {};
    }
    const auto& b = j.get_binary();
    return {b.begin(), b.end()};
}

// An optional integer field in [lo, hi]: 2.7 or 1e30 is refused, not cut.
template <typename T>
std::optional<T> opt_integer(const json& s, const char* key, const std::string& step, int64_t lo, int64_t hi) {
    auto it = s.find(key);
    if (it == s.end() || it->is_null()) {
        return std::nullopt;
    }
    auto range = " must be an integer in " + std::to_string(lo) + ".." + std::to_string(hi);
    if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > static_cast<uint64_t>(hi))) {
        throw std::invalid_argument("step '" + step + "': " + key + range);
    }
    auto v = it->get<int64_t>();
    if (v < lo || v > hi) {
        throw std::invalid_argument("step '" + step + "': " + key + range);
    }
    return static_cast<T>(v);
}

// `timeout` in seconds (any number) as milliseconds, within max_duration_ms.
std::optional<int64_t> opt_seconds(const json& s, const char* key, const std::string& step) {
    auto it = s.find(key);
    if (it == s.end() || it->is_null()) {
        return std::nullopt;
    }
    constexpr double max_s = static_cast<double>(max_duration_ms) / 1000.0;
    if (!it->is_number() || !(it->get<double>() >= 0.0 && it->get<double>() <= max_s)) {
        throw std::invalid_argument("step '" + step + "': " + key + " must be a number of seconds in 0.." +
                                    std::to_string(static_cast<int64_t>(max_s)) + " (10 years)");
    }
    return static_cast<int64_t>(it->get<double>() * 1000.0);
}

result<wf_step> parse_step(const json& s, const std::string& name,
                           const std::function<bool(const std::string&)>& handler_known) {
    if (!s.is_object()) {
        return bad("step '" + name + "' must be an object");
    }
    wf_step st;
    st.name = name;
    if (name.empty() || name.size() > 128) {
        return bad("every step needs a name of 1-128 characters");
    }
    auto h = s.find("handler");
    if (h == s.end() || !h->is_string() || !parse_handler(h->get<std::string>())) {
        return bad("step '" + name + "': handler is missing or malformed (expected ns.name[@version])");
    }
    st.handler = h->get<std::string>();
    if (handler_known && !handler_known(st.handler)) {
        return bad("step '" + name + "': no connected worker serves handler " + st.handler);
    }
    if (auto p = s.find("payload"); p != s.end()) {
        st.payload = to_bytes(*p);
    }
    if (auto q = s.find("queue"); q != s.end() && !q->is_null()) {
        if (!q->is_string() || !valid_queue_name(q->get<std::string>())) {
            return bad("step '" + name + "': bad queue name");
        }
        st.queue = q->get<std::string>();
    }
    try {
        st.priority = opt_integer<int32_t>(s, "priority", name, 0, 9);
        st.retries = opt_integer<int32_t>(s, "retries", name, 0, 1000);
        st.timeout_ms = opt_integer<int64_t>(s, "timeout_ms", name, 0, max_duration_ms);
        if (auto ms = opt_seconds(s, "timeout", name)) {
            st.timeout_ms = ms;
        }
    } catch (const std::exception& e) {
        return bad(e.what());
    }
    return st;
}

// Kahn's algorithm: if some step never reaches in-degree 0, there is a cycle
// through it.
std::optional<std::string> find_cycle(const workflow& w) {
    std::vector<std::size_t> indeg(w.steps.size(), 0);
    std::vector<std::vector<std::size_t>> out(w.steps.size());
    for (std::size_t i = 0; i < w.steps.size(); ++i) {
        indeg[i] = w.steps[i].deps.size();
        for (auto d : w.steps[i].deps) {
            out[d].push_back(i);
        }
    }
    std::vector<std::size_t> todo;
    for (std::size_t i = 0; i < indeg.size(); ++i) {
        if (indeg[i] == 0) todo.push_back(i);
    }
    std::size_t seen = 0;
    while (!todo.empty()) {
        auto i = todo.back();
        todo.pop_back();
        ++seen;
        for (auto j : out[i]) {
            if (--indeg[j] == 0) todo.push_back(j);
        }
    }
    if (seen == w.steps.size()) {
        return std::nullopt;
    }
    for (std::size_t i = 0; i < indeg.size(); ++i) {
        if (indeg[i] > 0) return w.steps[i].name;
    }
    return std::nullopt;
}

}  // namespace

result<workflow> parse_workflow(const json& def, const std::function<bool(const std::string&)>& handler_known) {
    if (!def.is_object()) {
        return bad("the definition must be a JSON object");
    }
    workflow w;
    if (auto n = def.find("name"); n != def.end() && n->is_string()) {
        w.name = n->get<std::string>();
    }
    if (auto p = def.find("on_failure"); p != def.end()) {
        if (*p == "fail_fast") w.fail_fast = true;
        else if (*p == "continue") w.fail_fast = false;
        else return bad("on_failure must be \"fail_fast\" or \"continue\"");
    }
    auto steps = def.find("steps");
    if (steps == def.end() || !(steps->is_array() || steps->is_object()) || steps->empty()) {
        return bad("\"steps\" must be a non-empty array or object");
    }
    if (steps->size() > max_steps) {
        return bad("at most " + std::to_string(max_steps) + " steps");
    }
    std::vector<std::pair<std::string, const json*>> raw;
    if (steps->is_array()) {
        for (const auto& s : *steps) {
            auto n = s.is_object() ? s.find("name") : s.end();
            raw.emplace_back(n != s.end() && n->is_string() ? n->get<std::string>() : "", &s);
        }
    } else {
        for (const auto& [k, v] : steps->items()) raw.emplace_back(k, &v);
    }
    std::map<std::string, std::size_t> index;
    for (const auto& [name, s] : raw) {
        auto st = parse_step(*s, name, handler_known);
        if (!st) return failure{st.error()};
        if (!index.emplace(name, w.steps.size()).second) {
            return bad("duplicate step name '" + name + "'");
        }
        w.steps.push_back(std::move(*st));
    }
    for (std::size_t i = 0; i < raw.size(); ++i) {
        auto d = raw[i].second->find("depends_on");
        if (d == raw[i].second->end() || d->is_null()) continue;
        if (!d->is_array()) return bad("step '" + raw[i].first + "': depends_on must be a list of step names");
        std::set<std::size_t> uniq;
        for (const auto& dep : *d) {
            auto it = dep.is_string() ? index.find(dep.get<std::string>()) : index.end();
            if (it == index.end()) {
                return bad("step '" + raw[i].first + "' depends on unknown step " + dep.dump());
            }
            if (it->second == i) return bad("step '" + raw[i].first + "' depends on itself");
            uniq.insert(it->second);
        }
        w.steps[i].deps.assign(uniq.begin(), uniq.end());
    }
    if (auto c = find_cycle(w)) {
        return bad("dependency cycle through step '" + *c + "'");
    }
    return w;
}

std::string encode_workflow(const workflow& w) {
    json steps = json::array();
    for (const auto& s : w.steps) {
        json j = {{"name", s.name},
                  {"handler", s.handler},
                  {"payload", binary_of(s.payload)},
                  {"queue", s.queue},
                  {"deps", s.deps},
                  {"task", s.task ? to_hex(*s.task) : std::string()},
                  {"state", to_string(s.state)},
                  {"error", s.error}};
        if (s.priority) j["priority"] = *s.priority;
        if (s.retries) j["retries"] = *s.retries;
        if (s.timeout_ms) j["timeout_ms"] = *s.timeout_ms;
        steps.push_back(std::move(j));
    }
    json j = {{"v", 1},
              {"id", w.id},
              {"name", w.name},
              {"fail_fast", w.fail_fast},
              {"cancel_requested", w.cancel_requested},
              {"state", to_string(w.state)},
              {"created_ms", w.created_ms},
              {"finished_ms", w.finished_ms},
              {"steps", std::move(steps)}};
    return protocol::json_to_msgpack(j);
}

result<workflow> decode_workflow(std::string_view bytes) {
    if (!protocol::msgpack_within_nesting(bytes)) {
        return fail(errc::corrupt, "workflow record unreadable: nested too deeply");
    }
    try {
        auto j = json::from_msgpack(bytes.begin(), bytes.end());
        workflow w;
        w.id = j.at("id").get<std::string>();
        w.name = j.at("name").get<std::string>();
        w.fail_fast = j.at("fail_fast").get<bool>();
        w.cancel_requested = j.at("cancel_requested").get<bool>();
        w.state = named(parse_workflow_state(j.at("state").get<std::string>()), "workflow state");
        w.created_ms = j.at("created_ms").get<int64_t>();
        w.finished_ms = j.at("finished_ms").get<int64_t>();
        for (const auto& s : j.at("steps")) {
            wf_step st;
            st.name = s.at("name").get<std::string>();
            st.handler = s.at("handler").get<std::string>();
            st.payload = bytes_of(s.at("payload"));
            st.queue = s.at("queue").get<std::string>();
            st.deps = s.at("deps").get<std::vector<std::size_t>>();
            if (auto hex = s.at("task").get<std::string>(); !hex.empty()) {
                auto id = parse_task_id(hex, "step task");
                if (!id) {
                    return fail(errc::corrupt, "workflow record unreadable: " + id.error().message);
                }
                st.task = *id;
            }
            st.state = named(parse_step_state(s.at("state").get<std::string>()), "step state");
            st.error = s.at("error").get<std::string>();
            if (s.contains("priority")) st.priority = s["priority"].get<int32_t>();
            if (s.contains("retries")) st.retries = s["retries"].get<int32_t>();
            if (s.contains("timeout_ms")) st.timeout_ms = s["timeout_ms"].get<int64_t>();
            w.steps.push_back(std::move(st));
        }
        for (const auto& s : w.steps) {
            for (auto d : s.deps) {
                if (d >= w.steps.size()) return fail(errc::corrupt, "workflow record: dependency out of range");
            }
        }
        return w;
    } catch (const std::exception& e) {
        return fail(errc::corrupt, std::string("workflow record unreadable: ") + e.what());
    }
}

std::vector<std::size_t> ready_steps(const workflow& w) {
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < w.steps.size(); ++i) {
        const auto& s = w.steps[i];
        if (s.state != step_state::waiting) continue;
        bool ok = true;
        for (auto d : s.deps) {
            ok = ok && w.steps[d].state == step_state::succeeded;
        }
        if (ok) out.push_back(i);
    }
    return out;
}

std::vector<std::size_t> skip_blocked(workflow& w) {
    std::vector<std::size_t> changed;
    for (bool again = true; again;) {
        again = false;
        for (std::size_t i = 0; i < w.steps.size(); ++i) {
            auto& s = w.steps[i];
            if (s.state != step_state::waiting) continue;
            for (auto d : s.deps) {
                if (step_unsuccessful(w.steps[d].state)) {
                    s.state = step_state::skipped;
                    s.error = "dependency '" + w.steps[d].name + "' did not succeed (" +
                              std::string(to_string(w.steps[d].state)) + ")";
                    changed.push_back(i);
                    again = true;
                    break;
                }
            }
        }
    }
    return changed;
}

bool all_final(const workflow& w) {
    for (const auto& s : w.steps) {
        if (!step_final(s.state)) return false;
    }
    return true;
}

workflow_state final_state(const workflow& w) {
    if (w.cancel_requested) return workflow_state::cancelled;
    for (const auto& s : w.steps) {
        if (s.state != step_state::succeeded) return workflow_state::failed;
    }
    return workflow_state::succeeded;
}

std::vector<std::size_t> sink_steps(const workflow& w) {
    std::vector<bool> has_dependent(w.steps.size(), false);
    for (const auto& s : w.steps) {
        for (auto d : s.deps) has_dependent[d] = true;
    }
    std::vector<std::size_t> out;
    for (std::size_t i = 0; i < w.steps.size(); ++i) {
        if (!has_dependent[i]) out.push_back(i);
    }
    return out;
}

std::string step_payload(const workflow& w, std::size_t step, const std::map<std::string, std::string>& results) {
    const auto& s = w.steps[step];
    if (s.deps.empty()) {
        return s.payload;
    }
    auto own = protocol::msgpack_to_json(s.payload);
    json out = own.is_object() ? own : json::object();
    if (!own.is_null() && !own.is_object()) {
        out["input"] = own;
    }
    json deps = json::object();
    for (auto d : s.deps) {
        auto it = results.find(w.steps[d].name);
        deps[w.steps[d].name] = it == results.end() ? json(nullptr) : protocol::msgpack_to_json(it->second);
    }
    out["deps"] = std::move(deps);
    return to_bytes(out);
}

}  // namespace taskmill::broker
