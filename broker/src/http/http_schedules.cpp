// Workflow listing and schedule control under /api/v1/ (docs/HTTP.md,
// "Workflows and schedules"): GET /api/v1/workflows pages the workflows
// newest first; POST /api/v1/schedules/NAME/trigger, /pause and /resume
// act on a schedule of broker.ini.
#include <algorithm>
#include <array>
#include <charconv>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "http/http_routes.hpp"

namespace taskmill::broker::http {

namespace {

using nlohmann::json;

// Loop trips one GET may make to fill `limit` when the broker stops at its
// scan budget: the cost of a page stays bounded whatever the store holds.
constexpr int max_trips = 4;

json data_json(const protocol::reply& rep) {
    return rep.data.empty() ? json::object() : protocol::msgpack_to_json(rep.data, protocol::max_nesting);
}

// The query of GET /api/v1/workflows: state, limit, before; any other
// parameter is refused (a typo would otherwise list everything).
result<protocol::request> workflows_request(const httplib::Request& req) {
    static constexpr std::array<std::string_view, 3> known = {"state", "limit", "before"};
    for (const auto& [name, value] : req.params) {
        if (std::find(known.begin(), known.end(), name) == known.end()) {
            return fail(errc::invalid_argument, "unknown query parameter " + name + " (known: state, limit, before)");
        }
    }
    protocol::request rq;
    rq.state = req.get_param_value("state");
    rq.before = req.get_param_value("before");
    if (req.has_param("limit")) {
        const auto v = req.get_param_value("limit");
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), rq.limit);
        if (ec != std::errc() || p != v.data() + v.size() || rq.limit < 1 || rq.limit > 1000) {
            return fail(errc::invalid_argument, "query parameter limit must be an integer in [1, 1000]");
        }
    }
    return rq;
}

void list_workflows(const api_env& env, const httplib::Request& req, httplib::Response& res) {
    auto rq = workflows_request(req);
    if (!rq) {
        send_error(res, rq.error().code, rq.error().message);
        return;
    }
    const std::size_t want = rq->limit == 0 ? 100 : rq->limit;
    json list = json::array();
    std::string next;
    for (int trip = 0; trip < max_trips; ++trip) {
        auto rep = ask(env, res, protocol::cmd::workflows, *rq);
        if (!rep) {
            return;
        }
        for (auto& w : data_json(*rep).value("workflows", json::array())) {
            list.push_back(std::move(w));
        }
        next = rep->next;
        if (next.empty() || list.size() >= want) {
            break;
        }
        rq->before = next;
        rq->limit = static_cast<uint32_t>(want - list.size());
    }
    send_json(res, 200, {{"workflows", list}, {"next", next}});
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
