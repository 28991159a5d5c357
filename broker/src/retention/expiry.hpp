// The expiry table (table::expiry): the tasks with a retention of their own
// or of their queue's, and the workflows, in the order their deletion falls
// due (a task kept for the broker's retention of its state has no entry:
// retention/sweep.cpp finds it by its finish time). A key is delete_at_ms(8, big-endian) kind(1) id,
// the value empty; the id is the task id's 16 bytes for a task, the
// workflow's id text for a workflow (its key in the workflows table).
// Big-endian time first, so the table's first key is the next one due.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/task_id.hpp"

namespace taskmill::broker {

enum class expiry_kind : uint8_t {
    task = 't',
    workflow = 'w',  // the workflow record and every step task go together
};

struct expiry_entry {
    int64_t at_ms = 0;
    expiry_kind kind = expiry_kind::task;
    std::string id;  // as in the key: 16 bytes for a task, text for a workflow
};

std::string expiry_key(int64_t at_ms, expiry_kind kind, std::string_view id);
inline std::string task_expiry_key(int64_t at_ms, const task_id& id) {
    return expiry_key(at_ms, expiry_kind::task, id_bytes(id));
}
// nullopt for a key of another layout (it is then dropped by the sweep).
std::optional<expiry_entry> parse_expiry_key(std::string_view key);

}  // namespace taskmill::broker
