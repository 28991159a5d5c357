// How long a finished task or workflow is kept before the sweep deletes it:
// the task's own keep_ms (set at submit) wins, then its queue's
// [queue.NAME] retention-*, then the broker's retention-* for the final
// state it reached. 0 = kept for ever.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <taskmill/broker/queue_config.hpp>

#include "model/task_record.hpp"
#include "model/task_state.hpp"
#include "model/workflow_state.hpp"

namespace taskmill::broker {

class retention_policy {
public:
    retention_policy(const retention_config& broker, const std::vector<queue_config>& queues);

    // The retention of `r` ending in the final state `s`, in ms; 0 = for ever.
    int64_t keep_ms(const task_record& r, task_state s) const;
    // The broker's retention for the final state `s`; 0 = for ever.
    int64_t broker_keep_ms(task_state s) const;
    // A workflow has no queue: the broker's retention for its final state.
    int64_t keep_ms(workflow_state s) const;
    // When a task finished at `finished_ms` is to be deleted; 0 = never.
    int64_t delete_at(const task_record& r, task_state s, int64_t finished_ms) const;
    // Whether the retention of `r` in `s` is the broker's for `s` (no
    // keep of its own, none of its queue's that differs): then the order
    // of finish times is the order of deletion times.
    bool follows_broker(const task_record& r, task_state s) const;

private:
    retention_config broker_;
    std::map<std::string, retention_config, std::less<>> queues_;  // resolved against the broker's
};

}  // namespace taskmill::broker
