// taskmill/plugin/context.hpp -- the C++ view of the host table: `context`
// for one execute() call, `init_context` for the plugin's init(). Part of
// plugin.hpp (include that). A context belongs to one call on one thread,
// like the tm_ctx it wraps.
//
// Host functions that fail throw the exception their code means:
//   TM_E_TOO_LARGE   -> too_large_error (permanent; catch it to fall back)
//   TM_E_UNAVAILABLE -> retryable_error
//   TM_E_INVALID, TM_E_STATE -> permanent_error
//   TM_E_INTERNAL and unknown codes -> retryable_error
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include <taskmill/plugin.h>
#include <taskmill/plugin/errors.hpp>
#include <taskmill/plugin/mp.hpp>

namespace taskmill::plugin {

inline tm_str to_str(std::string_view s) noexcept { return tm_str{s.data(), s.size()}; }
inline tm_bytes to_bytes(std::string_view s) noexcept {
    return tm_bytes{reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view view(tm_str s) noexcept {
    return s.data != nullptr ? std::string_view(s.data, s.size) : std::string_view();
}
inline std::string_view view(tm_bytes b) noexcept {
    return b.data != nullptr ? std::string_view(reinterpret_cast<const char*>(b.data), b.size) : std::string_view();
}

// What host->limit() reports on (TM_LIMIT_*).
enum class limit : int32_t {
    result = TM_LIMIT_RESULT,
    checkpoint = TM_LIMIT_CHECKPOINT,
    spawn = TM_LIMIT_SPAWN,
};

// A short name of a host error code, for messages.
inline std::string host_code_name(int32_t rc) {
    switch (rc) {
        case TM_E_INVALID: return "TM_E_INVALID";
        case TM_E_TOO_LARGE: return "TM_E_TOO_LARGE";
        case TM_E_STATE: return "TM_E_STATE";
        case TM_E_NOT_FOUND: return "TM_E_NOT_FOUND";
        case TM_E_UNAVAILABLE: return "TM_E_UNAVAILABLE";
        case TM_E_INTERNAL: return "TM_E_INTERNAL";
        default: return "code " + std::to_string(rc);
    }
}

// What init() and execute() share: logging, error details, limits.
class host_view {
public:
    host_view(const tm_host_api* host, tm_ctx* ctx) noexcept : host_(host), ctx_(ctx) {}

    bool log_enabled(int32_t level) const noexcept {
        return host_->log_enabled != nullptr && host_->log_enabled(ctx_, level) != 0;
    }
    void log(int32_t level, std::string_view msg) const noexcept {
        if (host_->log != nullptr) host_->log(ctx_, level, to_str(msg));
    }
    void debug(std::string_view msg) const noexcept { log(TM_LOG_DEBUG, msg); }
    void info(std::string_view msg) const noexcept { log(TM_LOG_INFO, msg); }
    void warn(std::string_view msg) const noexcept { log(TM_LOG_WARN, msg); }
    void error(std::string_view msg) const noexcept { log(TM_LOG_ERROR, msg); }

    // The host's size limit in bytes for `what`; 0 if unknown (a 1.0 host
    // has no limit() function).
    uint64_t limit(::taskmill::plugin::limit what) const noexcept {
        bool has = host_->struct_size >= offsetof(tm_host_api, limit) + sizeof(host_->limit) && host_->limit != nullptr;
        return has ? host_->limit(ctx_, static_cast<int32_t>(what)) : 0;
    }

    // Details for the status the call returns (the trampolines call these for
    // the exceptions they catch). `code` is plugin-defined (tm_error.code).
    void set_error(std::string_view message, int64_t retry_after_ms = -1, int32_t code = 0) const noexcept {
        if (host_->set_error == nullptr) return;
        tm_error e{};
        e.struct_size = sizeof(tm_error);
        e.code = code;
        e.message = to_str(message);
        e.retry_after_ms = retry_after_ms;
        (void)host_->set_error(ctx_, &e);
    }
    void set_error(int32_t code, std::string_view message, int64_t retry_after_ms = -1) const noexcept {
        set_error(message, retry_after_ms, code);
    }

    const tm_host_api* host() const noexcept { return host_; }
    tm_ctx* raw() const noexcept { return ctx_; }

protected:
    // Throws what a failed host call means (see the table at the top).
    // `size` is the buffer handed over and `which` its limit, for
    // TM_E_TOO_LARGE.
    [[noreturn]] void throw_host_error(int32_t rc, std::string_view call, uint64_t size,
                                       ::taskmill::plugin::limit which) const {
        std::string what = std::string(call) + " failed: ";
        switch (rc) {
            case TM_E_TOO_LARGE: {
                uint64_t max = limit(which);
                throw too_large_error(what + std::to_string(size) + " bytes is over the host's limit" +
                                          (max != 0 ? " of " + std::to_string(max) + " bytes" : std::string()) +
                                          " (TM_E_TOO_LARGE)",
                                      size, max);
            }
            case TM_E_INVALID: throw permanent_error(what + "the host refused the request (TM_E_INVALID)");
            case TM_E_STATE: throw permanent_error(what + "not allowed here (TM_E_STATE)");
            case TM_E_UNAVAILABLE:
                throw retryable_error(what + "the broker or storage is unavailable (TM_E_UNAVAILABLE)");
            default: throw retryable_error(what + "host error " + host_code_name(rc));
        }
    }

    const tm_host_api* host_;
    tm_ctx* ctx_;
};

// The context of the plugin's init(): its configuration and the log. Throw
// from a state's constructor (or call fail()) to refuse to start; the
// message reaches the host through set_error().
class init_context : public host_view {
public:
    init_context(const tm_host_api* host, tm_ctx* ctx, tm_bytes config) noexcept
        : host_view(host, ctx), config_(config) {}

    // The configuration the host passed (msgpack), as is.
    std::string_view config_bytes() const noexcept { return view(config_); }

    // The configuration decoded; nil when the host passed none, so
    // `config()["key"].as_int(7)` reads a default. Throws permanent_error if
    // it is not valid msgpack.
    mp::value config() const {
        if (config_.size == 0) return {};
        std::string err;
        auto v = mp::unpack(config_bytes(), &err);
        if (!v) throw permanent_error("plugin config is not valid msgpack: " + err);
        return *v;
    }

    // Refuses to start: init() fails with `message` (and `code`).
    [[noreturn]] void fail(const std::string& message, int32_t code = 0) const { throw permanent_error(code, message); }

private:
    tm_bytes config_;
};

namespace detail {
// What TASKMILL_PLUGIN_WITH_STATE stores as the plugin state: a holder with
// a virtual destructor, so context::state<S>() can check the type.
struct state_base {
    virtual ~state_base() = default;
};
template <class S> struct state_holder final : state_base {
    explicit state_holder(init_context& c) : value(c) {}
    S value;
};
}  // namespace detail

// Wraps the task, the host table, the plugin state and the tm_ctx of one
// execute() call. Everything it returns as a view is borrowed until
// execute() returns.
class context : public host_view {
public:
    context(const tm_task* task, const tm_host_api* host, tm_ctx* ctx, void* plugin_state = nullptr) noexcept
        : host_view(host, ctx), task_(task), plugin_state_(plugin_state) {}

    const tm_task& task() const noexcept { return *task_; }
    std::string_view id() const noexcept { return view(task_->task_id); }
    std::string_view handler() const noexcept { return view(task_->handler); }
    std::string_view parent() const noexcept { return view(task_->parent_task_id); }
    uint32_t attempt() const noexcept { return task_->attempt; }
    int64_t deadline_unix_ms() const noexcept { return task_->deadline_unix_ms; }
    std::string_view payload_bytes() const noexcept { return view(task_->payload); }

    // The payload decoded; an empty payload is nil. Throws permanent_error
    // (the task fails) if it is not valid msgpack.
    mp::value payload() const {
        if (task_->payload.size == 0) return {};
        std::string err;
        auto v = mp::unpack(payload_bytes(), &err);
        if (!v) throw permanent_error("payload is not valid msgpack: " + err);
        return *v;
    }

    // The state of a plugin declared with TASKMILL_PLUGIN_WITH_STATE(..., S,
    // ...). Shared by every execute() of the plugin, possibly on several
    // threads at once: protect what changes. Throws permanent_error if the
    // plugin has no state or a state of another type.
    template <class S> S& state() const {
        auto* base = static_cast<detail::state_base*>(plugin_state_);
        auto* holder = base != nullptr ? dynamic_cast<detail::state_holder<S>*>(base) : nullptr;
        if (holder == nullptr) {
            throw permanent_error(base == nullptr ? "context::state: the plugin has no state "
                                                    "(declare it with TASKMILL_PLUGIN_WITH_STATE)"
                                                  : "context::state: the plugin's state is of another type");
        }
        return holder->value;
    }

    bool cancelled() const noexcept { return host_->is_cancelled != nullptr && host_->is_cancelled(ctx_) != 0; }

    // Throws `cancelled` (the handler returns TM_CANCELLED) once the task
    // has been cancelled or its deadline has passed.
    void throw_if_cancelled() const {
        if (cancelled()) throw ::taskmill::plugin::cancelled{};
    }

    // Reports progress; fraction in [0, 1] or negative if unknown.
    void progress(double fraction, std::string_view note = {}) const noexcept {
        if (host_->report_progress != nullptr) (void)host_->report_progress(ctx_, fraction, to_str(note));
    }

    // Stores a checkpoint. Returns only once it is durable; throws
    // too_large_error over the host's limit, retryable_error if the broker
    // is unavailable.
    void checkpoint_save(std::string_view state) const {
        int32_t rc = host_->checkpoint_save != nullptr ? host_->checkpoint_save(ctx_, to_bytes(state)) : TM_E_STATE;
        if (rc != 0) throw_host_error(rc, "checkpoint_save", state.size(), ::taskmill::plugin::limit::checkpoint);
    }
    void checkpoint_save(const std::string& state) const { checkpoint_save(std::string_view(state)); }
    void checkpoint_save(const mp::value& state) const { checkpoint_save(std::string_view(mp::pack(state))); }

    // The last checkpoint of this task (copied), or nullopt if there is
    // none. Throws retryable_error if the broker is unavailable (that is
    // not "no checkpoint").
    std::optional<std::string> checkpoint_load() const {
        tm_bytes out{nullptr, 0};
        int32_t rc = host_->checkpoint_load != nullptr ? host_->checkpoint_load(ctx_, &out) : TM_E_STATE;
        if (rc == TM_E_NOT_FOUND) return std::nullopt;
        if (rc != 0) throw_host_error(rc, "checkpoint_load", 0, ::taskmill::plugin::limit::checkpoint);
        return std::string(view(out));
    }

    // Submits a subtask and returns its id. Throws permanent_error if the
    // host refuses it (e.g. an unknown handler), too_large_error over the
    // host's limit, retryable_error if the broker is unavailable.
    std::string spawn(std::string_view handler_name, std::string_view payload, std::string_view key = {},
                      int64_t delay_ms = 0) const {
        tm_spawn_request req{};
        req.struct_size = sizeof(tm_spawn_request);
        req.handler = to_str(handler_name);
        req.payload = to_bytes(payload);
        req.key = to_str(key);
        req.delay_ms = delay_ms;
        tm_str out{nullptr, 0};
        int32_t rc = host_->spawn != nullptr ? host_->spawn(ctx_, &req, &out) : TM_E_STATE;
        if (rc != 0) {
            throw_host_error(rc, "spawn of " + std::string(handler_name), payload.size(),
                             ::taskmill::plugin::limit::spawn);
        }
        return std::string(view(out));
    }
    std::string spawn(std::string_view handler_name, const std::string& payload, std::string_view key = {},
                      int64_t delay_ms = 0) const {
        return spawn(handler_name, std::string_view(payload), key, delay_ms);
    }
    std::string spawn(std::string_view handler_name, const mp::value& payload, std::string_view key = {},
                      int64_t delay_ms = 0) const {
        return spawn(handler_name, std::string_view(mp::pack(payload)), key, delay_ms);
    }

    // Sets the result (msgpack). Throws too_large_error over the host's
    // limit (nothing is stored: catch it to fall back), and the table's
    // exception for any other refusal.
    void set_result(std::string_view bytes) const {
        int32_t rc = host_->set_result != nullptr ? host_->set_result(ctx_, to_bytes(bytes)) : TM_E_STATE;
        if (rc != 0) throw_host_error(rc, "set_result", bytes.size(), ::taskmill::plugin::limit::result);
    }
    void set_result(const std::string& bytes) const { set_result(std::string_view(bytes)); }
    void set_result(const mp::value& v) const { set_result(std::string_view(mp::pack(v))); }

private:
    const tm_task* task_;
    void* plugin_state_;
};

}  // namespace taskmill::plugin
