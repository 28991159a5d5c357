// workflow_builder and workflow_client (see taskmill/client/workflow.hpp).
// The definition travels as msgpack in the request's `data`; status and
// schedule listings come back the same way in the reply's `data`.
#include <taskmill/client/workflow.hpp>

#include <thread>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "core.hpp"

namespace taskmill::client {

using nlohmann::json;

workflow_step& workflow_builder::step(std::string name, std::string handler, json payload,
                                      std::vector<std::string> depends_on) {
    workflow_step s;
    s.name = std::move(name);
    s.handler = std::move(handler);
    s.payload = std::move(payload);
    s.depends_on = std::move(depends_on);
    steps_.push_back(std::move(s));
    return steps_.back();
}

workflow_builder& workflow_builder::fail_fast(bool yes) {
    fail_fast_ = yes;
    return *this;
}

json workflow_builder::to_json() const {
    json steps = json::array();
    for (const auto& s : steps_) {
        json j = {{"name", s.name}, {"handler", s.handler}, {"depends_on", s.depends_on}};
        if (!s.payload.is_null()) j["payload"] = s.payload;
        if (!s.queue.empty()) j["queue"] = s.queue;
        if (s.priority) j["priority"] = *s.priority;
        if (s.retries) j["retries"] = *s.retries;
        if (s.timeout) j["timeout_ms"] = s.timeout->count();
        steps.push_back(std::move(j));
    }
    json out = {{"on_failure", fail_fast_ ? "fail_fast" : "continue"}, {"steps", steps}};
    if (!name_.empty()) out["name"] = name_;
    return out;
}

struct workflow_client::impl {
    std::shared_ptr<detail::core> core;
};

workflow_client::workflow_client(client_options options) : impl_(std::make_unique<impl>()) {
    auto ep = resolve_endpoint(options.endpoint);
    impl_->core = std::make_shared<detail::core>(ep, options);
}

workflow_client::~workflow_client() { impl_->core->stop(); }

namespace {

result<json> data_of(const result<protocol::reply>& r) {
    if (!r) return failure{r.error()};
    // WF_STATUS wraps step results (each within max_nesting) three levels deep.
    if (!protocol::msgpack_within_nesting(r->data, protocol::max_nesting + 8)) {
        return fail(errc::internal, "the broker's reply nests too deeply to read");
    }
    auto j = json::from_msgpack(r->data.begin(), r->data.end(), true, false);
    if (r->data.empty() || j.is_discarded()) {
        return fail(errc::internal, "the broker's reply carries no readable data");
    }
    return j;
}

}  // namespace

result<std::string> workflow_client::submit(const json& definition) {
    protocol::request rq;
    rq.data = protocol::json_to_msgpack(definition);
    auto r = impl_->core->call(std::string(protocol::cmd::wf_submit), std::move(rq));
    if (!r) return failure{r.error()};
    if (r->ids.empty()) return fail(errc::internal, "WF_SUBMIT reply without an id");
    return r->ids.front();
}

result<json> workflow_client::status(const std::string& id) {
    protocol::request rq;
    rq.id = id;
    return data_of(impl_->core->call(std::string(protocol::cmd::wf_status), std::move(rq)));
}

result<json> workflow_client::wait(const std::string& id, milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    auto pause = milliseconds(20);
    for (;;) {
        auto s = status(id);
        if (!s || (*s)["state"] != "RUNNING") return s;
        if (std::chrono::steady_clock::now() >= until) {
            return fail(errc::conflict, "workflow " + id + " still RUNNING after the timeout");
        }
        std::this_thread::sleep_for(pause);  // polling interval, not synchronisation
        pause = std::min(pause * 2, milliseconds(500));
    }
}

result<std::string> workflow_client::cancel(const std::string& id) {
    protocol::request rq;
    rq.id = id;
    auto r = impl_->core->call(std::string(protocol::cmd::wf_cancel), std::move(rq));
    if (!r) return failure{r.error()};
    return r->note;
}

result<json> workflow_client::schedules() {
    return data_of(impl_->core->call(std::string(protocol::cmd::schedules), protocol::request{}));
}

// ---- workflow listing and schedule control ----

result<workflow_page> workflow_client::workflows(const workflow_filter& filter) {
    protocol::request rq;
    rq.state = filter.state;
    rq.limit = filter.limit;
    rq.before = filter.before;
    auto r = impl_->core->call(std::string(protocol::cmd::workflows), std::move(rq));
    auto data = data_of(r);
    if (!data) return failure{data.error()};
    workflow_page page;
    page.next = r->next;
    try {
        for (const auto& w : data->at("workflows")) {
            workflow_summary s;
            s.id = w.at("id").get<std::string>();
            s.name = w.value("name", "");
            s.state = w.at("state").get<std::string>();
            s.steps = w.value("steps", uint64_t{0});
            s.done = w.value("done", uint64_t{0});
            s.failed = w.value("failed", uint64_t{0});
            s.created_ms = w.value("created_ms", int64_t{0});
            s.finished_ms = w.value("finished_ms", int64_t{0});
            page.workflows.push_back(std::move(s));
        }
    } catch (const json::exception& e) {
        return fail(errc::internal, std::string("the broker's WORKFLOWS reply is malformed: ") + e.what());
    }
    return page;
}

result<std::string> workflow_client::trigger_schedule(const std::string& name) {
    protocol::request rq;
    rq.name = name;
    auto r = impl_->core->call(std::string(protocol::cmd::schedule_trigger), std::move(rq));
    if (!r) return failure{r.error()};
    if (r->ids.empty()) return fail(errc::internal, "SCHEDULE_TRIGGER reply without a task id");
    return r->ids.front();
}

result<json> workflow_client::pause_schedule(const std::string& name) {
    protocol::request rq;
    rq.name = name;
    return data_of(impl_->core->call(std::string(protocol::cmd::schedule_pause), std::move(rq)));
}

result<json> workflow_client::resume_schedule(const std::string& name) {
    protocol::request rq;
    rq.name = name;
    return data_of(impl_->core->call(std::string(protocol::cmd::schedule_resume), std::move(rq)));
}

}  // namespace taskmill::client
