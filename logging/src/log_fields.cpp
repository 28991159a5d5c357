#include "taskmill/logging/log_fields.hpp"

#include "taskmill/logging/stderr_logger.hpp"

namespace taskmill::logging {

namespace {

log_fields& process_fields() {
    static log_fields f;
    return f;
}

thread_local log_fields scope_fields;

// `inner`'s set fields over `out`'s.
void overlay(log_fields& out, const log_fields& inner) {
    auto take = [](std::string& to, const std::string& from) {
        if (!from.empty()) to = from;
    };
    take(out.component, inner.component);
    take(out.task, inner.task);
    take(out.handler, inner.handler);
    take(out.queue, inner.queue);
    take(out.worker, inner.worker);
    take(out.plugin, inner.plugin);
    if (inner.attempt >= 0) out.attempt = inner.attempt;
}

}  // namespace

scoped_log_fields::scoped_log_fields(const log_fields& fields) : active_(json_lines()) {
    if (active_) {
        outer_ = scope_fields;
        overlay(scope_fields, fields);
    }
}

scoped_log_fields::~scoped_log_fields() {
    if (active_) scope_fields = std::move(outer_);
}

void set_process_log_fields(const log_fields& fields) { process_fields() = fields; }

const log_fields& current_log_fields() {
    thread_local log_fields merged;
    merged = process_fields();
    overlay(merged, scope_fields);
    return merged;
}

}  // namespace taskmill::logging
