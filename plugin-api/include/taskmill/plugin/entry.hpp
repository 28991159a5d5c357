// taskmill/plugin/entry.hpp -- the functions the host calls (execute, init,
// shutdown) for C++ handlers and plugin state, and the declaration macros.
// Part of plugin.hpp (include that). Every entry is noexcept: no exception
// crosses the ABI.
#pragma once

#include <exception>
#include <memory>
#include <type_traits>

#include <taskmill/plugin.h>
#include <taskmill/plugin/context.hpp>
#include <taskmill/plugin/errors.hpp>
#include <taskmill/plugin/mp.hpp>

namespace taskmill::plugin {

// TM_ABI_VERSION without the C casts (clean under -Wold-style-cast).
inline constexpr uint32_t abi_version =
    (static_cast<uint32_t>(TM_ABI_MAJOR) << 16) | static_cast<uint32_t>(TM_ABI_MINOR);

namespace detail {

// Runs `body` (which returns a tm_status) and maps how it ended; errors go
// to the host through `v.set_error` (see errors.hpp for the table).
template <class Body> tm_status guarded(const host_view& v, Body&& body) noexcept {
    try {
        return body();
    } catch (const cancelled&) {
        return TM_CANCELLED;
    } catch (const retryable_error& e) {
        v.set_error(e.code(), e.what(), e.delay() ? e.delay()->count() : -1);
        return TM_RETRY;
    } catch (const handler_error& e) {
        v.set_error(e.code(), e.what());
        return TM_FAIL;
    } catch (const std::exception& e) {
        v.set_error(e.what());
        return TM_FAIL;
    } catch (...) {
        v.set_error("unknown exception");
        return TM_FAIL;
    }
}

// Runs the handler and maps what it returns: void -> TM_OK, tm_status as
// is, mp::value -> set as result then TM_OK.
template <auto Fn> tm_status invoke(context& c) {
    using ret = decltype(Fn(c));
    if constexpr (std::is_void_v<ret>) {
        Fn(c);
        return TM_OK;
    } else if constexpr (std::is_same_v<ret, mp::value>) {
        c.set_result(Fn(c));
        return TM_OK;
    } else {
        return static_cast<tm_status>(Fn(c));
    }
}

// tm_plugin.init for a plugin whose state is an S built from the
// init_context. A throwing constructor fails init with its message.
template <class S>
tm_status init_state(const tm_host_api* host, tm_ctx* ctx, tm_bytes config, void** out_state) noexcept {
    static_assert(std::is_constructible_v<S, init_context&>,
                  "a plugin state must be constructible from taskmill::plugin::init_context&");
    if (host == nullptr || out_state == nullptr) return TM_FAIL;
    init_context c(host, ctx, config);
    return guarded(c, [&] {
        auto holder = std::make_unique<state_holder<S>>(c);
        *out_state = static_cast<state_base*>(holder.release());
        return TM_OK;
    });
}

// tm_plugin.shutdown: destroys what init_state stored. A destructor that
// throws is not allowed to take the host down with it.
template <class S> void shutdown_state(void* state) noexcept {
    try {
        delete static_cast<state_base*>(state);
    } catch (...) {
    }
}

}  // namespace detail

// The execute() for handler function `Fn(context&)`. noexcept: `cancelled`
// becomes TM_CANCELLED, retryable_error TM_RETRY (with its delay and code),
// permanent_error and too_large_error TM_FAIL with their code, any other
// exception TM_FAIL with what(); nothing crosses the ABI.
template <auto Fn>
tm_status trampoline(void* plugin_state, const tm_task* task, const tm_host_api* host, tm_ctx* ctx) noexcept {
    if (task == nullptr || host == nullptr) return TM_FAIL;
    context c(task, host, ctx, plugin_state);
    return detail::guarded(c, [&] { return detail::invoke<Fn>(c); });
}

// Options of a handler declaration (defaults the broker applies).
struct handler_options {
    const char* default_queue = nullptr;
    int64_t default_timeout_ms = 0;
    int32_t default_retries = -1;
    uint32_t flags = 0;
    uint32_t payload_version = 1;
};

// A tm_handler for `Fn`; meant for a static constexpr object.
template <auto Fn> constexpr tm_handler make_handler(const char* name, handler_options o = {}) noexcept {
    return tm_handler{sizeof(tm_handler),   o.flags,          name, o.payload_version, &trampoline<Fn>, o.default_queue,
                      o.default_timeout_ms, o.default_retries};
}

}  // namespace taskmill::plugin

// Declares a handler object `var` named NAME running function FN:
//     TASKMILL_HANDLER(sleep_handler, "demo.sleep", do_sleep);
//     TASKMILL_HANDLER(slow, "demo.slow", do_slow, {.default_timeout_ms = 5000});
#define TASKMILL_HANDLER(var, NAME, FN, ...) \
    static constexpr tm_handler var = ::taskmill::plugin::make_handler<FN>(NAME __VA_OPT__(, ) __VA_ARGS__)

// The descriptor (static storage) and the entry point; used by the two
// macros below.
#define TASKMILL_PLUGIN_DESCRIPTOR_(NAME, VERSION, INIT, SHUTDOWN, ...)                                  \
    static const tm_handler* const taskmill_plugin_handlers_[] = {__VA_ARGS__};                          \
    static const tm_plugin taskmill_plugin_descriptor_ = {                                               \
        sizeof(tm_plugin),                                                                               \
        ::taskmill::plugin::abi_version,                                                                 \
        NAME,                                                                                            \
        VERSION,                                                                                         \
        static_cast<uint32_t>(sizeof(taskmill_plugin_handlers_) / sizeof(taskmill_plugin_handlers_[0])), \
        taskmill_plugin_handlers_,                                                                       \
        INIT,                                                                                            \
        SHUTDOWN};                                                                                       \
    TM_DECLARE_PLUGIN(taskmill_plugin_descriptor_)

// A stateless plugin (no init, no shutdown):
//     TASKMILL_PLUGIN("demo", "1.0.0", &sleep_handler, &spin_handler);
#define TASKMILL_PLUGIN(NAME, VERSION, ...) TASKMILL_PLUGIN_DESCRIPTOR_(NAME, VERSION, nullptr, nullptr, __VA_ARGS__)

// A plugin with state: init() builds a STATE from the init_context (its
// config, its log), shutdown() destroys it, handlers reach it with
// `c.state<STATE>()`:
//     TASKMILL_PLUGIN_WITH_STATE("demo", "1.1.0", demo_state, &sleep_handler);
#define TASKMILL_PLUGIN_WITH_STATE(NAME, VERSION, STATE, ...)                                  \
    TASKMILL_PLUGIN_DESCRIPTOR_(NAME, VERSION, &::taskmill::plugin::detail::init_state<STATE>, \
                                &::taskmill::plugin::detail::shutdown_state<STATE>, __VA_ARGS__)
