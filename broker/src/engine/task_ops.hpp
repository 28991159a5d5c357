// What the engine's clients (workflows, schedules) may do with tasks and
// with the turn they run in. They see the engine through this interface
// only: a workflow step or a scheduled fire is an ordinary task, created,
// queued, cancelled and finished by the engine's own rules, and the
// engine tells its clients when a task ends (workflow_engine::on_task_final).
// Every call runs inside the current turn: writes go to the turn's
// transaction, replies and events to its outbox (sent after the commit).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

#include "engine/event_bus.hpp"
#include "model/task_id.hpp"
#include "model/task_record.hpp"
#include "model/workflow_state.hpp"

namespace taskmill::broker {

class task_ops {
public:
    virtual ~task_ops() = default;
    // The turn's time.
    virtual int64_t now() const = 0;
    // A new time-ordered id (tasks and workflows share the generator).
    virtual task_id new_id() = 0;
    // Why new work is refused now (store nearly full, a recent failed
    // write), or nullopt.
    virtual std::optional<std::string> new_work_refused() = 0;
    // Creates a task from `spec` for the broker itself (no submitter to
    // notify), queues it and counts it as submitted. Returns its record as
    // queued.
    virtual task_record submit(const protocol::task_spec& spec) = 0;
    // The task as it is now (a running one from memory); nullopt if there
    // is none or its record cannot be read.
    virtual std::optional<task_record> find(const task_id& id) = 0;
    // Cancels an unfinished task as CANCEL does: a waiting one ends
    // CANCELLED with `why` at once (the final-state hook runs before this
    // returns), a running one is asked to stop. A final task is left alone.
    virtual void cancel(const task_id& id, const std::string& why) = 0;
    // True when a worker is connected; then runnable() says whether one of
    // them can run `handler`.
    virtual bool workers_connected() const = 0;
    virtual bool runnable(const std::string& handler) const = 0;
    // Why `handler` may never run: no connected worker serves it and none
    // has offered it (or its pinned version) within handler-memory
    // ("no worker has offered X in the last 7d"); nullopt = it may run.
    virtual std::optional<std::string> unoffered(const std::string& handler) const = 0;
    virtual void count(const std::string& counter) = 0;
    virtual event_bus& events() = 0;
    // Replies to a client (frontend peer).
    virtual void reply(const std::string& peer, std::string_view command, const protocol::reply& r) = 0;
    virtual void reply_error(const std::string& peer, std::string_view command, uint64_t req, errc code,
                             const std::string& message) = 0;
    // The largest body the broker sends (model/message_size.hpp).
    virtual std::size_t max_body() const = 0;
    // The turn's transaction, for the clients' own tables. A failed read
    // (other than not_found) or write throws store_failure, as the engine's
    // own do: the loop then drops the turn.
    virtual std::optional<std::string> get(table t, std::string_view key) = 0;
    virtual void put(table t, std::string_view key, std::string_view value) = 0;
    virtual void scan(table t, const scan_fn& fn) = 0;
    // ---- for the workflow listing and schedule control ----
    virtual void erase(table t, std::string_view key) = 0;
    // As transaction::scan: from the first key >= `from`, or with
    // `reverse` from the last key <= `from` (empty = the very last).
    virtual void scan_from(table t, std::string_view from, bool reverse, const scan_fn& fn) = 0;
    // How many entries a listing may read per request (list-scan-budget).
    virtual uint32_t list_scan_budget() const = 0;
    // A workflow (key `id` in the workflows table) reached the final state
    // `s`: the retention of that state then deletes it with its steps.
    virtual void retain_workflow(const std::string& id, workflow_state s, int64_t finished_ms) = 0;
};

// A store read or write failed inside a turn. The turn's transaction is
// then unusable and the engine's memory is ahead of the store: the loop
// drops the turn (nothing of it was acknowledged) and rebuilds the engine
// from the store (see broker::impl::turn). `code` is errc::corrupt for a
// damaged store.
class store_failure : public std::runtime_error {
public:
    store_failure(errc c, const std::string& what) : std::runtime_error(what), code(c) {}
    errc code;
};

}  // namespace taskmill::broker
