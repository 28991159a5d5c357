// Workflow listing and schedule control under /api/v1/ (docs/HTTP.md,
// "Workflows and schedules"): GET /api/v1/workflows pages the workflows
// newest first; POST /api/v1/schedules/NAME/trigger, /pause and /resume
// act on a schedule of broker.ini.

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "http/http_routes.hpp"

namespace taskmill::broker::http {

namespace {

using nlohmann::json;

json data_json(const protocol::reply& rep) {
    return rep.data.empty() ? json::object() : protocol::msgpack_to_json(rep.data, protocol::max_nesting);
}

// The query of GET /api/v1/workflows: state, limit, before; any other
// parameter is refused (a typo would otherwise list everything).
result<protocol::request> workflows_request(const httplib::Request& req) {
    if (auto ok = known_params(req, {"state", "limit", "before"}); !ok) {
        return fail(ok.error().code, ok.error().message);
    }
    protocol::request rq;
    rq.state = req.get_param_value("state");
    rq.before = req.get_param_value("before");
    if (auto ok = query_int<uint32_t>(req, "limit", rq.limit, 1, 1000); !ok) {
        return fail(ok.error().code, ok.error().message);
    }
    return rq;
}

void list_workflows(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    auto rq = workflows_request(req);
    if (!rq) {
        send_error(res, rq.error().code, rq.error().message);
        return;
    }
    json list = json::array();
    auto next = page_through(env, res, protocol::cmd::workflows, std::move(*rq), [&](protocol::reply& rep) {
        auto page = data_json(rep).value("workflows", json::array());
        for (auto& w : page) {
            list.push_back(std::move(w));
        }
        return page.size();
    });
    if (!next) {
        return;
    }
    send_json(res, 200, {{"workflows", list}, {"next", *next}});
}

handler_fn schedule_verb(const api_env& env, std::string_view cmd) {
    return [&env, cmd](const httplib::Request& req, httplib::Response& res) {
        protocol::request rq;
        rq.name = req.matches[1];
        auto rep = ask(env, res, cmd, std::move(rq));
        if (!rep) {
            return;
        }
        if (cmd == protocol::cmd::schedule_trigger) {
            send_json(res, 200, {{"id", rep->ids.empty() ? std::string() : rep->ids.front()}});
            return;
        }
        auto out = data_json(*rep);
        if (!rep->note.empty()) {
            out["note"] = rep->note;
        }
        send_json(res, 200, out);
    };
}

}  // namespace

void add_schedule_routes(router& srv, const std::shared_ptr<const api_env>& env) {
    const auto& e = *env;
    srv.Get("/api/v1/workflows", guarded(env, role::read, [&e](const httplib::Request& req, httplib::Response& res) {
                list_workflows(e, req, res);
            }));
    const std::string schedule = R"(/api/v1/schedules/([^/]+))";
    srv.Post(schedule + "/trigger", guarded(env, role::write, schedule_verb(e, protocol::cmd::schedule_trigger)));
    srv.Post(schedule + "/pause", guarded(env, role::write, schedule_verb(e, protocol::cmd::schedule_pause)));
    srv.Post(schedule + "/resume", guarded(env, role::write, schedule_verb(e, protocol::cmd::schedule_resume)));
}

}  // namespace taskmill::broker::http
