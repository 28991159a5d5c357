// Bringing a store written by an older release up to the current layout,
// inside the first turn's transaction (engine::recover).
#pragma once

#include <cstddef>

#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker {

struct meta_moved {
    std::size_t workflows = 0;
    std::size_t schedules = 0;
};

// Moves the workflow and schedule records an older release kept in the
// meta table (keys::legacy_*_prefix) to the workflows and schedules tables,
// keyed by workflow id and schedule name, and erases them from meta. All in
// `txn`, so the move is whole or not at all; idempotent: a migrated store
// has nothing left to move (and a record already in its new table is kept
// over its old copy).
result<meta_moved> move_meta_records(transaction& txn);

}  // namespace taskmill::broker
