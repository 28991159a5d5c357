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
// The index in the log the next entry will take (a leader's next_index()).
using index_fn = std::function<uint64_t()>;

std::unique_ptr<store> make_recording_store(std::unique_ptr<store> inner, entry_sink sink);

// Over a store the caller keeps. With `next_index`, each transaction that
// changed anything also records, before it commits, that it is the entry at
// that index (meta applied-index, replication/apply.hpp): a leader's store
// then knows which entries it holds already when they come back committed,
// and so does every member that applies them.
std::unique_ptr<store> make_recording_store(store& inner, entry_sink sink, index_fn next_index = {});

}  // namespace taskmill::broker::replication
