// The broker's side of protocol/size_bound.hpp: hosts and clients drop a
// body over their limit, so every message the broker builds from a list
// (DISPATCH, TASKS, DONE, WF_STATUS) is cut or paged to fit.
#pragma once

#include <cstddef>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/size_bound.hpp>

namespace taskmill::broker {

using protocol::envelope_bound;
using protocol::size_bound;

// Makes `t` fit a message of at most `max_body` bytes on its own: a result
// that cannot fit is left out, and `error` says so (it stays stored).
// Returns whether it had to.
bool fit_alone(protocol::task_info& t, std::size_t max_body);

}  // namespace taskmill::broker
