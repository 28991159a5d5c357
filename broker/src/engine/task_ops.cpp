// The engine as task_ops: what workflows and schedules may do with tasks.
#include <algorithm>

#include "engine/engine.hpp"

namespace taskmill::broker {

task_record engine::submit(const protocol::task_spec& spec) {
    auto r = create(spec, "");
    if (r->eta_ms > now_) {
        delay(*r, r->eta_ms, task_state::pending);
    } else {
        enqueue(*r);
    }
    count("submitted");
    return std::move(r.value());
}

void engine::cancel(const task_id& id, const std::string& why) {
    if (auto r = load(id); r && !is_final(r->state)) {
        protocol::reply ignored;
        cancel(*r, ignored, why);
    }
}

bool engine::runnable(const std::string& handler) const {
    auto ref = parse_handler(handler);
    if (!ref) {
        return false;
    }
    for (const auto& [id, w] : workers_.all()) {
        if (w.can_run(*ref)) {
            return true;
        }
    }
    return false;
}

std::optional<std::string> engine::get(table t, std::string_view key) {
    auto raw = txn_->get(t, key);
    if (!raw) {
        if (raw.error().code != errc::not_found) {
            throw store_failure(raw.error().code, "store read failed: " + raw.error().message);
        }
        return std::nullopt;
    }
    return std::move(raw.value());
}

void engine::put(table t, std::string_view key, std::string_view value) { check(txn_->put(t, key, value), "put"); }

void engine::scan(table t, const scan_fn& fn) { check(txn_->scan(t, "", false, fn), "scan"); }

void engine::erase(table t, std::string_view key) { check(txn_->erase(t, key), "erase"); }

void engine::scan_from(table t, std::string_view from, bool reverse, const scan_fn& fn) {
    check(txn_->scan(t, from, reverse, fn), "scan");
}

uint32_t engine::list_scan_budget() const { return std::max<uint32_t>(cfg_.list_scan_budget, 1); }

}  // namespace taskmill::broker
