// How many tasks each queue holds in each state, and the broker's event
// counters (submitted, retried, crashes, ...), as STATS and /metrics show
// them. The per-queue counts are durable: written to the meta table in the
// transaction of every turn that changed them, so a restart need not read
// every task. The event counters start from zero with each broker.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include <spdlog/logger.h>

#include <taskmill/broker/store.hpp>

#include "model/task_state.hpp"

namespace taskmill::broker {

class task_counters {
public:
    using by_queue = std::map<std::string, std::map<task_state, uint64_t>>;  // queue -> state -> n

    void count(const std::string& counter, uint64_t n = 1) { counters_[counter] += n; }
    // A task of `queue` moved from state `from` (nullopt: a new task) to `to`.
    void moved(const std::string& queue, std::optional<task_state> from, task_state to);
    // A task of `queue` in state `s` was deleted.
    void removed(const std::string& queue, task_state s);

    const by_queue& per_queue() const { return per_queue_; }
    const std::map<std::string, uint64_t>& counters() const { return counters_; }

    // Writes the per-queue counts if they changed since the last save, as
    // the store has the tasks (RUNNING ones are QUEUED there), by state
    // name as every release has.
    result<void> save(transaction& txn);
    // Reads the per-queue counts back; a store written before they existed
    // (or with unreadable ones, or ones naming an unknown state) is counted
    // record by record once, and gets them at the next save.
    result<void> recover(transaction& txn, spdlog::logger& log);

private:
    by_queue per_queue_;
    std::map<std::string, uint64_t> counters_;
    bool dirty_ = false;
};

}  // namespace taskmill::broker
