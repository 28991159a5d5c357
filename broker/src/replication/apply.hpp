// Applying replicated entries (write_set.hpp) to a member's own store.
//
// Each entry is applied in one write transaction that also records the
// entry's index in the log (meta "applied-index"). An entry at or below the
// recorded index is skipped, so replaying the log after a restart, or after
// a snapshot that was taken ahead of its index, changes nothing.
#pragma once

#include <cstdint>
#include <string_view>

#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker::replication {

// The index of the last entry applied to the store (0: none).
result<uint64_t> applied_index(transaction& txn);

// Applies `entry` as the log's entry `index`: true once it is committed,
// false when the store had already applied `index` (nothing changes). A
// damaged entry is errc::corrupt and changes nothing; a full store is
// errc::unavailable, as for any write.
result<bool> apply_entry(store& st, uint64_t index, std::string_view entry);

}  // namespace taskmill::broker::replication
