// Runs one task: the tm_host_api table the plugin sees, and the mapping of
// its return value to an outcome.
#include <sys/resource.h>

#include <cmath>

#include "plugin_limits.hpp"
#include "worker_shared.hpp"

#include <spdlog/spdlog.h>
#include <taskmill/logging/log_fields.hpp>
#include <taskmill/logging/stderr_logger.hpp>
#include <taskmill/protocol/peer_text.hpp>

// The host side of one execute() call; opaque to plugins.
struct tm_ctx {
    taskmill::host::detail::shared_state* s = nullptr;
    taskmill::host::detail::task_run* run = nullptr;
    std::string result;
    std::string error;
    std::optional<int64_t> error_code;  // set_error's code, when not 0
    std::optional<int64_t> retry_after_ms;
    uint64_t refused_result = 0;            // size of a set_result refused as too large, until one is accepted
    std::optional<std::string> checkpoint;  // the latest one: loaded or saved
    std::string spawned_id;                 // borrowed out of spawn()
    taskmill::host::detail::steady::time_point last_progress{};
};

namespace taskmill::host::detail {
namespace {

// A plugin's log message is cut here; an error message (which travels to
// the broker with the outcome) at max_error_bytes.
constexpr std::size_t max_plugin_log_bytes = 8 * 1024;
constexpr std::size_t max_error_bytes = 64 * 1024;

std::string_view view(tm_str s) { return s.data != nullptr ? std::string_view(s.data, s.size) : std::string_view(); }
std::string_view view(tm_bytes b) {
    return b.data != nullptr ? std::string_view(reinterpret_cast<const char*>(b.data), b.size) : std::string_view();
}

spdlog::level::level_enum to_level(int32_t level) {
    switch (level) {
        case TM_LOG_TRACE: return spdlog::level::trace;
        case TM_LOG_DEBUG: return spdlog::level::debug;
        case TM_LOG_INFO: return spdlog::level::info;
        case TM_LOG_WARN: return spdlog::level::warn;
        default: return spdlog::level::err;
    }
}

int32_t api_log_enabled(tm_ctx* ctx, int32_t level) {
    return ctx != nullptr && ctx->s->log->should_log(to_level(level)) ? 1 : 0;
}

// A plugin's message as exactly one log line: control characters escaped
// (as \\n, \\r, \\t or \\xNN; other bytes, UTF-8 included, kept), cut at
// max_plugin_log_bytes and marked as cut.
std::string one_log_line(std::string_view message) {
    static constexpr char hex[] = "0123456789abcdef";
    auto shown = message.substr(0, max_plugin_log_bytes);
    // Do not cut a UTF-8 sequence in two: back up to the start of the last one.
    if (shown.size() < message.size()) {
        while (!shown.empty() && (static_cast<unsigned char>(message[shown.size()]) & 0xc0) == 0x80) {
            shown.remove_suffix(1);
        }
    }
    std::string out;
    out.reserve(shown.size() + 32);
    for (char ch : shown) {
        const auto c = static_cast<unsigned char>(ch);
        if (c >= 0x20 && c != 0x7f) out += ch;
        else if (c == '\n') out += "\\n";
        else if (c == '\r') out += "\\r";
        else if (c == '\t') out += "\\t";
        else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0x0f];
        }
    }
    if (shown.size() < message.size()) out += "...(truncated, " + std::to_string(message.size()) + " bytes)";
    return out;
}

// What the JSON lines written while the task runs are about.
logging::log_fields task_fields(const task_run& run) {
    logging::log_fields f;
    f.task = run.item.id;
    f.handler = run.item.handler;
    f.attempt = run.item.attempt;
    if (run.handler != nullptr) f.plugin = run.handler->plugin_name;
    return f;
}

// A plugin's message for a JSON line: as it is (JSON escapes newlines),
// cut like one_log_line does. The task, handler and plugin are fields.
std::string json_log_message(std::string_view message) {
    if (message.size() <= max_plugin_log_bytes) return std::string(message);
    auto shown = message.substr(0, max_plugin_log_bytes);
    while (!shown.empty() && (static_cast<unsigned char>(message[shown.size()]) & 0xc0) == 0x80) {
        shown.remove_suffix(1);
    }
    return std::string(shown) + "...(truncated, " + std::to_string(message.size()) + " bytes)";
}

void api_log(tm_ctx* ctx, int32_t level, tm_str message) {
    if (ctx == nullptr) return;
    try {
        const auto& h = *ctx->run->handler;
        if (logging::json_lines()) {
            // From any thread of the plugin's: the fields come from its ctx.
            auto fields = task_fields(*ctx->run);
            fields.component = "plugin";
            logging::scoped_log_fields about(fields);
            ctx->s->log->log(to_level(level), "{}", json_log_message(view(message)));
            return;
        }
        ctx->s->log->log(to_level(level), "task={} handler={} plugin={} {}", ctx->run->item.id, h.name, h.plugin_name,
                         one_log_line(view(message)));
    } catch (...) {  // a log call must never throw into a plugin
    }
}

int32_t api_is_cancelled(tm_ctx* ctx) {
    if (ctx == nullptr) return 0;
    const auto& run = *ctx->run;
    return run.cancelled.load() || run.stopping.load() || run.deadline_passed() ? 1 : 0;
}

int32_t api_report_progress(tm_ctx* ctx, double fraction, tm_str note) {
    // In [0, 1], or negative for "unknown"; NaN, infinities and > 1 are refused.
    if (ctx == nullptr || !std::isfinite(fraction) || fraction > 1.0) return TM_E_INVALID;
    auto now = steady::now();
    // Rate-limited: the broker does not need every tiny step; the last one always goes.
    if (fraction < 1.0 && now - ctx->last_progress < ctx->s->progress_interval) return 0;
    ctx->last_progress = now;
    protocol::control c;
    c.id = ctx->run->item.id;
    c.fraction = fraction;
    c.note = std::string(view(note));
    ctx->s->mail.post(std::string(protocol::cmd::progress), protocol::encode(c));
    return 0;
}

// Sends `c` as `command` and waits for the broker's reply on this slot thread.
std::optional<protocol::control> call_broker(tm_ctx* ctx, std::string_view command, protocol::control c) {
    auto [req, fut] = ctx->s->calls.open();
    c.req = req;
    ctx->s->mail.post(std::string(command), protocol::encode(c));
    if (fut.wait_for(ctx->s->reply_timeout) != std::future_status::ready) return std::nullopt;
    return fut.get();
}

// Refuses a buffer over the limit at once, naming what and how big.
bool over_limit(tm_ctx* ctx, std::string_view what, std::size_t size) {
    if (size <= plugin_buffer_limit) return false;
    ctx->s->log->warn("task={} {} refused: {} bytes, over the limit of {}", protocol::printable(ctx->run->item.id),
                      what, size, plugin_buffer_limit);
    return true;
}

int32_t api_checkpoint_save(tm_ctx* ctx, tm_bytes state) {
    if (ctx == nullptr) return TM_E_INVALID;
    if (over_limit(ctx, "checkpoint", state.size)) return TM_E_TOO_LARGE;
    protocol::control c;
    c.id = ctx->run->item.id;
    c.data = std::string(view(state));
    auto reply = call_broker(ctx, protocol::cmd::checkpoint, c);
    if (!reply || !reply->ok) {
        ctx->s->log->warn("task={} checkpoint not stored: {}", protocol::printable(c.id),
                          protocol::printable(reply ? reply->error : "no reply from the broker"));
        return TM_E_UNAVAILABLE;
    }
    ctx->checkpoint = std::move(c.data);
    return 0;
}

int32_t api_checkpoint_load(tm_ctx* ctx, tm_bytes* out) {
    if (ctx == nullptr || out == nullptr) return TM_E_INVALID;
    if (!ctx->checkpoint) return TM_E_NOT_FOUND;
    out->data = reinterpret_cast<const uint8_t*>(ctx->checkpoint->data());
    out->size = ctx->checkpoint->size();
    return 0;
}

int32_t api_spawn(tm_ctx* ctx, const tm_spawn_request* r, tm_str* out_id) {
    if (ctx == nullptr || r == nullptr || r->struct_size < offsetof(tm_spawn_request, payload) + sizeof(tm_bytes)) {
        return TM_E_INVALID;
    }
    if (over_limit(ctx, "spawn payload", r->payload.size)) return TM_E_TOO_LARGE;
    protocol::task_spec spec;
    spec.handler = std::string(view(r->handler));
    if (!valid_handler_name(spec.handler.substr(0, spec.handler.find('@')))) return TM_E_INVALID;
    spec.payload = std::string(view(r->payload));
    if (r->struct_size >= offsetof(tm_spawn_request, key) + sizeof(tm_str)) spec.key = std::string(view(r->key));
    if (r->struct_size >= offsetof(tm_spawn_request, delay_ms) + sizeof(int64_t) && r->delay_ms > 0) {
        spec.delay_ms = r->delay_ms;
    }
    spec.parent = ctx->run->item.id;
    protocol::control c;
    c.id = ctx->run->item.id;
    c.tasks.push_back(std::move(spec));
    auto reply = call_broker(ctx, protocol::cmd::spawn, std::move(c));
    if (!reply) return TM_E_UNAVAILABLE;
    if (!reply->ok || reply->ids.empty()) {
        ctx->s->log->warn("task={} spawn refused: {}", protocol::printable(ctx->run->item.id),
                          protocol::printable(reply->error));
        return TM_E_INVALID;
    }
    ctx->spawned_id = reply->ids.front();
    if (out_id != nullptr) *out_id = tm_str{ctx->spawned_id.data(), ctx->spawned_id.size()};
    return 0;
}

int32_t api_set_result(tm_ctx* ctx, tm_bytes result) {
    if (ctx == nullptr) return TM_E_INVALID;
    if (over_limit(ctx, "result", result.size)) {
        ctx->refused_result = result.size;  // a TM_OK without a result that fits fails (to_outcome)
        return TM_E_TOO_LARGE;
    }
    ctx->result.assign(view(result));
    ctx->refused_result = 0;
    return 0;
}

int32_t api_set_error(tm_ctx* ctx, const tm_error* e) {
    if (ctx == nullptr || e == nullptr || e->struct_size < offsetof(tm_error, message) + sizeof(tm_str)) {
        return TM_E_INVALID;
    }
    // Cut so the outcome always fits in one message to the broker.
    auto message = view(e->message);
    ctx->error.assign(message.substr(0, max_error_bytes));
    if (message.size() > max_error_bytes) ctx->error += "...(truncated, " + std::to_string(message.size()) + " bytes)";
    ctx->error_code.reset();
    if (e->code != 0) ctx->error_code = e->code;
    ctx->retry_after_ms.reset();
    if (e->struct_size >= offsetof(tm_error, retry_after_ms) + sizeof(int64_t) && e->retry_after_ms >= 0) {
        ctx->retry_after_ms = e->retry_after_ms;
    }
    return 0;
}

uint64_t api_limit(tm_ctx* /*ctx*/, int32_t what) { return detail::plugin_limit(what); }

tm_host_api make_api() {
    tm_host_api api{};
    api.struct_size = sizeof(tm_host_api);
    api.abi_version = (static_cast<uint32_t>(TM_ABI_MAJOR) << 16) | TM_ABI_MINOR;
    api.log_enabled = &api_log_enabled;
    api.log = &api_log;
    api.is_cancelled = &api_is_cancelled;
    api.report_progress = &api_report_progress;
    api.checkpoint_save = &api_checkpoint_save;
    api.checkpoint_load = &api_checkpoint_load;
    api.spawn = &api_spawn;
    api.set_result = &api_set_result;
    api.set_error = &api_set_error;
    api.limit = &api_limit;
    return api;
}

const tm_host_api host_api = make_api();

tm_str str(const std::string& s) { return tm_str{s.data(), s.size()}; }

// Entry `slot_index` of s.running names the task exactly while its handler runs
// (after any TM_HANDLER_SERIAL wait): a crash in between is charged to it.
tm_status call_handler(shared_state& s, task_run& run, tm_ctx& ctx, uint32_t slot_index) {
    tm_task task{};
    task.struct_size = sizeof(tm_task);
    task.attempt = run.item.attempt;
    task.task_id = str(run.item.id);
    // The bare name: a version pinned at submit ("name@1") is the plugin's own.
    const std::string_view handler_name = std::string_view(run.item.handler).substr(0, run.item.handler.find('@'));
    task.handler = tm_str{handler_name.data(), handler_name.size()};
    task.payload = tm_bytes{reinterpret_cast<const uint8_t*>(run.item.payload.data()), run.item.payload.size()};
    task.deadline_unix_ms = run.deadline_unix_ms.load();
    task.parent_task_id = str(run.item.parent);
    std::unique_lock<std::mutex> serial;
    if ((run.handler->flags & TM_HANDLER_SERIAL) != 0) {
        std::mutex* m = nullptr;
        {
            std::lock_guard lock(s.serial_mu);
            auto& slot = s.serial_locks[run.handler->handler];
            if (!slot) slot = std::make_unique<std::mutex>();
            m = slot.get();
        }
        serial = std::unique_lock(*m);
    }
    s.running.set(slot_index, run.item.id);
    tm_status st = run.handler->handler->execute(run.handler->plugin_state, &task, &host_api, &ctx);
    s.running.clear(slot_index);
    return st;
}

// An allocation failure under the worker's RLIMIT_AS (--memory-limit-mb) is
// reported with the limit as its reason, not as a bare "std::bad_alloc".
std::string explain_memory_failure(std::string error) {
    rlimit lim{};
    if (error.find("bad_alloc") == std::string::npos || ::getrlimit(RLIMIT_AS, &lim) != 0 ||
        lim.rlim_cur == RLIM_INFINITY) {
        return error;
    }
    return "memory limit of " + std::to_string(lim.rlim_cur >> 20) + " MB reached (" + error + ")";
}

protocol::outcome to_outcome(const task_run& run, tm_status st, tm_ctx& ctx) {
    protocol::outcome o;
    o.id = run.item.id;
    o.attempt = run.item.attempt;
    o.version = run.handler->version;
    // A handler that comes back after its deadline has timed out, whatever it says.
    o.error_code = ctx.error_code;
    if (run.deadline_passed()) {
        o.status = "timeout";
        o.error = ctx.error.empty() ? "deadline passed" : ctx.error;
        return o;
    }
    if (st == TM_OK && ctx.refused_result > 0) {  // its result cannot reach the broker
        o.status = "fail";
        o.error = "result too large (" + std::to_string(ctx.refused_result) + " bytes, limit " +
                  std::to_string(plugin_buffer_limit) + ")";
        return o;
    }
    switch (st) {
        case TM_OK:
            o.status = "ok";
            o.result = std::move(ctx.result);
            break;
        case TM_RETRY:
            o.status = "retry";
            o.retry_after_ms = ctx.retry_after_ms;
            break;
        case TM_FAIL: o.status = "fail"; break;
        case TM_CANCELLED: o.status = "cancelled"; break;
        default:
            o.status = "fail";
            ctx.error = "handler returned unknown status " + std::to_string(st);
            break;
    }
    if (o.status != "ok") o.error = explain_memory_failure(ctx.error.empty() ? o.status : ctx.error);
    return o;
}

// A task the worker itself stopped (stop or retire: task_run::stopping)
// that gave up because of it goes back to the broker, which runs it again.
bool handed_back(const task_run& run, tm_status st) {
    return run.stopping.load() && !run.cancelled.load() && !run.deadline_passed() &&
           (st == TM_CANCELLED || st == TM_RETRY);
}

}  // namespace

void execute_task(shared_state& s, const std::shared_ptr<task_run>& ptr, uint32_t slot) {
    task_run& run = *ptr;
    logging::scoped_log_fields about(logging::json_lines() ? task_fields(run) : logging::log_fields{});
    protocol::outcome o;
    if (run.handler == nullptr) {
        o.id = run.item.id;
        o.attempt = run.item.attempt;
        o.status = "fail";
        o.error = "no handler " + run.item.handler + " on this worker";
    } else if (run.cancelled.load()) {
        o.id = run.item.id;
        o.attempt = run.item.attempt;
        o.status = "cancelled";
        o.error = "cancelled before it started";
    } else if (run.stopping.load()) {
        run.finished = true;  // never started: the BYE hands it back
        return;
    } else {
        // The timeout counts from here, not from the DISPATCH: the task may
        // have waited in the local queue (prefetch).
        if (run.item.timeout_ms > 0) run.deadline_unix_ms = unix_now_ms() + run.item.timeout_ms;
        s.mail.post_started(ptr);
        tm_ctx ctx;
        ctx.s = &s;
        ctx.run = &run;
        ctx.checkpoint = std::move(run.item.checkpoint);
        s.log->debug("task={} handler={} attempt={} start", protocol::printable(run.item.id),
                     protocol::printable(run.item.handler), run.item.attempt);
        const auto began = steady::now();
        s.stats.slot_busy(true);
        tm_status st = call_handler(s, run, ctx, slot);
        const auto ran_ns = std::chrono::nanoseconds(steady::now() - began).count();
        s.stats.slot_busy(false);
        if (s.prefetch != nullptr) {
            s.prefetch->ran(static_cast<uint64_t>(ran_ns));
        }
        if (handed_back(run, st)) {
            s.log->info("task={} handler={} attempt={} stopped for the worker's exit; handed back", run.item.id,
                        run.item.handler, run.item.attempt);
            run.finished = true;  // the I/O thread looks every 10 ms while it holds tasks
            return;
        }
        o = to_outcome(run, st, ctx);
        o.run_us = ran_ns / 1000;  // the broker's run-time histogram counts from here, not from the DISPATCH
        s.stats.ran(run.handler->name, o.status, static_cast<uint64_t>(ran_ns));
        // A success is routine (debug); anything else stays visible.
        auto level = o.status == "ok"                                 ? spdlog::level::debug
                     : o.status == "retry" || o.status == "cancelled" ? spdlog::level::info
                                                                      : spdlog::level::warn;
        s.log->log(level, "task={} handler={} attempt={} status={}{}{}", run.item.id, run.item.handler,
                   run.item.attempt, o.status, o.error.empty() ? "" : " error=", o.error);
    }
    // `reported` before `finished`: finished and not reported means handed
    // back to the I/O thread, which may then say BYE and leave.
    const bool first = !run.reported.exchange(true);
    run.finished = true;
    if (first) s.mail.post_outcome(std::move(o));
}

}  // namespace taskmill::host::detail
