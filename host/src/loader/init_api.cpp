// The host table during init() (see init_api.hpp). tm_ctx is defined by the
// executor for execute() calls; here the ctx pointer is an init_call.
#include "loader/init_api.hpp"

#include <cstddef>

#include <spdlog/spdlog.h>

#include "plugin_limits.hpp"

namespace taskmill::host::detail {
namespace {

init_call* of(tm_ctx* ctx) { return reinterpret_cast<init_call*>(ctx); }

spdlog::level::level_enum to_level(int32_t level) {
    switch (level) {
        case TM_LOG_TRACE: return spdlog::level::trace;
        case TM_LOG_DEBUG: return spdlog::level::debug;
        case TM_LOG_INFO: return spdlog::level::info;
        case TM_LOG_WARN: return spdlog::level::warn;
        default: return spdlog::level::err;
    }
}

int32_t log_enabled(tm_ctx* ctx, int32_t level) {
    return ctx != nullptr && of(ctx)->log->should_log(to_level(level)) ? 1 : 0;
}

void log(tm_ctx* ctx, int32_t level, tm_str message) {
    if (ctx == nullptr) return;
    try {
        std::string_view text = message.data != nullptr ? std::string_view(message.data, message.size) : "";
        of(ctx)->log->log(to_level(level), "plugin={} init: {}", of(ctx)->plugin, text);
    } catch (...) {  // a log call must never throw into a plugin
    }
}

// TM_HAS_FIELD without its C casts.
bool covers(const tm_error* e, std::size_t end) { return e->struct_size >= end; }

int32_t set_error(tm_ctx* ctx, const tm_error* error) {
    if (ctx == nullptr || error == nullptr) return TM_E_INVALID;
    try {
        if (covers(error, offsetof(tm_error, code) + sizeof(error->code))) of(ctx)->error_code = error->code;
        if (covers(error, offsetof(tm_error, message) + sizeof(error->message)) && error->message.data != nullptr) {
            of(ctx)->error.assign(error->message.data, error->message.size);
        }
    } catch (...) {
        return TM_E_INTERNAL;
    }
    return 0;
}

uint64_t limit(tm_ctx* /*ctx*/, int32_t what) { return plugin_limit(what); }

// Task functions: there is no task during init().
int32_t is_cancelled(tm_ctx* /*ctx*/) { return 0; }
int32_t report_progress(tm_ctx* /*ctx*/, double /*fraction*/, tm_str /*note*/) { return TM_E_STATE; }
int32_t checkpoint_save(tm_ctx* /*ctx*/, tm_bytes /*state*/) { return TM_E_STATE; }
int32_t checkpoint_load(tm_ctx* /*ctx*/, tm_bytes* /*out*/) { return TM_E_STATE; }
int32_t spawn(tm_ctx* /*ctx*/, const tm_spawn_request* /*request*/, tm_str* /*out*/) { return TM_E_STATE; }
int32_t set_result(tm_ctx* /*ctx*/, tm_bytes /*result*/) { return TM_E_STATE; }

tm_host_api make_api() {
    tm_host_api api{};
    api.struct_size = sizeof(tm_host_api);
    api.abi_version = (static_cast<uint32_t>(TM_ABI_MAJOR) << 16) | TM_ABI_MINOR;
    api.log_enabled = &log_enabled;
    api.log = &log;
    api.is_cancelled = &is_cancelled;
    api.report_progress = &report_progress;
    api.checkpoint_save = &checkpoint_save;
    api.checkpoint_load = &checkpoint_load;
    api.spawn = &spawn;
    api.set_result = &set_result;
    api.set_error = &set_error;
    api.limit = &limit;
    return api;
}

const tm_host_api api_table = make_api();

}  // namespace

const tm_host_api& init_host_api() { return api_table; }

tm_ctx* as_ctx(init_call& call) { return reinterpret_cast<tm_ctx*>(&call); }

}  // namespace taskmill::host::detail
