// The public client API: each call is a request handed to the I/O thread.
#include <taskmill/client/client.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <random>

#include <taskmill/protocol/frame.hpp>

#include <nlohmann/json.hpp>

#include "convert.hpp"
#include "core.hpp"

namespace taskmill::client {

namespace cmd = protocol::cmd;
using detail::core;
using detail::handle_access;
using detail::handle_state;

std::string resolve_endpoint(const std::string& explicit_endpoint) {
    if (!explicit_endpoint.empty()) {
        return explicit_endpoint;
    }
    if (const char* env = std::getenv("TASKMILL_BROKER"); env != nullptr && *env != '\0') {
        return env;
    }
    return default_endpoint;
}

client::client(client_options options) : endpoint_(resolve_endpoint(options.endpoint)) {
    if (options.max_batch == 0) {
        options.max_batch = 1;
    }
    core_ = std::make_shared<core>(endpoint_, options);
}

client::client(const std::string& endpoint) : client(client_options{endpoint}) {}

client::~client() { core_->stop(); }

// ---- submit ----

namespace {

// Collects the acks of a batch's frames; completes the promise when the last
// frame answers. Touched only on the I/O thread (the acks' completions).
struct batch_state {
    std::weak_ptr<core> owner;
    std::vector<std::vector<std::string>> ids;       // per frame
    std::vector<std::vector<std::string>> warnings;  // per frame
    std::vector<std::size_t> sizes;                  // tasks per frame
    std::size_t outstanding = 0;
    std::optional<error> first_error;
    std::size_t acked = 0;
    std::promise<result<std::vector<task_handle>>> promise;
};

void finish_batch(batch_state& b) {
    if (b.first_error) {
        auto e = *b.first_error;
        e.message += " (" + std::to_string(b.acked) + " of the batch's tasks were submitted)";
        b.promise.set_value(failure{e});
        return;
    }
    auto owner = b.owner.lock();
    std::vector<task_handle> handles;
    handles.reserve(b.acked);
    for (std::size_t f = 0; f < b.ids.size(); ++f) {
        for (auto& id : b.ids[f]) {
            auto s = std::make_shared<handle_state>();
            s->id = std::move(id);
            s->warnings = b.warnings[f];
            s->owner = b.owner;
            if (owner) {
                // We are on the I/O thread: DONE can only come after this.
                owner->watch(s, handles.empty() ? b.acked : 0);
                handles.push_back(detail::make_watched_handle(std::move(s)));
            } else {
                handles.push_back(handle_access::make(std::move(s)));
            }
        }
    }
    b.promise.set_value(std::move(handles));
}

void on_submit_ack(const std::shared_ptr<batch_state>& b, std::size_t frame, result<protocol::reply> rep) {
    if (!rep) {
        if (!b->first_error) {
            b->first_error = rep.error();
        }
    } else if (rep->ids.size() != b->sizes[frame]) {
        if (!b->first_error) {
            b->first_error = error{errc::internal, "broker acked " + std::to_string(rep->ids.size()) + " ids for " +
                                                       std::to_string(b->sizes[frame]) + " tasks"};
        }
    } else {
        b->acked += rep->ids.size();
        b->ids[frame] = std::move(rep->ids);
        b->warnings[frame] = std::move(rep->warnings);
    }
    if (--b->outstanding == 0) {
        finish_batch(*b);
    }
}

template <typename T> result<T> error_of(const result<protocol::reply>& r) { return failure{r.error()}; }

// A client that may send a SUBMIT twice (several endpoints: see client.hpp)
// keys every task, so the broker makes one task of both.
void add_missing_keys(std::vector<protocol::request>& frames) {
    thread_local std::mt19937_64 gen{(static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}()};
    char text[40];
    for (auto& f : frames) {
        for (auto& t : f.tasks) {
            if (t.key.empty()) {
                std::snprintf(text, sizeof text, "auto:%016llx%016llx", static_cast<unsigned long long>(gen()),
                              static_cast<unsigned long long>(gen()));
                t.key = text;
            }
        }
    }
}

}  // namespace

std::future<result<std::vector<task_handle>>> client::submit_async(std::vector<task_options> tasks) {
    auto batch = std::make_shared<batch_state>();
    auto future = batch->promise.get_future();
    if (tasks.empty()) {
        batch->promise.set_value(std::vector<task_handle>{});
        return future;
    }
    const auto per_frame = core_->options().max_batch;
    const auto frames = (tasks.size() + per_frame - 1) / per_frame;
    batch->owner = core_;
    batch->ids.resize(frames);
    batch->warnings.resize(frames);
    batch->outstanding = frames;
    std::vector<protocol::request> requests(frames);
    for (std::size_t f = 0; f < frames; ++f) {
        const auto end = std::min(tasks.size(), (f + 1) * per_frame);
        requests[f].tasks.reserve(end - f * per_frame);
        for (std::size_t i = f * per_frame; i < end; ++i) {
            requests[f].tasks.push_back(detail::to_wire(std::move(tasks[i])));
        }
        requests[f].strict = core_->options().strict;
        batch->sizes.push_back(requests[f].tasks.size());
    }
    if (core_->resends()) {
        add_missing_keys(requests);
    }
    // Every size is known before the first send, so no ack sees a partial batch.
    for (std::size_t f = 0; f < frames; ++f) {
        core_->send(std::string(cmd::submit), std::move(requests[f]), core_->options().request_timeout,
                    [batch, f](result<protocol::reply> rep) { on_submit_ack(batch, f, std::move(rep)); });
    }
    return future;
}

result<std::vector<task_handle>> client::submit(const std::vector<task_options>& tasks) {
    return submit_async(tasks).get();
}

result<task_handle> client::submit(const task_options& task) {
    auto r = submit(std::vector<task_options>{task});
    if (!r) {
        return failure{r.error()};
    }
    return std::move(r->front());
}

task_handle client::handle(const std::string& id) {
    auto s = std::make_shared<handle_state>();
    s->id = id;
    s->owner = core_;
    return handle_access::make(std::move(s));
}

// ---- queries and changes ----

result<task_info> client::status(const std::string& id) { return handle(id).status(); }

result<task_info> client::wait(const std::string& id, std::optional<milliseconds> timeout) {
    return handle(id).get(timeout);
}

namespace {

result<change_info> change(core& c, std::string_view command, protocol::request r) {
    auto rep = c.call(std::string(command), std::move(r));
    if (!rep) {
        return error_of<change_info>(rep);
    }
    return change_info{std::move(rep->ids), std::move(rep->note)};
}

}  // namespace

result<change_info> client::cancel(const std::string& id) {
    protocol::request r;
    r.id = id;
    return change(*core_, cmd::cancel, std::move(r));
}

result<change_info> client::cancel_tag(const std::string& tag) {
    protocol::request r;
    r.tag = tag;
    return change(*core_, cmd::cancel, std::move(r));
}

result<change_info> client::retry(const std::string& id) {
    protocol::request r;
    r.id = id;
    return change(*core_, cmd::retry, std::move(r));
}

// The broker reads a bounded number of tasks per request and says where it
// stopped (`next`): ask again from there until `limit` tasks are found or
// the store is read to its end.
result<std::vector<task_info>> client::tasks(const task_filter& filter) {
    auto page = tasks_page(filter);
    if (!page) {
        return failure{page.error()};
    }
    return std::move(page->tasks);
}

result<task_page> client::tasks_page(const task_filter& filter) {
    auto unix_ms = [](const std::optional<time_point>& t) {
        return t ? std::max<int64_t>(std::chrono::floor<milliseconds>(t->time_since_epoch()).count(), 1) : 0;
    };
    const uint32_t want = filter.limit == 0 ? 100 : filter.limit;
    task_page out;
    std::string before = filter.before;
    do {
        protocol::request r;
        r.state = filter.state;
        r.queue = filter.queue;
        r.tag = filter.tag;
        r.handler = filter.handler;
        r.since_ms = unix_ms(filter.since);
        r.until_ms = unix_ms(filter.until);
        r.limit = want - static_cast<uint32_t>(out.tasks.size());
        r.before = before;
        auto rep = core_->call(std::string(cmd::tasks), std::move(r));
        if (!rep) {
            return error_of<task_page>(rep);
        }
        for (const auto& t : rep->tasks) {
            out.tasks.push_back(detail::from_wire(t));
        }
        before = rep->next;
    } while (!before.empty() && out.tasks.size() < want);
    out.next = before;
    return out;
}

result<stats_info> client::stats() {
    auto rep = core_->call(std::string(cmd::stats), {});
    if (!rep) {
        return error_of<stats_info>(rep);
    }
    if (!rep->stats) {
        return fail(errc::internal, "STATS reply without stats");
    }
    return detail::from_wire(*rep->stats);
}

result<std::vector<worker_info>> client::workers() {
    auto rep = core_->call(std::string(cmd::workers), {});
    if (!rep) {
        return error_of<std::vector<worker_info>>(rep);
    }
    std::vector<worker_info> out;
    for (const auto& w : rep->workers) {
        out.push_back(detail::from_wire(w));
    }
    return out;
}

namespace {

result<cluster_info> cluster_view(const result<protocol::reply>& rep, std::string_view command) {
    if (!rep) {
        return error_of<cluster_info>(rep);
    }
    try {
        return detail::cluster_from_json(nlohmann::json::from_msgpack(rep->data, true, false));
    } catch (const nlohmann::json::exception& e) {
        return fail(errc::internal, std::string(command) + " reply does not decode: " + e.what());
    }
}

}  // namespace

result<cluster_info> client::cluster_status() {
    return cluster_view(core_->call(std::string(cmd::cluster), {}), cmd::cluster);
}

result<cluster_info> client::cluster_add(uint64_t id, const std::string& address) {
    protocol::request rq;
    rq.member = id;
    rq.address = address;
    return cluster_view(core_->call(std::string(cmd::cluster_add), std::move(rq)), cmd::cluster_add);
}

result<cluster_info> client::cluster_remove(uint64_t id) {
    protocol::request rq;
    rq.member = id;
    return cluster_view(core_->call(std::string(cmd::cluster_remove), std::move(rq)), cmd::cluster_remove);
}

result<cluster_info> client::cluster_transfer(uint64_t id) {
    protocol::request rq;
    rq.member = id;
    return cluster_view(core_->call(std::string(cmd::cluster_transfer), std::move(rq)), cmd::cluster_transfer);
}

// ---- queue control and flow limits ----

namespace {

result<queue_stats> one_queue(result<protocol::reply> rep, std::string_view command) {
    if (!rep) {
        return error_of<queue_stats>(rep);
    }
    if (rep->queues.empty()) {
        return fail(errc::internal, std::string(command) + " reply without the queue");
    }
    return detail::from_wire(rep->queues.front());
}

protocol::request limit_request(const limit_change& change) {
    protocol::request r;
    r.rate = change.rate;
    r.burst = change.burst;
    r.max_running = change.max_running;
    return r;
}

}  // namespace

result<std::vector<queue_stats>> client::queues() {
    auto rep = core_->call(std::string(cmd::queues), {});
    if (!rep) {
        return error_of<std::vector<queue_stats>>(rep);
    }
    std::vector<queue_stats> out;
    for (const auto& q : rep->queues) {
        out.push_back(detail::from_wire(q));
    }
    return out;
}

result<queue_stats> client::pause(const std::string& queue) {
    protocol::request r;
    r.queue = queue;
    return one_queue(core_->call(std::string(cmd::pause), std::move(r)), cmd::pause);
}

result<queue_stats> client::resume(const std::string& queue) {
    protocol::request r;
    r.queue = queue;
    return one_queue(core_->call(std::string(cmd::resume), std::move(r)), cmd::resume);
}

result<queue_stats> client::limit_queue(const std::string& queue, const limit_change& change) {
    auto r = limit_request(change);
    r.queue = queue;
    return one_queue(core_->call(std::string(cmd::limit), std::move(r)), cmd::limit);
}

result<handler_stats> client::limit_handler(const std::string& handler, const limit_change& change) {
    auto r = limit_request(change);
    r.handler = handler;
    auto rep = core_->call(std::string(cmd::limit), std::move(r));
    if (!rep) {
        return error_of<handler_stats>(rep);
    }
    if (!rep->stats || rep->stats->handlers.empty()) {
        return fail(errc::internal, "LIMIT reply without the handler");
    }
    const auto& h = rep->stats->handlers.front();
    return handler_stats{h.name, h.running, detail::from_wire(h.limits)};
}

result<milliseconds> client::ping(std::optional<milliseconds> timeout) {
    auto start = detail::steady::now();
    auto rep = core_->call(std::string(cmd::ping), {}, timeout);
    if (!rep) {
        return error_of<milliseconds>(rep);
    }
    return std::chrono::duration_cast<milliseconds>(detail::steady::now() - start);
}

}  // namespace taskmill::client
