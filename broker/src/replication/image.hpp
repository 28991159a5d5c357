// A member's whole store as one value, for Raft snapshots: what a new or
// far-behind member installs instead of replaying the log from its start.
//
// The image is the applied index of the store it was read from (8 bytes,
// big-endian), then a write set (write_set.hpp) that clears every table and
// puts every entry. Installing it is applying that write set as the entry
// at the image's index (apply.hpp), so an image no newer than what a store
// has applied changes nothing.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include <taskmill/broker/store.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker::replication {

// Reads the image of what `txn` sees (a read transaction: it may be used
// from another thread, one at a time, while the store goes on changing).
result<std::string> read_image(transaction& txn);

// The applied index an image was taken at; errc::corrupt if too short.
result<uint64_t> image_index(std::string_view image);

// Installs `image`: true once committed, false when the store had applied
// the image's index already; errc::corrupt for a damaged image, which
// changes nothing.
result<bool> install_image(store& st, std::string_view image);

}  // namespace taskmill::broker::replication
