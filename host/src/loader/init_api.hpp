// The tm_host_api table a plugin's init() sees: every function exists;
// logging, set_error and limit work, the task functions return TM_E_STATE.
#pragma once

#include <cstdint>
#include <string>

#include <taskmill/plugin.h>

namespace spdlog {
class logger;
}

namespace taskmill::host::detail {

// The host side of one init() call (passed to the plugin as its tm_ctx).
struct init_call {
    std::string plugin;  // the descriptor's name, for the log tag
    spdlog::logger* log = nullptr;
    std::string error;  // set_error's message, kept for the refusal
    int32_t error_code = 0;
};

const tm_host_api& init_host_api();
tm_ctx* as_ctx(init_call& call);

}  // namespace taskmill::host::detail
