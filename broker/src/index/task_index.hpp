// The listing indexes of the store (table::index): which tasks are in a
// state, a queue, of a handler, finished when; with the tags table, what
// TASKS, the bulk verbs and the dashboard read instead of scanning every
// record, so that a page costs the same with 10M tasks stored as with 1,000.
//
// The engine keeps the entries in the transaction of every change it makes
// to a record (add when a record gets a stored state, remove before it
// leaves it or is deleted). QUEUED and RUNNING tasks have no 's', 'q' or
// 'h' entries: they are listed from memory (live_index.hpp), since every
// task passes through those states within moments.
//
// Layouts (docs/DESIGN.md, "Store tables and keys"), time being the finish
// time in a final state and the creation time otherwise:
//   's' state(1) time(8, BE) id(16)             by state (not QUEUED or RUNNING)
//   'q' queue \0 state(1) time(8, BE) id(16)    by queue and state
//   'h' handler \0 state(1) time(8, BE) id(16)  by handler (no @version) and state
//   'Q' queue \0 id(16)                         by queue, in creation order
//   'H' handler \0 id(16)                       by handler, in creation order
// The tags table (tag \0 id) lists every task with the tag, in creation
// order; the tasks table itself lists every task in creation order.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/result.hpp>

#include "model/task_id.hpp"
#include "model/task_record.hpp"
#include "model/task_state.hpp"

namespace taskmill::broker {

// Which tasks a listing or a bulk verb applies to: every filter that is set.
struct task_filter {
    std::optional<task_state> state;
    std::string queue;
    std::string handler;  // the name without @version
    std::string tag;
    // Unix ms, 0 = open. Compared with the finish time when `state` is a
    // final state, with the creation time otherwise.
    int64_t since_ms = 0;
    int64_t until_ms = 0;

    bool empty() const {
        return !state && queue.empty() && handler.empty() && tag.empty() && since_ms == 0 && until_ms == 0;
    }
    // The time the range compares for `r`.
    int64_t time_of(const task_record& r) const;
    // Whether `r` (as it is now: a running task RUNNING) passes every filter.
    bool matches(const task_record& r) const;
    // In words, for job reports and logs ("state=FAILED queue=emails").
    std::string text() const;
};

namespace task_index {

// Writes the index entries of `r` as it is stored now.
result<void> add(transaction& t, const task_record& r);
// Removes the entries add() wrote for `r` as it was then.
result<void> remove(transaction& t, const task_record& r);
// The same for several records, in the order that erases fastest.
result<void> remove(transaction& t, const std::vector<task_record>& rs);
// Removes the by-state entries of `r` as QUEUED, which a store written
// before QUEUED tasks were listed from memory holds (r: its queue, handler,
// id and creation time).
result<void> remove_queued_entries(transaction& t, const task_record& r);

// Calls fn(id) for the tasks that may match `f` (the caller loads each and
// checks f.matches), newest first: by finish time for a final state, else by
// creation. Starts after `cursor` ("" = from the newest) and reads at most
// `budget` index entries. fn returns false to stop early. Returns the cursor
// to resume from (after the last id given to fn), "" once nothing is left.
// The cursor is opaque text (hex of the index key last read): a position,
// not a pointer, so it stays valid across commits and restarts, and entries
// added or removed meanwhile never make a scan skip an older entry or loop.
// A task id (32 hex digits) is accepted as a cursor too: the scan then
// starts below that task. With a tag, the order is by creation whatever the
// state; since/until bound the scan where the order is the time compared.
// errc::invalid_argument for a cursor of another listing. Not for a filter
// of QUEUED or RUNNING without a tag: those are listed by live_index.
result<std::string> scan(transaction& t, const task_filter& f, std::string_view cursor, uint32_t budget,
                         const std::function<bool(const task_id&)>& fn);

// ---- for the retention sweep ----

// A by-state entry of a finished task: its key and the task.
struct finished_entry {
    std::string key;
    task_id id;
    int64_t finished_ms = 0;
};
// The entries of final state `s` in finish order, oldest first, from the
// first key >= `from` ("" = the oldest), at most `max`.
result<std::vector<finished_entry>> oldest_finished(transaction& t, task_state s, std::string_view from,
                                                    std::size_t max);
// The key of the by-state entry `r` has in state `s` (QUEUED or RUNNING:
// the one it would have).
std::string state_key(const task_record& r, task_state s);

// ---- for the engine's hooks and listings ----

// After a state change of `r` (r.state is the new state) from `from`, whose
// index time (finish or creation) was `from_time`: moves the entries that
// depend on the state. Nothing to do between QUEUED and RUNNING.
result<void> moved(transaction& t, const task_record& r, task_state from, int64_t from_time);
// The time the index keeps for `r` in state `s`.
int64_t time_in_state(const task_record& r, task_state s);

// What a walk's fn decides for a task: take it and go on, take it and stop
// (the cursor is then after it), or stop before it (the next page starts
// with it).
enum class step : uint8_t { next, stop_after, stop_before };
struct scan_stats {
    uint32_t entries_read = 0;  // index entries read, for tests of the cost
};
// scan() with a three-way answer and, optionally, what it cost.
result<std::string> walk(transaction& t, const task_filter& f, std::string_view cursor, uint32_t budget,
                         const std::function<step(const task_id&)>& fn, scan_stats* stats = nullptr);

}  // namespace task_index
}  // namespace taskmill::broker
