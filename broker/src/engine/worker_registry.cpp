#include "engine/worker_registry.hpp"

#include <algorithm>

namespace taskmill::broker {

bool worker::serves(const std::string& queue) const {
    return info.queues.empty() || std::find(info.queues.begin(), info.queues.end(), queue) != info.queues.end();
}

bool worker::can_run(const handler_ref& h) const {
    return std::any_of(info.handlers.begin(), info.handlers.end(),
                       [&](const protocol::handler_info& hi) { return handler_matches(h, hi.name, hi.version); });
}

protocol::worker_info worker::to_info() const {
    protocol::worker_info w;
    w.id = id;
    w.host = info.host;
    w.pid = info.pid;
    w.slots = concurrency();
    w.busy = busy();
    w.generation = info.generation;
    w.queues = info.queues;
    w.handlers = info.handlers;
    w.last_seen_ms = last_seen_ms;
    w.prefetch = prefetch();
    w.running = running;
    w.rss_bytes = rss_bytes;
    return w;
}

std::vector<task_id> worker_registry::upsert(const std::string& id, const protocol::hello& h, int64_t now_ms) {
    auto& w = workers_[id];
    // A HELLO from a known worker means it restarted its session: what we
    // thought it held is gone with the old session.
    std::vector<task_id> lost(w.in_flight.begin(), w.in_flight.end());
    w.in_flight.clear();
    w.running = 0;
    w.id = id;
    w.info = h;
    w.slots = h.slots;
    w.last_seen_ms = now_ms;
    return lost;
}

worker* worker_registry::find(const std::string& id) {
    auto it = workers_.find(id);
    return it == workers_.end() ? nullptr : &it->second;
}

std::vector<task_id> worker_registry::remove(const std::string& id) {
    auto it = workers_.find(id);
    if (it == workers_.end()) {
        return {};
    }
    std::vector<task_id> held(it->second.in_flight.begin(), it->second.in_flight.end());
    workers_.erase(it);
    return held;
}

std::vector<std::string> worker_registry::silent(int64_t now_ms, int64_t liveness_ms) const {
    std::vector<std::string> out;
    for (const auto& [id, w] : workers_) {
        if (now_ms - w.last_seen_ms > liveness_ms) {
            out.push_back(id);
        }
    }
    return out;
}

std::optional<int64_t> worker_registry::earliest_seen() const {
    std::optional<int64_t> out;
    for (const auto& [id, w] : workers_) {
        if (!out || w.last_seen_ms < *out) {
            out = w.last_seen_ms;
        }
    }
    return out;
}

worker* worker_registry::pick(const std::string& queue, const handler_ref& h, bool alone) {
    worker* best = nullptr;
    for (auto& [id, w] : workers_) {
        bool free = alone ? w.busy() == 0 && w.slots > 0 : w.has_credit();
        if (!free || !w.serves(queue) || !w.can_run(h)) {
            continue;
        }
        if (best == nullptr) {
            best = &w;
            continue;
        }
        // Lower load ratio first (cross-multiplied: no division), then the
        // one chosen least recently.
        uint64_t lhs = uint64_t{w.busy()} * best->slots;
        uint64_t rhs = uint64_t{best->busy()} * w.slots;
        if (lhs < rhs || (lhs == rhs && w.last_pick < best->last_pick)) {
            best = &w;
        }
    }
    return best;
}

void worker_registry::reserve(const std::string& queue, const handler_ref& h) {
    worker* best = nullptr;
    for (auto& [id, w] : workers_) {
        if (w.reserved) {
            return;  // one at a time
        }
        if (w.slots > 0 && w.serves(queue) && w.can_run(h) && (best == nullptr || w.busy() < best->busy())) {
            best = &w;
        }
    }
    if (best != nullptr) {
        best->reserved = true;
    }
}

void worker_registry::clear_reserved() {
    for (auto& [id, w] : workers_) {
        w.reserved = false;
    }
}

uint32_t worker_registry::free_slots() const {
    uint32_t n = 0;
    for (const auto& [id, w] : workers_) {
        n += w.has_credit() ? w.slots - w.busy() : 0;
    }
    return n;
}

uint32_t worker_registry::total_busy() const {
    uint32_t n = 0;
    for (const auto& [id, w] : workers_) {
        n += w.busy();
    }
    return n;
}

uint32_t worker_registry::total_concurrency() const {
    uint32_t n = 0;
    for (const auto& [id, w] : workers_) {
        n += w.concurrency();
    }
    return n;
}

uint32_t worker_registry::total_prefetch() const {
    uint32_t n = 0;
    for (const auto& [id, w] : workers_) {
        n += w.prefetch();
    }
    return n;
}

uint32_t worker_registry::total_running() const {
    uint32_t n = 0;
    for (const auto& [id, w] : workers_) {
        n += w.running;
    }
    return n;
}

}  // namespace taskmill::broker
