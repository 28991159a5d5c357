// The operator verbs of the client: purge, cancel/retry/delete by filter,
// run-now, and the bulk jobs they start.
#include <taskmill/client/client.hpp>

#include <thread>

#include "convert.hpp"
#include "core.hpp"

namespace taskmill::client {

namespace cmd = protocol::cmd;

namespace {

// Between two looks at a running job.
constexpr milliseconds job_poll{50};

protocol::request to_request(const bulk_filter& f) {
    protocol::request r;
    r.state = f.state;
    r.queue = f.queue;
    r.handler = f.handler;
    r.tag = f.tag;
    r.since_ms = f.since ? detail::to_unix_ms(*f.since) : 0;
    r.until_ms = f.until ? detail::to_unix_ms(*f.until) : 0;
    r.all = f.all;
    return r;
}

job_info from_wire(const protocol::job_info& j) {
    job_info out;
    out.id = j.id;
    out.kind = j.kind;
    out.filter = j.filter;
    out.state = j.state;
    out.matched = j.matched;
    out.changed = j.changed;
    out.started = detail::from_unix_ms(j.started_ms);
    out.finished = detail::from_unix_ms(j.finished_ms);
    return out;
}

// A reply with a job, or one that did the change at once (a single id, a
// tag with few tasks): the latter reads as a job that is done.
result<job_info> job_reply(detail::core& c, std::string_view command, protocol::request r, std::string kind) {
    auto rep = c.call(std::string(command), std::move(r));
    if (!rep) {
        return failure{rep.error()};
    }
    job_info out;
    if (rep->job) {
        out = from_wire(*rep->job);
    } else {
        out.kind = std::move(kind);
        out.state = "done";
        out.matched = rep->ids.size();
        out.changed = rep->ids.size();
        out.filter = rep->note;
    }
    out.ids = std::move(rep->ids);
    return out;
}

}  // namespace

result<job_info> client::purge(const std::string& queue) {
    protocol::request r;
    r.queue = queue;
    return job_reply(*core_, cmd::purge, std::move(r), "purge");
}

result<job_info> client::cancel(const bulk_filter& filter) {
    return job_reply(*core_, cmd::cancel, to_request(filter), "cancel");
}

result<job_info> client::retry(const bulk_filter& filter) {
    return job_reply(*core_, cmd::retry, to_request(filter), "retry");
}

result<job_info> client::remove(const std::vector<std::string>& ids) {
    if (ids.empty()) {
        return fail(errc::invalid_argument, "remove: no task ids");
    }
    protocol::request r;
    r.ids = ids;
    return job_reply(*core_, cmd::remove, std::move(r), "delete");
}

result<job_info> client::remove(const bulk_filter& filter) {
    return job_reply(*core_, cmd::remove, to_request(filter), "delete");
}

result<change_info> client::run_now(const std::string& id) {
    protocol::request r;
    r.id = id;
    auto rep = core_->call(std::string(cmd::run_now), std::move(r));
    if (!rep) {
        return failure{rep.error()};
    }
    return change_info{std::move(rep->ids), std::move(rep->note)};
}

result<job_info> client::job(uint64_t id) {
    protocol::request r;
    r.job = id;
    auto rep = core_->call(std::string(cmd::job), std::move(r));
    if (!rep) {
        return failure{rep.error()};
    }
    if (!rep->job) {
        return fail(errc::internal, "JOB reply without a job");
    }
    return from_wire(*rep->job);
}

result<job_info> client::wait_job(uint64_t id, std::optional<milliseconds> timeout) {
    const auto deadline = timeout ? std::optional(std::chrono::steady_clock::now() + *timeout) : std::nullopt;
    for (;;) {
        auto j = job(id);
        if (!j || j->done()) {
            return j;
        }
        if (deadline && std::chrono::steady_clock::now() >= *deadline) {
            return fail(errc::conflict, "job " + std::to_string(id) + " still running (" + std::to_string(j->changed) +
                                            " changed so far)");
        }
        std::this_thread::sleep_for(job_poll);
    }
}

}  // namespace taskmill::client
