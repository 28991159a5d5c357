// TASKS: pages of tasks by state, queue, handler, tag and time, read from
// the listing indexes (index/task_index.hpp) rather than from every record;
// QUEUED and RUNNING tasks from memory (index/live_index.hpp).
#include <algorithm>

#include "engine/engine.hpp"
#include "model/message_size.hpp"

namespace taskmill::broker {

namespace {

constexpr uint32_t max_list = 10000;

result<task_filter> listing_filter(const protocol::request& rq) {
    task_filter f;
    if (!rq.state.empty()) {
        f.state = parse_task_state(rq.state);
        if (!f.state) {
            return fail(errc::invalid_argument, "unknown state " + rq.state);
        }
    }
    if (rq.handler.find('@') != std::string::npos) {
        return fail(errc::invalid_argument, "handler must be a name without @version: " + rq.handler);
    }
    if (rq.since_ms < 0 || rq.until_ms < 0) {
        return fail(errc::invalid_argument, "since_ms and until_ms must be unix ms (0 = open)");
    }
    if (rq.since_ms > 0 && rq.until_ms > 0 && rq.since_ms >= rq.until_ms) {
        return fail(errc::invalid_argument, "since_ms must be before until_ms");
    }
    f.queue = rq.queue;
    f.handler = rq.handler;
    f.tag = rq.tag;
    f.since_ms = rq.since_ms;
    f.until_ms = rq.until_ms;
    return f;
}

}  // namespace

void engine::tasks_cmd(const std::string& peer, const protocol::request& rq) {
    auto f = listing_filter(rq);
    if (!f) {
        reply_error(peer, protocol::cmd::tasks, rq.req, f.error().code, f.error().message);
        return;
    }
    const uint32_t limit = rq.limit == 0 ? 100 : std::min(rq.limit, max_list);
    protocol::reply rep;
    rep.req = rq.req;
    auto next = list_tasks(*f, rq.before, limit, rep.tasks);
    if (!next) {
        reply_error(peer, protocol::cmd::tasks, rq.req, next.error().code, next.error().message);
        return;
    }
    rep.next = std::move(*next);
    reply_front(peer, protocol::cmd::tasks, rep);
}

// Adds `r` to a page unless the reply is full (bytes: the bound of its size
// so far). A first task too big alone is cut down to fit.
bool engine::add_to_page(const task_record& r, std::vector<protocol::task_info>& page, std::size_t& bytes) const {
    auto info = to_info(r);
    if (page.empty()) {
        fit_alone(info, out_max_body_);
    } else if (bytes + size_bound(info) > out_max_body_) {
        return false;
    }
    bytes += size_bound(info);
    page.push_back(std::move(info));
    return true;
}

// A page from the indexes: at most list_scan_budget entries read, so a
// sparse match answers with what it found and a `next` to go on from.
result<std::string> engine::list_tasks(const task_filter& f, const std::string& before, uint32_t limit,
                                       std::vector<protocol::task_info>& page) {
    std::size_t bytes = envelope_bound;
    auto next = walk_tasks(f, before, list_scan_budget(), [&](const task_id& id) {
        auto r = lookup(id);  // a running task as it is in memory
        if (!r || !f.matches(*r)) {
            return task_index::step::next;
        }
        if (!add_to_page(*r, page, bytes)) {
            return task_index::step::stop_before;  // the next page starts with it
        }
        return page.size() >= limit ? task_index::step::stop_after : task_index::step::next;
    });
    if (!next && next.error().code != errc::invalid_argument) {
        throw store_failure(next.error().code, "store read failed: " + next.error().message);
    }
    return next;
}

result<std::string> engine::walk_tasks(const task_filter& f, std::string_view cursor, uint32_t budget,
                                       const std::function<task_index::step(const task_id&)>& fn) {
    return listed_live(f) ? live_.walk(f, cursor, budget, fn) : task_index::walk(*txn_, f, cursor, budget, fn);
}

}  // namespace taskmill::broker
