// A direct decoder for the body of DONE, the one message the client gets per
// finished task: it reads the msgpack bytes straight into the wire structs,
// with no msgpack::object tree in between and one switch per key.
//
// It knows the DONE reply (`req`, `ok`, `task`, `tasks`) and task_info field
// for field; for anything else (another key, an unexpected type, a value out
// of range) it returns nullopt and the caller falls back to
// protocol::decode_reply, which is the reference. Pure function.
#pragma once

#include <optional>
#include <string_view>

#include <taskmill/protocol/messages.hpp>

namespace taskmill::client::detail {

std::optional<protocol::reply> decode_done(std::string_view body);

}  // namespace taskmill::client::detail
