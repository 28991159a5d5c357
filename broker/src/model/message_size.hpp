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

// Makes `t` fit a message of at most `max_body` bytes on its own: a
// payload that cannot fit is left out first (payload_size stays), then a
// result that cannot fit, and `error` says so (both stay stored). Returns
// whether it had to leave out the result.
bool fit_alone(protocol::task_info& t, std::size_t max_body);

}  // namespace taskmill::broker
