// taskmill/client/workflow.hpp -- workflows (DAGs of steps) and schedules
// from C++.
//
// A workflow_builder assembles the JSON definition that
// `taskmill workflow submit FILE.json` reads (docs/WORKFLOWS.md); a
// workflow_client submits it, follows it and cancels it. Example:
//
//   taskmill::client::workflow_builder wf("diamond");
//   wf.step("a", "echo.echo", {{"x", 1}});
//   wf.step("b", "demo.sleep", {{"ms", 100}}, {"a"});
//   wf.step("c", "demo.sleep", {{"ms", 100}}, {"a"});
//   wf.step("d", "echo.echo", nullptr, {"b", "c"}).retries = 2;
//   taskmill::client::workflow_client wc;
//   auto id = wc.submit(wf);             // result<std::string>
//   auto done = wc.wait(*id, 30s);       // result<json>: the status object
//
// A workflow_client has its own connection (one DEALER and I/O thread, as
// taskmill::client::client); all its functions are thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <taskmill/client/client.hpp>

namespace taskmill::client {

struct workflow_step {
    std::string name;
    std::string handler;
    nlohmann::json payload;  // null = no payload
    std::vector<std::string> depends_on;
    std::string queue;  // empty = broker default
    std::optional<int32_t> priority;
    std::optional<int32_t> retries;
    std::optional<milliseconds> timeout;
};

class workflow_builder {
public:
    explicit workflow_builder(std::string name = {}) : name_(std::move(name)) {}
    // Adds a step and returns it, to set its other options.
    workflow_step& step(std::string name, std::string handler, nlohmann::json payload = nullptr,
                        std::vector<std::string> depends_on = {});
    // fail_fast (default): a failed step cancels the steps not started yet.
    // continue: independent branches go on; dependents of a failure are SKIPPED.
    workflow_builder& fail_fast(bool yes = true);
    // The definition, as `taskmill workflow submit` reads it.
    nlohmann::json to_json() const;

private:
    std::string name_;
    bool fail_fast_ = true;
    std::vector<workflow_step> steps_;
};

// WORKFLOWS: which workflows to list, a page at a time.
struct workflow_filter {
    std::string state;   // RUNNING SUCCEEDED FAILED CANCELLED; empty = any
    uint32_t limit = 0;  // 0 = 100; at most 1000
    std::string before;  // a page's `next`: list the workflows older than it
};

// One workflow as WORKFLOWS lists it. `done` counts the steps in a final
// state, `failed` those FAILED or EXPIRED.
struct workflow_summary {
    std::string id;
    std::string name;  // empty = none (at most 256 bytes of it)
    std::string state;
    uint64_t steps = 0;
    uint64_t done = 0;
    uint64_t failed = 0;
    int64_t created_ms = 0;
    int64_t finished_ms = 0;  // 0 = running
};

struct workflow_page {
    std::vector<workflow_summary> workflows;  // newest first
    // Non-empty when more may follow: pass it as `before`. A page may hold
    // fewer than `limit` (even none) with a `next` when the broker stopped
    // at its scan budget.
    std::string next;
};

class workflow_client {
public:
    explicit workflow_client(client_options options = {});
    ~workflow_client();
    workflow_client(const workflow_client&) = delete;
    workflow_client& operator=(const workflow_client&) = delete;

    // Submits a definition; returns the workflow id once the broker has
    // committed it. A cycle, an unknown dependency or handler: invalid_argument.
    result<std::string> submit(const nlohmann::json& definition);
    result<std::string> submit(const workflow_builder& b) { return submit(b.to_json()); }
    // The status object: id, name, state, on_failure, created_ms,
    // finished_ms, steps [{name, handler, depends_on, state, task, attempts,
    // error, result}], result {sink step: result}.
    result<nlohmann::json> status(const std::string& id);
    // Polls status until the workflow is final or `timeout` passes
    // (errc::conflict then).
    result<nlohmann::json> wait(const std::string& id, milliseconds timeout);
    // Cancels the steps not finished; returns the broker's note.
    result<std::string> cancel(const std::string& id);
    // {"schedules": [{name, handler, queue, every, cron, timezone,
    //                 last_fire_ms, next_fire_ms, paused, misfires}]}
    // (next_fire_ms is 0 while paused or when it never fires again).
    result<nlohmann::json> schedules();

    // ---- workflow listing and schedule control ----
    // One page of workflows, newest first (one request).
    result<workflow_page> workflows(const workflow_filter& filter = {});
    // Fires the schedule once now, outside its cron (its planned fires stay
    // as they were); returns the id of the task it submitted. not_found for
    // a name broker.ini does not define.
    result<std::string> trigger_schedule(const std::string& name);
    // A paused schedule does not fire until resumed; the pause is kept
    // across broker restarts. Resuming plans the next fire from now: the
    // fires that fell in the pause are not made up. Each returns the
    // schedule as schedules() lists it.
    result<nlohmann::json> pause_schedule(const std::string& name);
    result<nlohmann::json> resume_schedule(const std::string& name);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace taskmill::client
