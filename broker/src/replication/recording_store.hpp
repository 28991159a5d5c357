// A store that records what each write transaction changes, for a cluster's
// leader to replicate (write_set.hpp).
//
// Reads and writes go to the inner store as before. When a write
// transaction's commit succeeds and it changed anything, its write set goes
// to the sink, in commit order. A transaction that fails to commit, or is
// dropped without a commit, hands over nothing: its changes are gone from
// the inner store as well.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include <taskmill/broker/store.hpp>

namespace taskmill::broker::replication {

using entry_sink = std::function<void(std::string entry)>;

std::unique_ptr<store> make_recording_store(std::unique_ptr<store> inner, entry_sink sink);

}  // namespace taskmill::broker::replication
