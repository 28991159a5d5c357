// What a log line is about, beside its message: the task, handler, queue,
// attempt, worker and plugin. JSON lines carry them as fields; text lines
// are unchanged.
#pragma once

#include <cstdint>
#include <string>

namespace taskmill::logging {

struct log_fields {
    std::string component;  // replaces the logger's name when set ("plugin" for a plugin's own lines)
    std::string task;
    std::string handler;
    std::string queue;
    std::string worker;
    std::string plugin;
    int64_t attempt = -1;  // -1: none
};

// The fields of the lines this thread writes while the object lives (an
// MDC): set around a task's execution, they reach every line written
// meanwhile, the plugin's own included. Nested scopes add to the outer one
// (a field set in the inner scope wins). When the process does not log
// JSON it copies nothing and costs one branch.
class scoped_log_fields {
public:
    explicit scoped_log_fields(const log_fields& fields);
    ~scoped_log_fields();
    scoped_log_fields(const scoped_log_fields&) = delete;
    scoped_log_fields& operator=(const scoped_log_fields&) = delete;

private:
    bool active_ = false;
    log_fields outer_;
};

// Fields every line of this process carries unless a scope sets them (a
// worker's id). Set it once, before other threads log.
void set_process_log_fields(const log_fields& fields);

// This thread's fields: the process's, overlaid by the open scopes.
const log_fields& current_log_fields();

}  // namespace taskmill::logging
