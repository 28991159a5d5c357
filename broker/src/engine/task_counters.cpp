#include "engine/task_counters.hpp"

#include <msgpack.hpp>

#include <taskmill/protocol/msgpack_out.hpp>

#include "model/task_record.hpp"
#include "store/keys.hpp"

namespace taskmill::broker {

namespace {

using by_name = std::map<std::string, std::map<std::string, uint64_t>>;

// The stored counters, keyed by state name; nullopt if a name is no state.
std::optional<task_counters::by_queue> by_state(const by_name& stored) {
    task_counters::by_queue out;
    for (const auto& [queue, states] : stored) {
        auto& q = out[queue];
        for (const auto& [name, n] : states) {
            auto s = parse_task_state(name);
            if (!s) {
                return std::nullopt;
            }
            q[*s] = n;
        }
    }
    return out;
}

}  // namespace

void task_counters::moved(const std::string& queue, std::optional<task_state> from, task_state to) {
    auto& q = per_queue_[queue];
    if (from) {
        if (auto& n = q[*from]; n > 0) {
            --n;
        }
    }
    ++q[to];
    dirty_ = true;
}

void task_counters::removed(const std::string& queue, task_state s) {
    auto q = per_queue_.find(queue);
    if (q == per_queue_.end()) {
        return;
    }
    if (auto n = q->second.find(s); n != q->second.end() && n->second > 0) {
        --n->second;
    }
    dirty_ = true;
}

result<void> task_counters::save(transaction& txn) {
    if (!dirty_) {
        return {};
    }
    by_name durable;
    for (const auto& [queue, states] : per_queue_) {
        auto& out = durable[queue];
        for (const auto& [s, n] : states) {
            out[std::string(to_string(s == task_state::running ? task_state::queued : s))] += n;
        }
    }
    auto rc = txn.put(table::meta, keys::meta_counts, protocol::pack_value(durable));
    if (rc) {
        dirty_ = false;
    }
    return rc;
}

result<void> task_counters::recover(transaction& txn, spdlog::logger& log) {
    if (auto raw = txn.get(table::meta, keys::meta_counts)) {
        try {
            auto h = msgpack::unpack(raw->data(), raw->size());
            if (auto counts = by_state(h.get().as<by_name>())) {
                per_queue_ = std::move(*counts);
                return {};
            }
            log.warn("task counters name an unknown state; counting the tasks");
            per_queue_.clear();
        } catch (const std::exception& e) {
            log.warn("task counters unreadable ({}); counting the tasks", e.what());
            per_queue_.clear();
        }
    }
    dirty_ = true;
    return txn.scan(table::tasks, "", false, [&](std::string_view, std::string_view v) {
        if (auto r = decode_record(v)) {
            ++per_queue_[r->queue][r->state];
        }
        return true;
    });
}

}  // namespace taskmill::broker
