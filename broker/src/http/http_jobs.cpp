// The operator verbs under /api/v1/ (docs/HTTP.md, "Operating queues"):
// purge a queue, delete, retry or cancel tasks by filter, run a delayed task
// now, and follow the bulk job each of those starts.
#include <charconv>

#include <taskmill/protocol/nesting.hpp>
#include <taskmill/protocol/time_text.hpp>

#include "http/http_routes.hpp"

namespace taskmill::broker::http {

namespace {

using nlohmann::json;
using namespace std::chrono_literals;

json job_json(const protocol::job_info& j) {
    return {{"id", j.id},
            {"kind", j.kind},
            {"filter", j.filter},
            {"state", j.state},
            {"matched", j.matched},
            {"changed", j.changed},
            {"skipped", j.matched - j.changed},
            {"started_ms", j.started_ms},
            {"finished_ms", j.finished_ms}};
}

// 200 with the job once it is done, 202 while it runs (GET Location for it).
void send_job(httplib::Response& res, const protocol::reply& rep) {
    json out = json::object();
    if (!rep.ids.empty()) {
        out["ids"] = rep.ids;
    }
    if (!rep.note.empty()) {
        out["note"] = rep.note;
    }
    int status = 200;
    if (rep.job) {
        out["job"] = job_json(*rep.job);
        if (rep.job->state != "done") {
            status = 202;
            res.set_header("Location", "/api/v1/jobs/" + std::to_string(rep.job->id));
        }
    }
    send_json(res, status, out);
}

// A filter body: {"state", "queue", "handler", "tag", "since_ms",
// "until_ms", "all"} and, for DELETE, {"ids": [...]}.
result<protocol::request> filter_body(const std::string& text, bool ids_allowed) {
    auto body = protocol::parse_json<json>(text, "the request body");
    if (!body) {
        return fail(body.error().code, body.error().message);
    }
    if (!body->is_object()) {
        return fail(errc::invalid_argument, "the body must be a JSON object of filters");
    }
    protocol::request rq;
    for (const auto& [key, v] : body->items()) {
        std::string* text_field = key == "state"     ? &rq.state
                                  : key == "queue"   ? &rq.queue
                                  : key == "handler" ? &rq.handler
                                  : key == "tag"     ? &rq.tag
                                                     : nullptr;
        int64_t* time_field = key == "since_ms" ? &rq.since_ms : key == "until_ms" ? &rq.until_ms : nullptr;
        int64_t* time_text = key == "since" ? &rq.since_ms : key == "until" ? &rq.until_ms : nullptr;
        if (text_field != nullptr && v.is_string()) {
            *text_field = v.get<std::string>();
        } else if (time_field != nullptr && v.is_number_integer()) {
            *time_field = v.get<int64_t>();
        } else if (time_text != nullptr && v.is_string()) {
            // As the listing reads its since/until: ISO 8601 or a duration ago.
            auto ms = protocol::parse_time_ms(v.get<std::string>());
            if (!ms) {
                return fail(ms.error().code, key + ": " + ms.error().message);
            }
            *time_text = std::max<int64_t>(*ms, 1);
        } else if (key == "all" && v.is_boolean()) {
            rq.all = v.get<bool>();
        } else if (key == "ids" && ids_allowed && v.is_array()) {
            for (const auto& id : v) {
                if (!id.is_string()) {
                    return fail(errc::invalid_argument, "ids must be an array of task ids");
                }
                rq.ids.push_back(id.get<std::string>());
            }
        } else {
            return fail(errc::invalid_argument, "unknown field or wrong type: " + key);
        }
    }
    return rq;
}

handler_fn bulk(const api_env& e, std::string_view cmd, bool ids_allowed) {
    return [&e, cmd, ids_allowed](const httplib::Request& req, httplib::Response& res) {
        auto rq = filter_body(req.body, ids_allowed);
        if (!rq) {
            send_error(res, rq.error().code, rq.error().message);
            return;
        }
        if (auto rep = ask(e, res, cmd, std::move(*rq))) {
            send_job(res, *rep);
        }
    };
}

handler_fn by_path(const api_env& e, std::string_view cmd, bool queue) {
    return [&e, cmd, queue](const httplib::Request& req, httplib::Response& res) {
        protocol::request rq;
        (queue ? rq.queue : rq.id) = req.matches[1];
        if (auto rep = ask(e, res, cmd, std::move(rq))) {
            send_job(res, *rep);
        }
    };
}

void job(const api_env& e, const httplib::Request& req, httplib::Response& res) {
    const std::string text = req.matches[1];
    protocol::request rq;
    auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), rq.job);
    if (ec != std::errc() || p != text.data() + text.size() || rq.job == 0) {
        send_error(res, errc::invalid_argument, "a job id is a positive integer");
        return;
    }
    if (auto rep = ask(e, res, protocol::cmd::job, std::move(rq)); rep && rep->job) {
        send_json(res, 200, job_json(*rep->job));
    }
}

}  // namespace

void add_job_routes(router& srv, const std::shared_ptr<const api_env>& env) {
    const auto& e = *env;
    srv.Post(R"(/api/v1/queues/([^/]+)/purge)", guarded(env, role::write, by_path(e, protocol::cmd::purge, true)));
    srv.Delete(R"(/api/v1/tasks/([^/]+))", guarded(env, role::write, by_path(e, protocol::cmd::remove, false)));
    srv.Post("/api/v1/tasks/delete", guarded(env, role::write, bulk(e, protocol::cmd::remove, true)));
    srv.Post("/api/v1/tasks/retry", guarded(env, role::write, bulk(e, protocol::cmd::retry, false)));
    srv.Post("/api/v1/tasks/cancel", guarded(env, role::write, bulk(e, protocol::cmd::cancel, false)));
    srv.Post(R"(/api/v1/tasks/([^/]+)/run-now)", guarded(env, role::write, by_path(e, protocol::cmd::run_now, false)));
    srv.Get(R"(/api/v1/jobs/([^/]+))",
            guarded(env, role::read, [&e](const httplib::Request& req, httplib::Response& res) { job(e, req, res); }));
}

}  // namespace taskmill::broker::http
