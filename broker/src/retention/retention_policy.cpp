#include "retention/retention_policy.hpp"

#include <limits>

namespace taskmill::broker {
namespace {

int64_t of_state(const retention_config& c, task_state s) {
    switch (s) {
        case task_state::succeeded: return c.succeeded_ms;
        case task_state::failed: return c.failed_ms;
        case task_state::cancelled: return c.cancelled_ms;
        case task_state::expired: return c.expired_ms;
        default: return 0;  // not final: nothing to delete
    }
}

retention_config resolve(const retention_config& broker, const retention_override& o) {
    return {o.succeeded_ms.value_or(broker.succeeded_ms), o.failed_ms.value_or(broker.failed_ms),
            o.cancelled_ms.value_or(broker.cancelled_ms), o.expired_ms.value_or(broker.expired_ms)};
}

}  // namespace

retention_policy::retention_policy(const retention_config& broker, const std::vector<queue_config>& queues)
    : broker_(broker) {
    for (const auto& q : queues) {
        queues_[q.name] = resolve(broker, q.retention);
    }
}

int64_t retention_policy::keep_ms(const task_record& r, task_state s) const {
    if (!is_final(s)) {
        return 0;
    }
    if (r.keep_ms) {
        return *r.keep_ms;
    }
    auto q = queues_.find(r.queue);
    return of_state(q == queues_.end() ? broker_ : q->second, s);
}

int64_t retention_policy::broker_keep_ms(task_state s) const { return of_state(broker_, s); }

int64_t retention_policy::keep_ms(workflow_state s) const {
    switch (s) {
        case workflow_state::succeeded: return broker_.succeeded_ms;
        case workflow_state::failed: return broker_.failed_ms;
        case workflow_state::cancelled: return broker_.cancelled_ms;
        default: return 0;
    }
}

bool retention_policy::follows_broker(const task_record& r, task_state s) const {
    if (r.keep_ms) {
        return false;
    }
    auto q = queues_.find(r.queue);
    return q == queues_.end() || of_state(q->second, s) == of_state(broker_, s);
}

int64_t retention_policy::delete_at(const task_record& r, task_state s, int64_t finished_ms) const {
    const int64_t keep = keep_ms(r, s);
    if (keep <= 0) {
        return 0;
    }
    // Saturating: a keep of years from a far clock must not wrap to the past.
    return keep > std::numeric_limits<int64_t>::max() - finished_ms ? std::numeric_limits<int64_t>::max()
                                                                    : finished_ms + keep;
}

}  // namespace taskmill::broker
