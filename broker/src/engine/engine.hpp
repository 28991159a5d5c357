// The broker's state machine, free of sockets: it takes decoded messages and
// timer ticks, applies them to the store inside the current turn's write
// transaction and to the in-memory indexes, and queues what must be sent in
// an outbox that the loop flushes after the commit.
// Methods are spread over engine.cpp (turns, records, recovery),
// lifecycle.cpp (state transitions, timers), dispatch.cpp, frontend.cpp
// (client commands) and backend.cpp (worker commands).
// Single-threaded: owned by the loop.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include <spdlog/logger.h>

#include <taskmill/broker/broker.hpp>
#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/wire.hpp>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/peer_text.hpp>

#include "metrics/metrics.hpp"
#include "engine/ready_index.hpp"
#include "schedule/schedule_runtime.hpp"
#include "model/task_id.hpp"
#include "model/task_record.hpp"
#include "engine/timers.hpp"
#include "model/validate.hpp"
#include "engine/worker_registry.hpp"
#include "workflow/workflow_model.hpp"

namespace taskmill::broker {

enum class target : uint8_t { frontend, backend };

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

struct out_message {
    target to;
    std::string peer;
    std::string command;
    std::string body;
};

struct outbox {
    std::vector<out_message> messages;
    std::vector<std::pair<std::string, std::string>> events;  // topic, msgpack body
    void clear() {
        messages.clear();
        events.clear();
    }
};

class engine {
public:
    engine(const broker_config& cfg, store& st, spdlog::logger& log);

    // Rebuilds the in-memory indexes from the store and requeues the tasks
    // that were RUNNING when the previous broker stopped. Throws
    // store_failure if the store cannot be read. When what recovery writes
    // cannot be committed (a full map or disk), the engine serves on from
    // what it rebuilt (recovery redoes those writes at every start) and
    // refuses new work for a while (hold_new_work).
    void recover(int64_t now_ms);
    // Refuses new work (SUBMIT, WF_SUBMIT, RETRY, SPAWN, schedule fires)
    // with errc::unavailable until `until_ms`, saying `why`: a store write
    // failed, so only finishing work is let in for a while.
    void hold_new_work(int64_t until_ms, std::string why);
    const std::set<std::string, std::less<>>& subscriptions() const { return subscriptions_; }
    // The STATUS requests parked until their task ends (peer, req): a
    // rebuilt engine does not have them, so the loop answers them.
    std::vector<std::pair<std::string, uint64_t>> parked() const;

    // ---- one loop turn ----
    void begin_turn(int64_t now_ms);
    // One message as try_recv read it: a malformed one is answered with an
    // error that names its request when its `req` could be read.
    void on_frontend(const protocol::incoming& in);
    void on_backend(const protocol::incoming& in);
    void on_timers();
    void dispatch();
    // What leaves before this turn's commit: WELCOMEs and DISPATCHes (at
    // most one per worker per turn), so a worker runs its tasks while the
    // broker fsyncs. Neither promises anything durable. A crash before the
    // commit loses the turn: tasks queued before it are queued again by
    // recovery (at-least-once); a task submitted in the turn was never
    // acknowledged, so its submitter still holds it (as when the broker
    // dies between a commit and its ack), and its result, should the
    // worker send one, is ignored as unknown.
    std::vector<out_message> take_early();
    // Commits the turn's transaction. Throws store_failure if the commit
    // fails (in-memory state no longer matches the store: see store_failure).
    void end_turn();
    outbox& out() { return out_; }
    // A DISPATCH or CANCEL could not be routed: the worker is gone. Its
    // tasks are requeued at the start of the next turn.
    void worker_unreachable(const std::string& id) { unreachable_.push_back(id); }
    // The earliest time a timer needs the loop; nullopt = none.
    std::optional<int64_t> next_deadline() const;
    // Publishes this turn's metrics for the HTTP threads (metrics_engine.cpp).
    void publish_metrics(metrics_hub& hub);
    // A subscriber of the events socket subscribed to (or left) a topic
    // prefix. Events nobody subscribes to are not built at all.
    void subscription(bool on, std::string prefix);

private:
    // ---- records (engine.cpp) ----
    std::optional<task_record> load(const task_id& id);
    // As load(), with the reason when there is no record: errc::not_found,
    // or errc::corrupt for a stored record that does not decode.
    result<task_record> lookup(const task_id& id);
    // Why new work is refused now (store nearly full, a recent failed
    // write), or nullopt. Logs the remedy once per episode.
    std::optional<std::string> new_work_refused();
    void save(const task_record& r);
    // A record read by a scan of the store, as it is now: a running task's
    // is in memory (the store keeps it QUEUED, see start_attempt).
    task_record current(task_record stored) const;
    void check(const result<void>& r, const char* what);
    uint64_t next_seq();
    void set_state(task_record& r, task_state s);
    // The tags table follows a task into and out of the unfinished states.
    void index_tags(const task_record& r, std::optional<task_state> from, task_state to);
    void count(const std::string& counter, uint64_t n = 1) { counters_[counter] += n; }
    bool wants_event(std::string_view topic) const;
    void emit(const task_record& r);
    void emit_worker(const char* type, const std::string& id);
    void reply_front(const std::string& peer, std::string_view command, const protocol::reply& r);
    void reply_error(const std::string& peer, std::string_view command, uint64_t req, errc code,
                     const std::string& message);
    void recover_counts();
    void recover_tag_index();
    std::vector<task_id> unfinished_with_tag(const std::string& tag);
    void save_counts();
    void recover_indexes();
    void recover_running();

    // ---- lifecycle (lifecycle.cpp) ----
    result<task_record> create(const protocol::task_spec& spec, const std::string& peer);
    // `keep_place`: a task whose attempt was lost goes back where it was
    // (its old sequence number), ahead of the tasks queued after it.
    void enqueue(task_record& r, bool keep_place = false);
    // When the lease of a running attempt ends, from now: the timeout (if
    // any) + lease_grace_ms + liveness_ms.
    int64_t lease_end(const task_record& r) const;
    void delay(task_record& r, int64_t eta_ms, task_state s);
    void unqueue(task_record& r);
    void finish(task_record& r, task_state s, std::string error);
    void stop_running(task_record& r);
    void retry_or_fail(task_record& r, const std::string& error, std::optional<int64_t> retry_after_ms);
    void lost(const task_id& id, bool crashed, const std::string& why);
    void cancel(task_record& r, protocol::reply& rep);
    int64_t backoff_ms(const task_record& r);
    void on_final(const task_record& r);
    void answer_waiters(const task_record& r);
    void fire_delayed();
    void fire_ttl();
    void fire_leases();
    void fire_waiters();
    void forget_wait(const std::string& peer);  // one of its parked STATUS requests ended
    void check_workers();

    // ---- dispatch (dispatch.cpp) ----
    bool start_attempt(const ready_index::pick& p, const std::string& queue, worker& w);
    void number_sent(const protocol::dispatch& d);
    void send_dispatch(const std::string& worker_id, protocol::dispatch& d);
    // The bound of the size of a DISPATCH carrying only `r`.
    std::size_t dispatch_size(const task_record& r) const;
    void flush_done();
    // Fills `tasks` from the front of `from` up to what fits in one message.
    void take_fitting(std::vector<protocol::task_info>& from, std::vector<protocol::task_info>& tasks) const;
    const handler_ref& handler_of(uint32_t h);

    // ---- frontend (frontend.cpp) ----
    void submit(const std::string& peer, const protocol::request& rq);
    void status(const std::string& peer, const protocol::request& rq);
    void cancel_cmd(const std::string& peer, const protocol::request& rq);
    void retry_cmd(const std::string& peer, const protocol::request& rq);
    void tasks_cmd(const std::string& peer, const protocol::request& rq);
    void stats_cmd(const std::string& peer, const protocol::request& rq);
    void workers_cmd(const std::string& peer, const protocol::request& rq);

    // ---- workflows (workflow_engine.cpp) ----
    bool workflow_command(const std::string& peer, const std::string& cmd, const protocol::request& rq);
    void wf_submit(const std::string& peer, const protocol::request& rq);
    void wf_status(const std::string& peer, const protocol::request& rq);
    void wf_cancel(const std::string& peer, const protocol::request& rq);
    void wf_start_ready(workflow& w);
    void wf_fail_fast(workflow& w);
    void wf_settle(workflow& w);
    void wf_save(const workflow& w);
    void wf_emit(const workflow& w, std::string_view type, const wf_step* s);
    void on_workflow_task_final(const task_record& r);
    void recover_workflows();
    // ---- schedules (schedule_engine.cpp) ----
    void recover_schedules();
    void fire_schedules();
    std::optional<int64_t> next_schedule_ms() const;
    void schedules_cmd(const std::string& peer, const protocol::request& rq);

    // ---- backend (backend.cpp) ----
    void hello(const std::string& peer, const protocol::message& m, const std::string& user_id);
    void results(worker& w, const protocol::message& m);
    void apply_outcome(worker& w, const protocol::outcome& o);
    void started(worker& w, const std::string& id);
    void heartbeat(worker& w, const protocol::message& m);
    void renew(worker& w, const task_id& id);
    bool adopt(worker& w, const task_id& id, uint32_t attempt);
    void dead(const std::string& peer, const protocol::message& m, const std::string& user_id);
    void plugins_changed(const protocol::message& m);
    void credit(worker& w, const protocol::message& m);
    void progress(worker& w, const protocol::message& m);
    void checkpoint(const std::string& peer, const protocol::message& m);
    void spawn(const std::string& peer, const protocol::message& m);
    // `running`: the tasks its slots were running when it died, if known.
    void remove_worker(const std::string& id, bool crashed, const std::string& why,
                       const std::vector<std::string>* running = nullptr);
    void send_back(const std::string& peer, std::string_view command, const protocol::control& c);
    // Logs a malformed message from a peer through malformed_log_.
    void warn_malformed(std::string_view peer, std::string_view what, const std::string& why);
    // Reports the malformed messages malformed_log_ held back (each turn).
    void report_malformed();
    // A control {req, ok: false, error} to a backend peer.
    void send_error(const std::string& peer, std::string_view command, uint64_t req, const std::string& error);

    const broker_config& cfg_;
    store& store_;
    spdlog::logger& log_;
    limits limits_;
    std::size_t out_max_body_ = 0;  // the largest body the broker sends (message_size.hpp)
    std::unique_ptr<transaction> txn_;
    int64_t now_ = 0;
    int64_t started_ms_ = 0;
    outbox out_;

    id_generator ids_;
    uint64_t seq_ = 0;
    bool seq_dirty_ = false;
    bool counts_dirty_ = false;
    ready_index ready_;
    std::vector<handler_ref> handler_refs_;  // parallel to ready_'s interned handlers
    deadline_set delayed_;  // PENDING / RETRYING: due time
    deadline_set ttl_;      // QUEUED with a TTL: expiry
    deadline_set leases_;   // RUNNING: lease end
    // A running attempt. The task's record lives here: the store keeps the
    // task as QUEUED until the attempt ends (see start_attempt), and save()
    // writes that image; a result, a progress report or a checkpoint of a
    // running task never reads and decodes the store.
    struct run_info {
        std::string worker;
        uint32_t attempt = 0;
        bool started = false;  // the worker said a slot started it
        uint64_t order = 0;    // order of sending to the worker (see remove_worker)
        task_record record;
    };
    std::unordered_map<task_id, run_info, task_id_hash> running_;
    worker_registry workers_;
    std::vector<std::string> unreachable_;
    // Finished tasks whose submitter asked for DONE, by client: one DONE per
    // client per turn (`task` for one, `tasks` for several).
    std::map<std::string, std::vector<protocol::task_info>> pending_done_;
    std::map<std::string, protocol::dispatch> early_dispatch_;
    uint64_t dispatch_order_ = 0;
    std::vector<out_message> early_;    // see take_early()
    int64_t next_heartbeat_ = 0;

    // STATUS requests parked until their task is final or wait_ms ends.
    struct waiter {
        std::string peer;
        uint64_t req = 0;
        task_id id{};
        int64_t deadline = 0;
    };
    std::map<uint64_t, waiter> waiters_;
    std::unordered_multimap<task_id, uint64_t, task_id_hash> waiters_by_task_;
    std::set<std::pair<int64_t, uint64_t>> waiter_deadlines_;
    uint64_t waiter_serial_ = 0;
    std::unordered_map<std::string, std::size_t> waits_by_peer_;  // parked requests by client

    std::set<std::string, std::less<>> subscriptions_;  // topic prefixes of the events socket
    std::map<std::string, std::map<task_state, uint64_t>> per_queue_;  // queue -> state -> n
    std::map<std::string, uint64_t> counters_;
    std::map<std::string, workflow> workflows_;  // RUNNING workflows by id
    std::vector<schedule_state> schedules_;
    metrics_recorder metrics_;
    double fill_ratio_ = 0;
    int64_t fill_checked_ms_ = 0;
    int64_t hold_until_ms_ = 0;  // see hold_new_work
    std::string hold_why_;
    bool full_logged_ = false;
    // Malformed messages are a peer's to repeat at will: one warning per
    // minute in full, then a count (backend.cpp).
    protocol::log_gate malformed_log_;
};

int64_t now_ms();

// New work is refused above this store fill: the rest is the reserve that
// lets running and queued work finish (results, state changes).
inline constexpr double store_fill_limit = 0.95;
// After a failed store write, new work is refused this long (then tried
// again; a write that fails again starts another hold).
inline constexpr int64_t store_hold_ms = 10000;

}  // namespace taskmill::broker
