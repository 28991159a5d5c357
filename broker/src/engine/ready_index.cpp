#include "engine/ready_index.hpp"

#include <algorithm>

namespace taskmill::broker {

uint32_t ready_index::intern(const std::string& handler) {
    auto [it, inserted] = handler_ids_.try_emplace(handler, static_cast<uint32_t>(handlers_.size()));
    if (inserted) {
        handlers_.push_back(handler);
    }
    return it->second;
}

void ready_index::push(const std::string& queue, int priority, uint32_t handler, const entry& e) {
    auto& slot = queues_[queue];
    auto& f = slot.by_priority[static_cast<std::size_t>(priority)][handler];
    if (f.empty() || f.back().seq < e.seq) {
        f.push_back(e);  // a new task: the common case
    } else {
        // A task that goes back to its old place (see engine::enqueue).
        auto at = std::lower_bound(f.begin(), f.end(), e.seq, [](const entry& x, uint64_t seq) { return x.seq < seq; });
        f.insert(at, e);
    }
    ++slot.count;
    ++total_;
}

void ready_index::remove(const std::string& queue, const task_id& id) {
    auto it = queues_.find(queue);
    if (it == queues_.end() || it->second.count == 0) {
        return;
    }
    if (removed_.insert(id).second) {
        --it->second.count;
        --total_;
    }
}

void ready_index::skip_removed(fifo& f) {
    while (!f.empty()) {
        auto r = removed_.find(f.front().id);
        if (r == removed_.end()) {
            return;
        }
        removed_.erase(r);
        f.pop_front();
    }
}

std::optional<ready_index::pick> ready_index::peek(const std::string& queue,
                                                   const std::function<bool(uint32_t)>& can_run) {
    auto it = queues_.find(queue);
    if (it == queues_.end() || it->second.count == 0) {
        return std::nullopt;
    }
    for (int p = 9; p >= 0; --p) {
        auto& groups = it->second.by_priority[static_cast<std::size_t>(p)];
        std::optional<pick> best;
        for (auto g = groups.begin(); g != groups.end();) {
            skip_removed(g->second);
            if (g->second.empty()) {
                g = groups.erase(g);
                continue;
            }
            const entry& front = g->second.front();
            if ((!best || front.seq < best->e.seq) && can_run(g->first)) {
                best = pick{p, g->first, front};
            }
            ++g;
        }
        if (best) {
            return best;
        }
    }
    return std::nullopt;
}

void ready_index::pop(const std::string& queue, const pick& p) {
    auto& slot = queues_[queue];
    auto& f = slot.by_priority[static_cast<std::size_t>(p.priority)][p.handler];
    f.pop_front();
    --slot.count;
    --total_;
}

std::optional<ready_index::entry> ready_index::oldest(const std::string& queue) {
    auto it = queues_.find(queue);
    if (it == queues_.end() || it->second.count == 0) {
        return std::nullopt;
    }
    std::optional<entry> best;
    for (auto& groups : it->second.by_priority) {
        for (auto& [handler, f] : groups) {
            skip_removed(f);
            if (!f.empty() && (!best || f.front().seq < best->seq)) {
                best = f.front();
            }
        }
    }
    return best;
}

std::size_t ready_index::ready(const std::string& queue) const {
    auto it = queues_.find(queue);
    return it == queues_.end() ? 0 : it->second.count;
}

std::vector<std::string> ready_index::queues() const {
    std::vector<std::string> out;
    for (const auto& [name, slot] : queues_) {
        if (slot.count > 0) {
            out.push_back(name);
        }
    }
    return out;
}

}  // namespace taskmill::broker
