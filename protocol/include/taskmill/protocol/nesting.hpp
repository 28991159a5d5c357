// taskmill/protocol/nesting.hpp -- the bound on how deeply a msgpack or JSON
// value may nest (docs/PROTOCOL.md, "Nesting").
//
// The decoders and encoders of generic values (nlohmann::json's from_msgpack,
// to_msgpack, dump) recurse once per level: a value nested 100,000 levels
// exhausts the stack. Every place that turns bytes or text from a peer, a
// file or the store into such a value checks them here first. Header-only;
// the JSON helper is a template so that this header needs no JSON library.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/protocol/result.hpp>

namespace taskmill::protocol {

// Arrays and maps inside one another, counting the outermost: [] is 1 deep,
// [[]] 2, a scalar 0.
inline constexpr std::size_t max_nesting = 128;

namespace detail {

// Big-endian unsigned of n bytes at p (n <= 8; the caller checked the room).
inline uint64_t nesting_be(const unsigned char* p, std::size_t n) {
    uint64_t v = 0;
    for (std::size_t i = 0; i < n; ++i) {
        v = (v << 8) | p[i];
    }
    return v;
}

// How one msgpack header reads: `head` bytes of header, then either a
// payload of `length` bytes (when `length_bytes` > 0, read from the header's
// last `length_bytes` bytes, plus `fixed` bytes) or `children` values.
struct mp_head {
    std::size_t head = 1;
    std::size_t length_bytes = 0;
    uint64_t fixed = 0;
    uint64_t children = 0;
    bool container = false;
    bool valid = true;
};

inline mp_head classify(unsigned char t) {
    mp_head h;
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
        return h;  // fixint, nil, bool
    }
    if (t <= 0x8f) {
        h.container = true;
        h.children = 2u * (t & 0x0fu);
        return h;
    }
    if (t <= 0x9f) {
        h.container = true;
        h.children = t & 0x0fu;
        return h;
    }
    if (t <= 0xbf) {
        h.fixed = t & 0x1fu;
        return h;
    }
    switch (t) {
        case 0xc4:
        case 0xd9:
            h.head = 2;
            h.length_bytes = 1;
            return h;  // bin8 str8
        case 0xc5:
        case 0xda:
            h.head = 3;
            h.length_bytes = 2;
            return h;  // bin16 str16
        case 0xc6:
        case 0xdb:
            h.head = 5;
            h.length_bytes = 4;
            return h;  // bin32 str32
        case 0xc7:
            h.head = 2;
            h.length_bytes = 1;
            h.fixed = 1;
            return h;  // ext8: length, type
        case 0xc8:
            h.head = 3;
            h.length_bytes = 2;
            h.fixed = 1;
            return h;
        case 0xc9:
            h.head = 5;
            h.length_bytes = 4;
            h.fixed = 1;
            return h;
        case 0xcc:
        case 0xd0: h.fixed = 1; return h;
        case 0xcd:
        case 0xd1: h.fixed = 2; return h;
        case 0xca:
        case 0xce:
        case 0xd2: h.fixed = 4; return h;
        case 0xcb:
        case 0xcf:
        case 0xd3: h.fixed = 8; return h;
        case 0xd4: h.fixed = 2; return h;  // fixext: type byte + data
        case 0xd5: h.fixed = 3; return h;
        case 0xd6: h.fixed = 5; return h;
        case 0xd7: h.fixed = 9; return h;
        case 0xd8: h.fixed = 17; return h;
        case 0xdc:
        case 0xdd:
        case 0xde:
        case 0xdf:
            h.container = true;
            h.head = t == 0xdc || t == 0xde ? 3 : 5;
            h.length_bytes = h.head - 1;
            return h;
        default: h.valid = false; return h;  // 0xc1
    }
}

}  // namespace detail

// Whether the first msgpack value in `bytes` nests at most `max` levels.
// Iterative, O(size), memory O(max). Bytes that are not msgpack (truncated,
// reserved type byte) are not judged here: they answer true and the decoder
// that follows refuses them as it always did.
inline bool msgpack_within_nesting(std::string_view bytes, std::size_t max = max_nesting) {
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    const auto* end = p + bytes.size();
    std::vector<uint64_t> left;  // values still to read in each open container
    left.reserve(16);
    bool first = true;
    while (first || !left.empty()) {
        first = false;
        if (p == end) {
            return true;  // truncated: not ours to judge
        }
        if (!left.empty()) {
            --left.back();
        }
        const unsigned char type = *p;
        auto h = detail::classify(type);
        if (!h.valid || static_cast<std::size_t>(end - p) < h.head) {
            return true;
        }
        uint64_t n = h.length_bytes > 0 ? detail::nesting_be(p + h.head - h.length_bytes, h.length_bytes) : 0;
        p += h.head;
        if (h.container) {
            if (left.size() >= max) {
                return false;
            }
            const bool map16_32 = type == 0xde || type == 0xdf;
            left.push_back(h.length_bytes == 0 ? h.children : map16_32 ? 2 * n : n);
        } else {
            uint64_t skip = n + h.fixed;
            if (skip > static_cast<uint64_t>(end - p)) {
                return true;
            }
            p += skip;
        }
        while (!left.empty() && left.back() == 0) {
            left.pop_back();
        }
    }
    return true;
}

// The error every decoder answers for a value nested too deeply.
inline failure nesting_error(std::string_view what, std::size_t max = max_nesting) {
    return failure{
        error{errc::invalid_argument, std::string(what) + " nests deeper than " + std::to_string(max) + " levels"}};
}

// Parses JSON text into a nlohmann::basic_json `Json`, refusing nesting over
// `max` (the parser itself is iterative; what would recurse is everything
// done with the value afterwards). Errors: invalid_argument with the
// parser's message, or the nesting error naming `what`.
template <typename Json>
result<Json> parse_json(std::string_view text, std::string_view what, std::size_t max = max_nesting) {
    struct too_deep {};
    try {
        // The callback sees the depth of the value about to open: 0 for the
        // outermost container.
        return Json::parse(text.begin(), text.end(), [max](int depth, typename Json::parse_event_t ev, Json&) {
            if ((ev == Json::parse_event_t::object_start || ev == Json::parse_event_t::array_start) &&
                static_cast<std::size_t>(depth) >= max) {
                throw too_deep{};
            }
            return true;
        });
    } catch (const too_deep&) {
        return nesting_error(what, max);
    } catch (const typename Json::exception& e) {
        return fail(errc::invalid_argument, std::string(what) + " is malformed JSON: " + e.what());
    }
}

}  // namespace taskmill::protocol
