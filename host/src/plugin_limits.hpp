// What the host accepts from a plugin, shared by the init and execute tables.
#pragma once

#include <cstdint>

#include <taskmill/protocol/wire.hpp>

namespace taskmill::host {

// The largest result, checkpoint and spawn payload a plugin may hand
// the host: the broker's largest body less room for the envelope.
inline constexpr uint64_t plugin_buffer_limit = protocol::default_max_body - 64 * 1024;

}  // namespace taskmill::host
