// Workflows run by the broker: WF_SUBMIT / WF_STATUS / WF_CANCEL, starting
// steps as ordinary tasks (parent = workflow id, tags "workflow:ID" and
// "step:NAME") and reacting to their final states. A client of the engine
// through task_ops: the engine owns one, hands it these commands, tells it
// when a task ends and has it recover at start.
//
// A workflow record lives in the workflows table (id -> encode_workflow)
// and changes in the same transaction as its step tasks, so a broker
// killed at any point restarts with the two consistent.
#pragma once

#include <cstddef>
#include <map>
#include <string>
#include <string_view>

#include <spdlog/logger.h>

#include <taskmill/protocol/messages.hpp>

#include "engine/task_ops.hpp"
#include "workflow/workflow_model.hpp"

namespace taskmill::broker {

class workflow_engine {
public:
    workflow_engine(task_ops& ops, spdlog::logger& log) : ops_(ops), log_(log) {}

    // ---- commands (each replies to `peer`) ----
    void submit(const std::string& peer, const protocol::request& rq);
    void status(const std::string& peer, const protocol::request& rq);
    void cancel(const std::string& peer, const protocol::request& rq);
    // WORKFLOWS: summaries, newest first, a page at a time (workflow_listing.cpp).
    void list(const std::string& peer, const protocol::request& rq);

    // A task reached a final state: if it is a step of a running workflow,
    // the workflow moves on (starts what became ready, skips what cannot
    // run, fails fast, ends).
    void on_task_final(const task_record& r);
    // Loads the running workflows from the store (at start).
    void recover();
    std::size_t running() const { return running_.size(); }

private:
    void start_ready(workflow& w);
    void warn_unoffered(const workflow& w, protocol::reply& rep);
    void fail_fast(workflow& w);
    void settle(workflow& w);
    void save(const workflow& w);
    void emit(const workflow& w, std::string_view type, const wf_step* s);

    task_ops& ops_;
    spdlog::logger& log_;
    std::map<std::string, workflow> running_;  // RUNNING workflows by id
};

}  // namespace taskmill::broker
