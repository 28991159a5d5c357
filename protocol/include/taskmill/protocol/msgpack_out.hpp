// taskmill/protocol/msgpack_out.hpp -- the one way to write msgpack.
//
// Every msgpack body that is not a JSON value (events, counters, records,
// the wire codecs) is written here, by a msgpack::packer straight into a
// std::string; JSON values go through protocol::json_to_msgpack
// (json_view.hpp), which also writes straight into a string. Header-only:
// include it only from targets that link msgpack-c (msgpackc-cxx), which is
// the point of the header. Stateless; thread-safe.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <string>
#include <utility>

#include <msgpack.hpp>

namespace taskmill::protocol {

// What msgpack::packer needs of a stream, appending to a std::string sized
// ahead: the packer writes a few bytes at a time, and append() per piece
// costs more than the rest of the encoding. The string holds what it held
// plus exactly what was written once the sink is destroyed.
class string_sink {
public:
    string_sink(std::string& out, std::size_t expect) : out_(out), used_(out.size()) { out_.resize(used_ + expect); }
    ~string_sink() { out_.resize(used_); }
    string_sink(const string_sink&) = delete;
    string_sink& operator=(const string_sink&) = delete;
    void write(const char* p, std::size_t n) {
        if (out_.size() - used_ < n) {
            out_.resize(std::max(out_.size() * 2, used_ + n));
        }
        std::memcpy(out_.data() + used_, p, n);
        used_ += n;
    }

private:
    std::string& out_;
    std::size_t used_;
};

using string_packer = msgpack::packer<string_sink>;

// Appends to `out` the bytes `fill(packer)` writes; `expect` is a first
// guess of their size.
template <typename Fill> void pack_onto(std::string& out, Fill&& fill, std::size_t expect = 32) {
    string_sink sink(out, expect);
    string_packer pk(sink);
    std::forward<Fill>(fill)(pk);
}

// The bytes `fill(packer)` writes:
//   auto body = protocol::pack_with([&](protocol::string_packer& pk) { pk.pack_map(1); pk.pack("a"); pk.pack(1); });
template <typename Fill> std::string pack_with(Fill&& fill, std::size_t expect = 128) {
    std::string out;
    pack_onto(out, std::forward<Fill>(fill), expect);
    return out;
}

// `value` as msgpack, as msgpack::pack writes it (its adaptors: maps,
// vectors, MSGPACK_DEFINE structs, ...).
template <typename T> std::string pack_value(const T& value, std::size_t expect = 128) {
    return pack_with([&](string_packer& pk) { pk.pack(value); }, expect);
}

}  // namespace taskmill::protocol
