// What the host accepts from a plugin, shared by the init and execute tables.
#pragma once

#include <cstdint>

#include <taskmill/plugin.h>
#include <taskmill/protocol/wire.hpp>

namespace taskmill::host {

// The largest result, checkpoint and spawn payload a plugin may hand
// the host: the broker's largest body less room for the envelope.
inline constexpr uint64_t plugin_buffer_limit = protocol::default_max_body - 64 * 1024;

namespace detail {

// host->limit(ctx, what), in init() and execute() alike: 0 for a `what`
// this host does not know.
inline constexpr uint64_t plugin_limit(int32_t what) {
    switch (what) {
        case TM_LIMIT_RESULT:
        case TM_LIMIT_CHECKPOINT:
        case TM_LIMIT_SPAWN: return plugin_buffer_limit;
        default: return 0;
    }
}

}  // namespace detail
}  // namespace taskmill::host
