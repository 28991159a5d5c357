// The tasks that are QUEUED or RUNNING, in memory, for TASKS and the bulk
// verbs. Every task passes through these states within moments, so the
// store's listing index (task_index.hpp) leaves them out: their entries
// would be written and erased again a few ms later, six LMDB writes of
// every task's life. The store keeps them durable in the ready table, from
// which recovery fills this index again.
//
// Per task: its id (creation order: ids begin with the creation ms), queue
// and handler (interned) and whether it runs, 24 bytes in a B-tree (abseil's
// btree_map: a million QUEUED tasks added 22 MB of RSS, where a std::map
// node alone would take 80 bytes; docs/PERFORMANCE.md, the targets).
// Single-threaded: owned by the loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include <absl/container/btree_map.h>

#include "index/task_index.hpp"
#include "model/task_id.hpp"
#include "model/task_state.hpp"

namespace taskmill::broker {

class live_index {
public:
    // Whether the index (and not the store's) lists tasks in state `s`.
    static bool lists(task_state s) { return s == task_state::queued || s == task_state::running; }

    // Records `id` in state `s` (QUEUED or RUNNING); `handler` with or
    // without @version.
    void set(const task_id& id, std::string_view queue, std::string_view handler, task_state s);
    void erase(const task_id& id);
    std::size_t size() const { return tasks_.size(); }

    // Calls fn(id) for the tasks matching f's state, queue, handler and
    // creation-time range (f.tag is not looked at), newest first, starting
    // below `cursor` (a task id in hex, "" = from the newest) and reading at
    // most `budget` entries. As task_index::walk, the cursor to resume from,
    // "" once nothing is left; errc::invalid_argument for a bad cursor. A
    // cursor that task_index::walk handed out for the same listing before
    // these states left the store (the hex of an index key, ending in the
    // id) is taken too.
    result<std::string> walk(const task_filter& f, std::string_view cursor, uint32_t budget,
                             const std::function<task_index::step(const task_id&)>& fn) const;

private:
    // Handler numbers fit 31 bits (no broker meets 2^31 handler names).
    static constexpr uint32_t max_name_number = (1u << 31) - 1;
    struct entry {
        uint32_t queue = 0;
        uint32_t handler : 31 = 0;
        uint32_t running : 1 = 0;
    };
    uint32_t intern(std::string_view name);
    // The number of a name, or nullopt if no task ever had it.
    std::optional<uint32_t> known(std::string_view name) const;
    bool matches(const entry& e, const task_filter& f, std::optional<uint32_t> queue,
                 std::optional<uint32_t> handler) const;

    // Finds a std::string key by a string_view without making a string.
    struct name_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
    };

    absl::btree_map<task_id, entry> tasks_;
    std::unordered_map<std::string, uint32_t, name_hash, std::equal_to<>> numbers_;
};

}  // namespace taskmill::broker
