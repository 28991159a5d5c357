// The broker's state machine, free of sockets: it takes decoded messages and
// timer ticks, applies them to the store inside the current turn's write
// transaction and to the in-memory indexes, and queues what must be sent in
// an outbox that the loop flushes after the commit.
// Methods are spread over engine.cpp (turns, records, recovery),
// lifecycle.cpp (state transitions, timers), dispatch.cpp, frontend.cpp
// (client commands), backend.cpp (worker commands) and task_ops.cpp (what
// workflows and schedules may do). Its parts: status_waiters (parked
// STATUS requests), event_bus (events), task_counters (STATS counts),
// workflow_engine and schedule_engine (clients through task_ops).
// Single-threaded: owned by the loop.
#pragma once

#include <array>
#include <chrono>
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
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/peer_text.hpp>
#include <taskmill/protocol/wire.hpp>

#include "engine/event_bus.hpp"
#include "engine/handler_defaults.hpp"
#include "engine/handler_memory.hpp"
#include "engine/ready_index.hpp"
#include "engine/status_waiters.hpp"
#include "engine/task_counters.hpp"
#include "engine/task_ops.hpp"
#include "engine/timers.hpp"
#include "engine/worker_registry.hpp"
#include "flow/flow_control.hpp"
#include "index/live_index.hpp"
#include "index/task_index.hpp"
#include "jobs/bulk_job.hpp"
#include "metrics/metrics.hpp"
#include "model/task_id.hpp"
#include "model/task_record.hpp"
#include "model/validate.hpp"
#include "retention/expiry.hpp"
#include "retention/retention_policy.hpp"
#include "retention/sweep_slice.hpp"
#include "schedule/schedule_engine.hpp"
#include "workflow/workflow_engine.hpp"

namespace taskmill::broker {

enum class target : uint8_t { frontend, backend };

struct out_message {
    target to;
    std::string peer;
    std::string command;
    std::string body;
};

struct outbox {
    std::vector<out_message> messages;
    event_list events;  // topic, msgpack body
    void clear() {
        messages.clear();
        events.clear();
    }
};

class engine : private task_ops {
public:
    engine(const broker_config& cfg, store& st, spdlog::logger& log);
    engine(const engine&) = delete;
    engine& operator=(const engine&) = delete;

    // Rebuilds the in-memory indexes from the store and requeues the tasks
    // that were running when the previous broker stopped (the store has
    // them QUEUED: see start_attempt). A store written by an older release
    // is brought to the current layout first (store/migrate.hpp). Throws
    // store_failure if the store cannot be read. When what recovery writes
    // cannot be committed (a full map or disk), the engine serves on from
    // what it rebuilt (recovery redoes those writes at every start) and
    // refuses new work for a while (hold_new_work).
    void recover(int64_t now_ms);
    // Refuses new work (SUBMIT, WF_SUBMIT, RETRY, SPAWN, schedule fires)
    // with errc::unavailable until `until_ms`, saying `why`: a store write
    // failed, so only finishing work is let in for a while.
    void hold_new_work(int64_t until_ms, std::string why);
    // Dispatches nothing until `until_ms`. A cluster's new leader waits so
    // that hosts re-announce the tasks they hold (HELLO `held`): the store
    // has those QUEUED, and without the wait they could go to another
    // worker before their own comes back.
    void hold_dispatch(int64_t until_ms) { dispatch_hold_ms_ = until_ms; }
    const std::set<std::string, std::less<>>& subscriptions() const { return events_.subscriptions(); }
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
    // Publishes this turn's metrics for the HTTP threads (publish_metrics.cpp).
    void publish_metrics(metrics_hub& hub);
    // How long the loop's turn took (seconds), for the turn-time histogram.
    void turn_took(double seconds) { metrics_.turn(seconds); }
    // A subscriber of the events socket subscribed to (or left) a topic
    // prefix. Events nobody subscribes to are not built at all.
    void subscription(bool on, std::string prefix) { events_.subscription(on, std::move(prefix)); }
    // A reader inside the broker (the HTTP event stream) wants every event.
    void local_events(bool on) { events_.local_reader(on); }

private:
    // ---- records (engine.cpp) ----
    std::optional<task_record> load(const task_id& id);
    // As load(), with the reason when there is no record: errc::not_found,
    // or errc::corrupt for a stored record that does not decode.
    result<task_record> lookup(const task_id& id);
    // Why new work is refused now (store nearly full, a recent failed
    // write), or nullopt. Logs the remedy once per episode.
    std::optional<std::string> new_work_refused() override;
    void save(const task_record& r);
    // Deletes a finished task from the store: its record, its index, tag
    // and expiry entries, and the idempotency key that names it (counted
    // as "deleted" in STATS). Not for a task
    // that is unfinished (the ready, delayed and timer entries stay).
    void erase_task(const task_record& r);
    // The same for several (the retention sweep's batch), faster.
    void erase_tasks(const std::vector<task_record>& rs);
    void erase_unindexed(const task_record& r);
    // A record read by a scan of the store, as it is now: a running task's
    // is in memory (the store keeps it QUEUED, see start_attempt).
    task_record current(task_record stored) const;
    void check(const result<void>& r, const char* what);
    uint64_t next_seq();
    void set_state(task_record& r, task_state s);
    // Keeps the listing indexes and the tags table right after r's state
    // became r.state (from `from`, nullopt for a new task; `from_time`:
    // the time the index had for it).
    void index_task(const task_record& r, std::optional<task_state> from, int64_t from_time);
    // Keeps live_ right after r's state became r.state (from `from`).
    void track_live(const task_record& r, std::optional<task_state> from);
    int64_t indexed_time(const task_record& r, task_state from);
    void emit_task(const task_record& r);
    void emit_worker(std::string_view type, const std::string& id);
    void reply_front(const std::string& peer, std::string_view command, const protocol::reply& r);
    void reply_error(const std::string& peer, std::string_view command, uint64_t req, errc code,
                     const std::string& message) override;
    // ---- upgrading an older store (store_upgrade.cpp) ----
    void try_upgrade_store();
    void upgrade_store();
    bool upgrade_next_slice(bool index, bool expire, std::size_t& done);
    void commit_upgrade();
    void migrate_store();
    std::vector<task_id> tasks_with_tag(const std::string& tag);
    void recover_indexes();
    void unlist_queued(const std::vector<task_id>& ids);
    void recover_running();
    void recover_handler_defaults();

    // ---- retention (retention/sweep.cpp) ----
    // Keeps delete_at_ms and the expiry entry of `r` in step with its state
    // (called by set_state): set when it reaches a final state, cleared
    // when it leaves one (RETRY).
    void track_expiry(task_record& r, std::optional<task_state> from, task_state to);
    // A step of a stored workflow: it has no expiry entry of its own.
    bool workflow_step(const task_record& r);
    // The expiry entry of a workflow that reached final state `s`.
    void retain_workflow(const std::string& id, workflow_state s, int64_t finished_ms) override;
    void expiry_due(int64_t at_ms);
    // One bounded slice of deletions of what is due (each turn).
    void sweep_expired();
    // The slice's part over the expiry table, then over the finished
    // tasks whose retention is the broker's for their state (walked in
    // finish order, retention/sweep.cpp); each returns when it is due
    // next (nullopt = nothing to delete).
    std::optional<int64_t> sweep_entries(sweep_slice& slice);
    std::optional<int64_t> sweep_finished(task_state s, sweep_slice& slice);
    std::size_t due_prefix(const std::vector<task_index::finished_entry>& batch, int64_t keep,
                           std::optional<int64_t>& next) const;
    uint32_t delete_implied(const std::vector<task_index::finished_entry>& batch, std::size_t due);
    std::vector<expiry_entry> due_expiries();
    // False when the slice ended before the entry was done.
    bool sweep_one(const expiry_entry& e, sweep_slice& slice);
    bool sweep_workflow(const expiry_entry& e, sweep_slice& slice);
    void recover_expiry();
    // The expiry entry a finished task of an older store lacks, counted
    // from its finish time; then those of its ended workflows.
    void expire_finished(task_record& r);
    void expire_ended_workflows();

    // ---- task_ops, for workflows and schedules (task_ops.cpp) ----
    int64_t now() const override { return now_; }
    task_id new_id() override { return ids_.next(now_); }
    task_record submit(const protocol::task_spec& spec) override;
    std::optional<task_record> find(const task_id& id) override { return load(id); }
    void cancel(const task_id& id, const std::string& why) override;
    bool workers_connected() const override { return workers_.size() > 0; }
    bool runnable(const std::string& handler) const override;
    void count(const std::string& counter) override { counters_.count(counter); }
    event_bus& events() override { return events_; }
    void reply(const std::string& peer, std::string_view command, const protocol::reply& r) override {
        reply_front(peer, command, r);
    }
    std::size_t max_body() const override { return out_max_body_; }
    std::optional<std::string> get(table t, std::string_view key) override;
    void put(table t, std::string_view key, std::string_view value) override;
    void scan(table t, const scan_fn& fn) override;
    void erase(table t, std::string_view key) override;
    void scan_from(table t, std::string_view from, bool reverse, const scan_fn& fn) override;
    uint32_t list_scan_budget() const override;

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
    // What a lost attempt is charged with (crashes.cpp).
    enum class blame : uint8_t { none, crash, suspect };
    void lost(const task_id& id, blame b, const std::string& why);
    void cancel(task_record& r, protocol::reply& rep, const std::string& why = "cancelled");
    int64_t backoff_ms(const task_record& r);
    void on_final(const task_record& r);
    void answer_waiters(const task_record& r);
    void fire_delayed();
    void fire_ttl();
    void fire_leases();
    void fire_waiters();
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
    // A handler of the ready index: the ready entry of a task that must
    // run alone carries its handler's name with a mark (alone_mark), so
    // such tasks wait in their own FIFO and dispatch looks for an idle
    // worker for them alone.
    struct ready_handler {
        handler_ref ref;
        bool alone = false;
    };
    static constexpr std::string_view alone_mark = " alone";  // a space is in no handler name
    static std::string ready_name(const task_record& r);
    const ready_handler& handler_of(uint32_t h);

    // ---- frontend (frontend.cpp) ----
    // A client command: what the frontend table maps its name to.
    using client_command = void (engine::*)(const std::string& peer, const protocol::request& rq);
    static const std::unordered_map<std::string_view, client_command>& client_commands();
    void submit_cmd(const std::string& peer, const protocol::request& rq);
    void status(const std::string& peer, const protocol::request& rq);
    void cancel_cmd(const std::string& peer, const protocol::request& rq);
    void retry_cmd(const std::string& peer, const protocol::request& rq);
    void tasks_cmd(const std::string& peer, const protocol::request& rq);
    // ---- listings (listing.cpp) ----
    // Fill `page` and return the cursor of the next page ("" = no more).
    result<std::string> list_tasks(const task_filter& f, const std::string& before, uint32_t limit,
                                   std::vector<protocol::task_info>& page);
    // Where the tasks `f` may match are listed: the live_index (QUEUED or
    // RUNNING, no tag) or the store's indexes.
    static bool listed_live(const task_filter& f) { return f.state && live_index::lists(*f.state) && f.tag.empty(); }
    // task_index::walk or live_index::walk, as listed_live says.
    result<std::string> walk_tasks(const task_filter& f, std::string_view cursor, uint32_t budget,
                                   const std::function<task_index::step(const task_id&)>& fn);
    bool add_to_page(const task_record& r, std::vector<protocol::task_info>& page, std::size_t& bytes) const;
    void stats_cmd(const std::string& peer, const protocol::request& rq);
    void workers_cmd(const std::string& peer, const protocol::request& rq);
    void ping_cmd(const std::string& peer, const protocol::request& rq);
    void wf_submit_cmd(const std::string& peer, const protocol::request& rq) { workflows_.submit(peer, rq); }
    void wf_status_cmd(const std::string& peer, const protocol::request& rq) { workflows_.status(peer, rq); }
    void wf_cancel_cmd(const std::string& peer, const protocol::request& rq) { workflows_.cancel(peer, rq); }
    void schedules_cmd(const std::string& peer, const protocol::request& rq) { schedules_.list(peer, rq); }
    // ---- workflow listing and schedule control ----
    static const std::unordered_map<std::string_view, client_command>& ops_commands();
    // The command of that name, from either table; nullptr = unknown.
    static client_command client_command_of(std::string_view name);
    void workflows_cmd(const std::string& peer, const protocol::request& rq) { workflows_.list(peer, rq); }
    void schedule_trigger_cmd(const std::string& peer, const protocol::request& rq) { schedules_.trigger(peer, rq); }
    void schedule_pause_cmd(const std::string& peer, const protocol::request& rq) {
        schedules_.set_paused(peer, rq, true);
    }
    void schedule_resume_cmd(const std::string& peer, const protocol::request& rq) {
        schedules_.set_paused(peer, rq, false);
    }

    // ---- queue control and flow limits (queue_control.cpp) ----
    void queues_cmd(const std::string& peer, const protocol::request& rq);
    void pause_cmd(const std::string& peer, const protocol::request& rq) { set_paused(peer, rq, true); }
    void resume_cmd(const std::string& peer, const protocol::request& rq) { set_paused(peer, rq, false); }
    void set_paused(const std::string& peer, const protocol::request& rq, bool paused);
    void limit_cmd(const std::string& peer, const protocol::request& rq);
    // Stores an operator's change and applies it to dispatch.
    void save_flow(flow_kind k, const std::string& name, const flow_settings& s);
    // Applies config + settings again and counts the running attempts.
    void apply_flow();
    void recover_flow();
    // Whether a task of `queue` (or, with a handler, of that handler) may
    // start now; one held by a rate lowers flow_wake_.
    bool queue_may_start(const std::string& queue);
    bool handler_may_start(const std::string& handler);
    void flow_started(const task_record& r);
    void flow_stopped(const task_record& r);
    // A queue's counts, pause and limits, as QUEUES and STATS show them.
    protocol::queue_stats queue_view(const std::string& queue) const;
    void add_flow(protocol::queue_stats& q) const;
    std::vector<protocol::handler_stats> handler_views() const;
    // ---- operator verbs as bulk jobs (jobs/job_commands.cpp, jobs/jobs.cpp) ----
    void purge_cmd(const std::string& peer, const protocol::request& rq);
    void delete_cmd(const std::string& peer, const protocol::request& rq);
    void run_now_cmd(const std::string& peer, const protocol::request& rq);
    void job_cmd(const std::string& peer, const protocol::request& rq);
    // CANCEL and RETRY without an id: a job over the request's filters.
    void cancel_filter(const std::string& peer, const protocol::request& rq);
    void retry_filter(const std::string& peer, const protocol::request& rq);
    // The filters of a bulk verb's request, checked for `kind` (a state it
    // cannot act on, no filter without `all`), or why they are refused.
    result<task_filter> job_filter(const protocol::request& rq, job_kind kind) const;
    // Stores a new job, runs its first slice in this turn and answers the
    // request with its job_info. `ids` (optional) gets the ids the first
    // slice changed when that slice finished the job.
    void start_job(bulk_job j, const std::string& peer, std::string_view command, uint64_t req,
                   std::vector<std::string>* ids = nullptr);
    // Advances the running jobs within this turn's share of time (on_timers).
    void run_jobs();
    // One slice of `j`: at most job_slice_tasks tasks, until the turn's
    // job time is used up. Writes the job with its new cursor.
    void run_slice(bulk_job& j, std::vector<std::string>* ids = nullptr);
    // Applies `j` to one task (as it is now); true when it changed it.
    bool apply_job(bulk_job& j, task_record& r);
    void finish_job(const bulk_job& j);
    void save_job(const bulk_job& j);
    // Keeps the last finished_jobs_kept finished jobs in the store.
    void prune_jobs();
    void recover_jobs();
    bool job_time_left();
    // When the running jobs want the loop; nullopt = none running.
    std::optional<int64_t> jobs_deadline() const;
    // An explicit retry: a fresh start of a FAILED, CANCELLED or EXPIRED task.
    void restart_task(task_record& r);

    // ---- backend (backend.cpp) ----
    // A command any backend peer may send (a worker saying HELLO, its
    // supervisor), and one only a registered worker may send.
    using peer_command = void (engine::*)(const protocol::incoming& in, const protocol::message& m);
    using worker_command = void (engine::*)(worker& w, const protocol::message& m);
    static const std::unordered_map<std::string_view, peer_command>& peer_commands();
    static const std::unordered_map<std::string_view, worker_command>& worker_commands();
    void hello(const protocol::incoming& in, const protocol::message& m);
    void dead(const protocol::incoming& in, const protocol::message& m);
    void plugins_changed(const protocol::incoming& in, const protocol::message& m);
    void results(worker& w, const protocol::message& m);
    void apply_outcome(worker& w, const protocol::outcome& o);
    void started(worker& w, const std::string& id);
    void heartbeat(worker& w, const protocol::message& m);
    void renew(worker& w, const task_id& id);
    bool adopt(worker& w, const task_id& id, uint32_t attempt);
    std::size_t keep_held(worker& w, const std::vector<protocol::held_task>& held);
    void credit(worker& w, const protocol::message& m);
    void progress(worker& w, const protocol::message& m);
    void checkpoint(worker& w, const protocol::message& m);
    void spawn(worker& w, const protocol::message& m);
    // Creates one subtask of `parent` (or finds the one its key names).
    task_id spawn_one(task_record& parent, protocol::task_spec spec, const std::string& peer);
    // The idempotency key of a subtask: its parent's id and the key.
    static std::string spawn_key(const task_id& parent, const std::string& key);
    void refuse_spawn(const std::string& peer, uint64_t req, errc code, const std::string& why);
    void refuse_spawn(const std::string& peer, uint64_t req, const std::string& code, const std::string& why);
    void bye(worker& w, const protocol::message& m);
    // `running`: the tasks its slots were running when it died, if known.
    void remove_worker(const std::string& id, bool crashed, const std::string& why,
                       const std::vector<std::string>* running = nullptr);
    void send_back(const std::string& peer, std::string_view command, const protocol::control& c);

    // ---- inspection: attempt history and the submit guard (inspection.cpp) ----
    // Opens the history entry of the attempt `r` starts on `w` (running
    // `handler`: the plugin version that serves it is named when known).
    void begin_attempt(task_record& r, const worker& w, const handler_ref& handler);
    // Closes the current attempt's entry (or adds a closed one when it was
    // never opened, e.g. an attempt adopted after a restart).
    void end_attempt(task_record& r, std::string_view outcome, const std::string& error,
                     std::optional<int64_t> error_code = std::nullopt, const std::string& version = {});
    // What an attempt that ended without a result was: cancelled (asked
    // to stop), timeout (past its timeout) or lost (worker gone or silent).
    std::string_view lost_outcome(const task_record& r) const;
    // The outcome an attempt's reported status is recorded as.
    static std::string_view attempt_outcome(const std::string& status);
    // Records the handlers a worker offers (HELLO) or offered until now
    // (it leaves), in memory and in the meta table.
    void remember_offers(const std::vector<protocol::handler_info>& handlers);
    void recover_handler_memory();
    // Why `handler` may never run ("no worker has offered X in the last
    // 7d"): no connected worker serves it and none has offered it (or the
    // pinned version) within handler_memory_ms. nullopt = it is served or
    // was offered recently.
    std::optional<std::string> unoffered(const std::string& handler) const override;
    // unoffered() for each distinct handler of a batch, in order.
    std::vector<std::string> unoffered(const std::vector<protocol::task_spec>& tasks) const;
    // A SUBMIT naming handlers nobody offered: warnings in `rep`, or, with
    // rq.strict, refused (unknown_handler) and false.
    bool guard_submit(const std::string& peer, const protocol::request& rq, protocol::reply& rep);

    // ---- crashes (crashes.cpp) ----
    // The blame of each task a crashed worker held (`held` in the order
    // they were sent), parallel to `held`.
    std::vector<blame> blame_crash(const std::vector<task_id>& held, uint32_t concurrency,
                                   const std::vector<std::string>* running) const;
    // Counts `b` on the task; true when it makes the task poison.
    bool charge(task_record& r, blame b);
    std::string poison_error(const task_record& r) const;
    // A worker removed without a crash (unroutable, silent) whose
    // supervisor may still report it dead: what it held, kept a while.
    struct departure {
        std::string supervisor;
        std::string user_id;
        std::vector<task_id> held;  // in the order sent
        uint32_t concurrency = 0;
        int64_t at_ms = 0;
    };
    void remember_departure(const worker& w, const std::vector<task_id>& held, uint32_t concurrency);
    // A DEAD for a worker already removed as a departure: the crash is
    // charged as it would have been, to tasks that may be anywhere now.
    bool charge_departed(const protocol::incoming& in, const std::string& worker_id,
                         const std::vector<std::string>* running);
    void charge_late(const task_id& id, blame b);
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
    ready_index ready_;
    live_index live_;                          // QUEUED and RUNNING tasks, for listings
    std::vector<ready_handler> handler_refs_;  // parallel to ready_'s interned handlers
    bool alone_queued_ = false;                // a task that runs alone was queued since the index was empty
    deadline_set delayed_;                     // PENDING / RETRYING: due time
    deadline_set ttl_;                         // QUEUED with a TTL: expiry
    deadline_set leases_;                      // RUNNING: lease end
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
    handler_defaults defaults_;  // what workers announced, kept in the meta table
    handler_memory offered_;     // which handlers workers offered, when (the submit guard)
    std::vector<std::string> unreachable_;
    std::map<std::string, departure> departed_;  // by worker id; see remember_departure
    // Finished tasks whose submitter asked for DONE, by client: one DONE per
    // client per turn (`task` for one, `tasks` for several).
    std::map<std::string, std::vector<protocol::task_info>> pending_done_;
    std::map<std::string, protocol::dispatch> early_dispatch_;
    uint64_t dispatch_order_ = 0;
    std::vector<out_message> early_;  // see take_early()
    int64_t next_heartbeat_ = 0;

    status_waiters waiters_;
    event_bus events_{out_.events};
    task_counters counters_;
    workflow_engine workflows_{*this, log_};
    schedule_engine schedules_;
    metrics_recorder metrics_;
    // Run-time figures (publish_metrics.cpp): the run time the worker
    // measured for the outcome being applied, in microseconds (nullopt
    // outside apply_outcome, or from an older worker).
    std::optional<int64_t> outcome_run_us_;
    // The attempt's run time in seconds: the worker's own figure, else from
    // its start as the broker saw it; < 0 when it never started.
    double run_seconds(const task_record& r) const;
    store_space space_;  // measured once a second for the metrics
    int64_t fill_checked_ms_ = 0;
    // Figures that cost a store read per queue or a walk over the running
    // tasks, refreshed once a second (publish_metrics.cpp).
    std::map<std::string, int64_t> oldest_ready_ms_;      // queue -> when its oldest ready task became ready
    std::map<std::string, uint64_t> running_by_handler_;  // handler (no @version) -> attempts a slot started
    int64_t slow_figures_ms_ = 0;
    // Set by the first publish_metrics: a broker that publishes none (no
    // HTTP) neither refreshes these figures nor wakes for them.
    bool metrics_wanted_ = false;
    void refresh_slow_figures();
    int64_t hold_until_ms_ = 0;     // see hold_new_work
    int64_t dispatch_hold_ms_ = 0;  // see hold_dispatch
    std::string hold_why_;
    bool full_logged_ = false;
    flow_control flow_{cfg_};
    std::optional<int64_t> flow_wake_;  // when a token is due for a queue held by its rate
    // Malformed messages are a peer's to repeat at will: one warning per
    // minute in full, then a count (backend.cpp).
    protocol::log_gate malformed_log_;
    // Retention: how long finished tasks are kept, and the time of the
    // first expiry entry (nullopt = none), which wakes the loop to sweep.
    retention_policy retention_{cfg_.retention, cfg_.queues};
    std::optional<int64_t> next_expiry_ms_;
    // Expiry entries this turn wrote: the sweep's pace (sweep_slice.hpp).
    uint32_t expiries_this_turn_ = 0;
    // Per final state, the by-state index key the walk of the finished
    // tasks goes on from (the ones before it were deleted or have an
    // expiry of their own); kept in meta across restarts.
    std::array<std::string, 4> finished_from_;
    std::string& finished_from(task_state s);
    // Bulk jobs (jobs/): the running ones by id, oldest first.
    std::map<uint64_t, bulk_job> jobs_;
    uint64_t last_job_id_ = 0;
    int64_t retry_jobs_held_until_ = 0;                                  // new work refused: retry jobs wait
    std::optional<std::chrono::steady_clock::time_point> job_turn_end_;  // this turn's job time
};

int64_t now_ms();

// New work is refused above this store fill: the rest is the reserve that
// lets running and queued work finish (results, state changes).
inline constexpr double store_fill_limit = 0.95;
// After a failed store write, new work is refused this long (then tried
// again; a write that fails again starts another hold).
inline constexpr int64_t store_hold_ms = 10000;

}  // namespace taskmill::broker
