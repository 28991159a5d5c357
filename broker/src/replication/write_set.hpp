// One write transaction's changes to the store, as the bytes of one entry of
// a replicated log: its puts and erases, in the order they were made.
//
// A cluster's leader records each loop turn's transaction this way
// (recording_store.hpp) and replicates the bytes; every member applies them
// to its own store (apply.hpp). Applying the changes in order to a store that
// held what the recorder's store held before the transaction leaves both
// stores holding the same entries, byte for byte.
//
// Encoding: "TMW1" and the number of changes (32-bit big-endian), then per
// change a kind byte (1 put, 2 erase, 3 clear the table), a table
// byte (store.hpp's table), the key as a 32-bit big-endian length and its
// bytes, and for a put the value the same way. Nothing follows the last
// change.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker::replication {

// A change of a write set; the views point into the entry it was read from.
struct change {
    enum kind : uint8_t { put = 1, erase = 2, clear = 3 };
    kind what = put;
    table t = table::tasks;
    std::string_view key;    // empty for a clear
    std::string_view value;  // empty for an erase or a clear
};

// Applies `c` to `txn`.
result<void> apply(transaction& txn, const change& c);

class write_set {
public:
    write_set();

    void put(table t, std::string_view key, std::string_view value);
    void erase(table t, std::string_view key);
    void clear(table t);

    bool empty() const { return changes_ == 0; }
    std::size_t changes() const { return changes_; }
    // The encoded entry so far.
    const std::string& bytes() const { return bytes_; }
    // Hands the entry over and starts an empty one.
    std::string take();

private:
    void add(change::kind kind, table t, std::string_view key);

    std::string bytes_;
    std::size_t changes_ = 0;
};

// Calls `fn` with each change of `entry`, in order, after checking the whole
// entry: a damaged one (a wrong header, an unknown kind or table, a length
// past the end, more or fewer changes than the header counts) is errc::corrupt, saying where, and `fn` is not called at
// all. A failure `fn` returns stops the walk and is returned.
using change_fn = std::function<result<void>(const change&)>;
result<void> for_each_change(std::string_view entry, const change_fn& fn);

}  // namespace taskmill::broker::replication
