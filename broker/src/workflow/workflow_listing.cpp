// WORKFLOWS: pages of workflow summaries, newest first, read by a reverse
// scan of the workflows table. Its keys are the workflows' ids in hex, and
// ids are time-ordered, so key order is creation order: a page reads from
// its cursor backwards and never more than list_scan_budget records, what
// ever the table holds.
#include <algorithm>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/peer_text.hpp>

#include "model/message_size.hpp"
#include "workflow/workflow_engine.hpp"

namespace taskmill::broker {
namespace {

using json = nlohmann::json;
namespace cmd = protocol::cmd;

constexpr uint32_t default_page = 100;
constexpr uint32_t max_page = 1000;
// A summary shows at most this much of a workflow's name (WF_STATUS has it
// whole), so that a page of summaries stays small.
constexpr std::size_t summary_name_max = 256;
// The bound of a summary's size without its name: keys, id, state, numbers.
constexpr std::size_t summary_bound = 192;

struct listing_request {
    std::optional<workflow_state> state;
    uint32_t limit = default_page;
    std::string before;  // a workflow id: list those created before it
};

result<listing_request> read_request(const protocol::request& rq) {
    listing_request out;
    if (!rq.state.empty()) {
        out.state = parse_workflow_state(rq.state);
        if (!out.state) {
            return fail(errc::invalid_argument,
                        "unknown workflow state " + rq.state + " (RUNNING SUCCEEDED FAILED CANCELLED)");
        }
    }
    out.limit = rq.limit == 0 ? default_page : std::min(rq.limit, max_page);
    if (!rq.before.empty()) {
        auto id = parse_task_id(rq.before, "before");
        if (!id) {
            return fail(errc::invalid_argument, "before must be the `next` of a WORKFLOWS reply (a workflow id)");
        }
        out.before = to_hex(*id);
    }
    return out;
}

// The longest prefix of `s` of at most `max` bytes that does not cut a
// UTF-8 sequence.
std::string utf8_prefix(const std::string& s, std::size_t max) {
    if (s.size() <= max) {
        return s;
    }
    std::size_t n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        --n;
    }
    return s.substr(0, n);
}

json summary(const workflow& w) {
    std::size_t done = 0;
    std::size_t failed = 0;
    for (const auto& s : w.steps) {
        done += step_final(s.state) ? 1 : 0;
        failed += (s.state == step_state::failed || s.state == step_state::expired) ? 1 : 0;
    }
    return {{"id", w.id},
            {"name", utf8_prefix(w.name, summary_name_max)},
            {"state", to_string(w.state)},
            {"steps", w.steps.size()},
            {"done", done},
            {"failed", failed},
            {"created_ms", w.created_ms},
            {"finished_ms", w.finished_ms}};
}

}  // namespace

void workflow_engine::list(const std::string& peer, const protocol::request& rq) {
    auto req = read_request(rq);
    if (!req) {
        ops_.reply_error(peer, cmd::workflows, rq.req, req.error().code, req.error().message);
        return;
    }
    json page = json::array();
    std::string next;       // "" = the scan reached the oldest workflow
    std::string last_read;  // the key of the last record read
    uint32_t budget = ops_.list_scan_budget();
    std::size_t bytes = envelope_bound + 64;
    const std::size_t max_body = ops_.max_body();
    ops_.scan_from(table::workflows, req->before, true, [&](std::string_view key, std::string_view value) {
        if (key == req->before) {
            return true;  // the cursor itself was on the previous page
        }
        if (budget == 0) {
            next = last_read;  // every workflow above it was read
            return false;
        }
        --budget;
        auto w = decode_workflow(value);
        if (!w) {
            log_.error("workflow record {} unreadable: {}", protocol::printable(key), w.error().message);
        } else if (!req->state || w->state == *req->state) {
            auto s = summary(*w);
            const std::size_t size = summary_bound + s["name"].get_ref<const std::string&>().size();
            if (!page.empty() && bytes + size > max_body) {
                next = last_read;  // the next page starts with this one
                return false;
            }
            bytes += size;
            page.push_back(std::move(s));
            if (page.size() >= req->limit) {
                next = std::string(key);
                return false;
            }
        }
        last_read = std::string(key);
        return true;
    });
    protocol::reply rep;
    rep.req = rq.req;
    rep.data = protocol::json_to_msgpack(json{{"workflows", page}});
    rep.next = std::move(next);
    ops_.reply(peer, cmd::workflows, rep);
}

}  // namespace taskmill::broker
