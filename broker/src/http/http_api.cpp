// The JSON API under /api/v1/: each route turns the HTTP request into the
// wire request a ZeroMQ client would send, asks the loop, and renders the
// reply (or its error) as JSON.
#include <algorithm>
#include <chrono>

#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/nesting.hpp>
#include <taskmill/protocol/rate.hpp>
#include <taskmill/protocol/time_text.hpp>

#include "http/http_json.hpp"
#include "http/http_routes.hpp"

namespace taskmill::broker::http {

handler_fn guarded(const std::shared_ptr<const api_env>& env, role need, handler_fn fn) {
    return [env, need, fn = std::move(fn)](const httplib::Request& req, httplib::Response& res) {
        if (env->allow(req, res, need)) {
            fn(req, res);
        }
    };
}

std::optional<protocol::reply> ask(const api_env& env, httplib::Response& res, std::string_view cmd,
                                   protocol::request rq, std::chrono::milliseconds timeout) {
    auto rep = env.bridge.call(cmd, std::move(rq), timeout);
    if (!rep) {
        send_error(res, rep.error().code, rep.error().message);
        return std::nullopt;
    }
    if (!rep->ok) {
        const auto code = errc_from_string(rep->error_code);
        send_error(res, code, rep->error);
        if (code == errc::not_leader && !rep->leader_http.empty()) {
            // 421 Misdirected Request, naming where to ask (docs/HTTP.md).
            send_json(res, res.status,
                      {{"error_code", rep->error_code}, {"error", rep->error}, {"leader", rep->leader_http}});
        }
        return std::nullopt;
    }
    return std::move(rep.value());
}

result<void> known_params(const httplib::Request& req, std::initializer_list<std::string_view> known) {
    for (const auto& [name, value] : req.params) {
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            std::string list;
            for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
            return fail(errc::invalid_argument, "unknown query parameter " + name + " (known: " + list + ")");
        }
    }
    return {};
}

std::optional<std::string> page_through(const api_env& env, httplib::Response& res, std::string_view cmd,
                                        protocol::request rq,
                                        const std::function<std::size_t(protocol::reply&)>& take) {
    const std::size_t want = rq.limit == 0 ? 100 : rq.limit;
    std::size_t have = 0;
    std::string next;
    for (int trip = 0; trip < max_listing_trips; ++trip) {
        auto rep = ask(env, res, cmd, rq);
        if (!rep) {
            return std::nullopt;
        }
        have += take(*rep);
        next = rep->next;
        if (next.empty() || have >= want) {
            break;
        }
        rq.before = next;
        rq.limit = static_cast<uint32_t>(want - have);
    }
    return next;
}

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

constexpr int64_t max_wait_ms = 5 * 60 * 1000;

// The body as JSON; 400 for text that is not JSON, nests deeper than
// protocol::max_nesting, or holds a number no double can hold (1e400).
std::optional<json> parse_body(const httplib::Request& req, httplib::Response& res) {
    auto body = protocol::parse_json<json>(req.body, "the request body");
    if (!body) {
        send_error(res, body.error().code, body.error().message);
        return std::nullopt;
    }
    return std::move(body.value());
}

// One of the env's long-poll places, held for the life of the object;
// false when all are taken. A request that does not wait needs none.
class long_poll_slot {
public:
    long_poll_slot(const api_env& env, bool waits) : count_(waits ? env.long_polls.get() : nullptr) {
        if (count_ != nullptr && count_->fetch_add(1) >= env.max_long_polls) {
            count_->fetch_sub(1);
            ok_ = false;
            count_ = nullptr;
        }
    }
    ~long_poll_slot() {
        if (count_ != nullptr) {
            count_->fetch_sub(1);
        }
    }
    long_poll_slot(const long_poll_slot&) = delete;
    long_poll_slot& operator=(const long_poll_slot&) = delete;
    explicit operator bool() const { return ok_; }

private:
    std::atomic<std::size_t>* count_;
    bool ok_ = true;
};

json ids_reply(const protocol::reply& rep) {
    json out = {{"ids", rep.ids}};
    if (!rep.note.empty()) {
        out["note"] = rep.note;
    }
    return out;
}

// The submit guard's "strict": true, taken out of a submit body (it is
// not a task field). 400 for a value that is not a boolean.
std::optional<bool> take_strict(json& body, httplib::Response& res) {
    if (!body.is_object() || !body.contains("strict")) {
        return false;
    }
    if (!body["strict"].is_boolean()) {
        send_error(res, errc::invalid_argument, "strict must be true or false");
        return std::nullopt;
    }
    bool strict = body["strict"].get<bool>();
    body.erase("strict");
    return strict;
}

void submit(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req, res);
    if (!body) {
        return;
    }
    auto strict = take_strict(*body, res);
    if (!strict) {
        return;
    }
    auto tasks = parse_submit(*body);
    if (!tasks) {
        send_error(res, tasks.error().code, tasks.error().message);
        return;
    }
    protocol::request rq;
    rq.tasks = std::move(tasks.value());
    rq.strict = *strict;
    if (auto rep = ask(env, res, protocol::cmd::submit, std::move(rq))) {
        auto out = ids_reply(*rep);
        if (!rep->warnings.empty()) {
            out["warnings"] = rep->warnings;
        }
        send_json(res, 201, out);
    }
}

void status(const api_env& env, const httplib::Request& req, httplib::Response& res, bool result_only) {
    protocol::request rq;
    rq.id = req.matches[1];
    if (auto ok = query_int<int64_t>(req, "wait_ms", rq.wait_ms, 0, max_wait_ms); !ok) {
        send_error(res, ok.error().code, ok.error().message);
        return;
    }
    // A long-poll holds a thread for its wait: past the cap it is refused
    // rather than let waiting requests take every thread.
    long_poll_slot slot(env, rq.wait_ms > 0);
    if (!slot) {
        res.set_header("Retry-After", "1");
        send_error(res, errc::unavailable,
                   "too many long-polls in progress (at most " + std::to_string(env.max_long_polls) +
                       "); retry, or ask without wait_ms");
        return;
    }
    auto rep = ask(env, res, protocol::cmd::status, rq, std::chrono::milliseconds(rq.wait_ms) + loop_timeout);
    if (!rep) {
        return;
    }
    if (!rep->task) {
        send_error(res, errc::not_found, "no task " + rq.id);
        return;
    }
    auto t = to_json(*rep->task);
    bool final = rep->task->finished_ms > 0;
    if (!result_only) {
        send_json(res, 200, t);
        return;
    }
    json out = {
        {"id", t["id"]}, {"state", t["state"]}, {"final", final}, {"result", t["result"]}, {"error", t["error"]}};
    send_json(res, final ? 200 : 202, out);
}

void cancel(const api_env& env, httplib::Response& res, protocol::request rq) {
    if (auto rep = ask(env, res, protocol::cmd::cancel, std::move(rq))) {
        send_json(res, 200, ids_reply(*rep));
    }
}

void cancel_body(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req, res);
    if (!body) {
        return;
    }
    protocol::request rq;
    bool ok =
        body->is_object() && body->size() == 1 &&
        ((body->contains("id") && (*body)["id"].is_string()) || (body->contains("tag") && (*body)["tag"].is_string()));
    if (!ok) {
        send_error(res, errc::invalid_argument, R"(cancel needs exactly one of {"id": "..."} or {"tag": "..."})");
        return;
    }
    rq.id = body->value("id", "");
    rq.tag = body->value("tag", "");
    cancel(env, res, std::move(rq));
}

// The filters of GET /api/v1/tasks; any other query parameter is a mistake
// (a typo would otherwise list everything), so it is refused.
result<protocol::request> list_request(const httplib::Request& req) {
    if (auto ok = known_params(req, {"state", "queue", "handler", "tag", "since", "until", "before", "limit"}); !ok) {
        return fail(ok.error().code, ok.error().message);
    }
    protocol::request rq;
    rq.state = req.get_param_value("state");
    rq.queue = req.get_param_value("queue");
    rq.handler = req.get_param_value("handler");
    rq.tag = req.get_param_value("tag");
    rq.before = req.get_param_value("before");
    if (auto ok = query_int<uint32_t>(req, "limit", rq.limit, 1, 10000); !ok) {
        return fail(ok.error().code, ok.error().message);
    }
    for (auto [name, out] : {std::pair{"since", &rq.since_ms}, std::pair{"until", &rq.until_ms}}) {
        if (req.has_param(name)) {
            auto ms = protocol::parse_time_ms(req.get_param_value(name));
            if (!ms) {
                return fail(ms.error().code, std::string("query parameter ") + name + ": " + ms.error().message);
            }
            *out = std::max<int64_t>(*ms, 1);
        }
    }
    return rq;
}

void list(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    auto parsed = list_request(req);
    if (!parsed) {
        send_error(res, parsed.error().code, parsed.error().message);
        return;
    }
    auto tasks = json::array();
    auto next = page_through(env, res, protocol::cmd::tasks, std::move(*parsed), [&](protocol::reply& rep) {
        for (const auto& t : rep.tasks) {
            tasks.push_back(to_json(t));
        }
        return rep.tasks.size();
    });
    if (!next) {
        return;
    }
    json body = {{"tasks", tasks}};
    if (!next->empty()) {
        body["next"] = *next;  // ?before=<next> lists the older ones
    }
    send_json(res, 200, body);
}

// Workflows and schedules (broker/src/workflow/workflow_engine.cpp): their bodies
// travel as msgpack maps in `data`, so JSON maps onto them one to one.
void workflow_submit(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    auto body = parse_body(req, res);
    if (!body) {
        return;
    }
    if (!body->is_object()) {
        send_error(res, errc::invalid_argument, "a workflow must be a JSON object with \"steps\"");
        return;
    }
    protocol::request rq;
    rq.data = protocol::json_to_msgpack(*body);
    if (auto rep = ask(env, res, protocol::cmd::wf_submit, std::move(rq))) {
        send_json(res, 201, ids_reply(*rep));
    }
}

void workflow_get(const api_env& env, httplib::Response& res, std::string_view cmd, std::string id) {
    protocol::request rq;
    rq.id = std::move(id);
    if (auto rep = ask(env, res, cmd, std::move(rq))) {
        // WF_STATUS wraps step results (each within max_nesting) three levels deep.
        send_json(res, 200,
                  rep->data.empty() ? json::object() : protocol::msgpack_to_json(rep->data, protocol::max_nesting + 8));
    }
}

// ---- queue control and flow limits ----

// A LIMIT request from a JSON body {rate, burst, max_running}: rate is a
// number of tasks per second or text ("100/s", "0" = none).
result<protocol::request> parse_limits(const json& body) {
    if (!body.is_object()) {
        return fail(errc::invalid_argument, "the body must be a JSON object with rate, burst or max_running");
    }
    protocol::request rq;
    for (const auto& [key, v] : body.items()) {
        if (key == "rate") {
            if (v.is_string()) {
                auto r = protocol::parse_rate_or_zero(v.get<std::string>());
                if (!r) {
                    return failure{r.error()};
                }
                rq.rate = *r;
            } else if (v.is_number()) {
                rq.rate = v.get<double>();  // range checked by the broker
            } else {
                return fail(errc::invalid_argument, "rate must be a number of tasks per second or text like \"100/s\"");
            }
        } else if (key == "burst" || key == "max_running") {
            if (!v.is_number_unsigned() || v.get<uint64_t>() > UINT32_MAX) {
                return fail(errc::invalid_argument, key + " must be an integer from 0 to 4294967295");
            }
            (key == "burst" ? rq.burst : rq.max_running) = v.get<uint32_t>();
        } else {
            return fail(errc::invalid_argument, "unknown field '" + key + "' (rate, burst, max_running)");
        }
    }
    return rq;
}

void queue_change(const api_env& env, const httplib::Request& req, httplib::Response& res, std::string_view cmd) {
    protocol::request rq;
    rq.queue = req.matches[1];
    if (auto rep = ask(env, res, cmd, std::move(rq)); rep && !rep->queues.empty()) {
        send_json(res, 200, to_json(rep->queues.front()));
    }
}

void limits_change(const api_env& env, const httplib::Request& req, httplib::Response& res, bool of_queue) {
    auto body = parse_body(req, res);
    if (!body) {
        return;
    }
    auto rq = parse_limits(*body);
    if (!rq) {
        send_error(res, rq.error().code, rq.error().message);
        return;
    }
    (of_queue ? rq->queue : rq->handler) = req.matches[1];
    auto rep = ask(env, res, protocol::cmd::limit, std::move(rq.value()));
    if (rep && of_queue && !rep->queues.empty()) {
        send_json(res, 200, to_json(rep->queues.front()));
    } else if (rep && !of_queue && rep->stats && !rep->stats->handlers.empty()) {
        const auto& h = rep->stats->handlers.front();
        send_json(res, 200, {{"name", h.name}, {"running", h.running}, {"limits", to_json(h.limits)}});
    }
}

void add_queue_routes(router& srv, const std::shared_ptr<const api_env>& env) {
    const auto& e = *env;
    const std::string queue = R"(/api/v1/queues/([^/]+))";
    srv.Get("/api/v1/queues", guarded(env, role::read, [&e](const httplib::Request&, httplib::Response& res) {
                if (auto rep = ask(e, res, protocol::cmd::queues, {})) {
                    auto qs = json::array();
                    for (const auto& q : rep->queues) {
                        qs.push_back(to_json(q));
                    }
                    send_json(res, 200, {{"queues", qs}});
                }
            }));
    srv.Post(queue + "/pause", guarded(env, role::write, [&e](const auto& req, auto& res) {
                 queue_change(e, req, res, protocol::cmd::pause);
             }));
    srv.Post(queue + "/resume", guarded(env, role::write, [&e](const auto& req, auto& res) {
                 queue_change(e, req, res, protocol::cmd::resume);
             }));
    auto queue_limits = [&e](const httplib::Request& req, httplib::Response& res) { limits_change(e, req, res, true); };
    srv.Put(queue + "/limits", guarded(env, role::write, queue_limits));
    srv.Post(queue + "/limits", guarded(env, role::write, queue_limits));
    srv.Post(R"(/api/v1/handlers/([^/]+)/limits)",
             guarded(env, role::write, [&e](const auto& req, auto& res) { limits_change(e, req, res, false); }));
}

}  // namespace

void add_api_routes(router& srv, std::shared_ptr<const api_env> env) {
    const auto& e = *env;
    const std::string task = R"(/api/v1/tasks/([^/]+))";
    srv.Post("/api/v1/tasks", guarded(env, role::write, [&e](auto& req, auto& res) { submit(e, req, res); }));
    srv.Get("/api/v1/tasks", guarded(env, role::read, [&e](auto& req, auto& res) { list(e, req, res); }));
    srv.Get(task, guarded(env, role::read, [&e](auto& req, auto& res) { status(e, req, res, false); }));
    srv.Get(task + "/result", guarded(env, role::read, [&e](auto& req, auto& res) { status(e, req, res, true); }));
    auto cancel_id = [&e](const httplib::Request& req, httplib::Response& res) {
        protocol::request rq;
        rq.id = req.matches[1];
        cancel(e, res, std::move(rq));
    };
    srv.Post(task + "/cancel", guarded(env, role::write, cancel_id));
    add_job_routes(srv, env);  // DELETE task deletes a finished task (http_jobs.cpp)
    srv.Post("/api/v1/cancel", guarded(env, role::write, [&e](auto& req, auto& res) { cancel_body(e, req, res); }));
    srv.Post(task + "/retry", guarded(env, role::write, [&e](const httplib::Request& req, httplib::Response& res) {
                 protocol::request rq;
                 rq.id = req.matches[1];
                 if (auto rep = ask(e, res, protocol::cmd::retry, std::move(rq))) {
                     send_json(res, 200, ids_reply(*rep));
                 }
             }));
    srv.Get("/api/v1/stats", guarded(env, role::read, [&e](const httplib::Request&, httplib::Response& res) {
                if (auto rep = ask(e, res, protocol::cmd::stats, {}); rep && rep->stats) {
                    send_json(res, 200, to_json(*rep->stats));
                }
            }));
    srv.Get("/api/v1/workers", guarded(env, role::read, [&e](const httplib::Request&, httplib::Response& res) {
                if (auto rep = ask(e, res, protocol::cmd::workers, {})) {
                    auto ws = json::array();
                    for (const auto& w : rep->workers) {
                        ws.push_back(to_json(w));
                    }
                    send_json(res, 200, {{"workers", ws}});
                }
            }));
    const std::string wf = R"(/api/v1/workflows/([^/]+))";
    srv.Post("/api/v1/workflows",
             guarded(env, role::write, [&e](auto& req, auto& res) { workflow_submit(e, req, res); }));
    srv.Get(wf, guarded(env, role::read, [&e](const httplib::Request& req, httplib::Response& res) {
                workflow_get(e, res, protocol::cmd::wf_status, req.matches[1]);
            }));
    auto wf_cancel = [&e](const httplib::Request& req, httplib::Response& res) {
        protocol::request rq;
        rq.id = req.matches[1];
        if (auto rep = ask(e, res, protocol::cmd::wf_cancel, std::move(rq))) {
            send_json(res, 200, ids_reply(*rep));
        }
    };
    srv.Delete(wf, guarded(env, role::write, wf_cancel));
    srv.Post(wf + "/cancel", guarded(env, role::write, wf_cancel));
    srv.Get("/api/v1/schedules", guarded(env, role::read, [&e](const httplib::Request&, httplib::Response& res) {
                workflow_get(e, res, protocol::cmd::schedules, "");
            }));
    // Figures straight from the loop's last published snapshot: no loop trip.
    srv.Get("/api/v1/metrics", guarded(env, role::read, [&e](const httplib::Request&, httplib::Response& res) {
                send_json(res, 200, to_json(*e.hub->latest()));
            }));
    add_queue_routes(srv, env);    // queue control and flow limits
    add_handler_routes(srv, env);  // GET /api/v1/handlers (http_handlers.cpp)
    // Workflow listing and schedule control (http_schedules.cpp).
    add_schedule_routes(srv, env);
}

}  // namespace taskmill::broker::http
