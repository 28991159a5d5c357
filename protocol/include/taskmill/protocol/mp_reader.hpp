// A bounds-checked reader of msgpack values, for decoders that read a known
// layout straight into their fields, with no msgpack::object tree in between
// (the broker's task records, the client's DONE). Every read checks what is
// left and the type byte; a mismatch, a size beyond the input or an integer
// out of the target's range throws mp_reader::malformed. Header-only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <string_view>
#include <type_traits>

namespace taskmill::protocol {

class mp_reader {
public:
    // Thrown by every read that does not find what it expects.
    struct malformed : std::exception {
        const char* what() const noexcept override { return "malformed msgpack"; }
    };

    explicit mp_reader(std::string_view b) : p_(b.data()), end_(b.data() + b.size()) {}

    bool at_end() const { return p_ == end_; }
    std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }

    uint8_t peek() const {
        need(1);
        return static_cast<uint8_t>(*p_);
    }

    // Every element takes at least a byte: a size beyond what is left is a lie.
    uint32_t map_size() { return bounded(raw_map_size()); }
    uint32_t array_size() { return bounded(raw_array_size()); }

private:
    uint32_t bounded(uint32_t n) const {
        if (n > remaining()) {
            throw malformed{};
        }
        return n;
    }
    uint32_t raw_map_size() {
        const uint8_t t = byte();
        if ((t & 0xf0) == 0x80) {
            return t & 0x0f;
        }
        if (t == 0xde) {
            return static_cast<uint32_t>(be(2));
        }
        if (t == 0xdf) {
            return static_cast<uint32_t>(be(4));
        }
        throw malformed{};
    }

    uint32_t raw_array_size() {
        const uint8_t t = byte();
        if ((t & 0xf0) == 0x90) {
            return t & 0x0f;
        }
        if (t == 0xdc) {
            return static_cast<uint32_t>(be(2));
        }
        if (t == 0xdd) {
            return static_cast<uint32_t>(be(4));
        }
        throw malformed{};
    }

public:
    std::string_view str() {
        const uint8_t t = byte();
        std::size_t n = 0;
        if ((t & 0xe0) == 0xa0) {
            n = t & 0x1f;
        } else if (t == 0xd9) {
            n = be(1);
        } else if (t == 0xda) {
            n = be(2);
        } else if (t == 0xdb) {
            n = be(4);
        } else {
            throw malformed{};
        }
        return take(n);
    }

    // str or bin: bytes either way.
    std::string_view bytes() {
        const uint8_t t = peek();
        if (t == 0xc4 || t == 0xc5 || t == 0xc6) {
            return *bin_or_nil();
        }
        return str();
    }

    // Consumes a nil if one is next.
    bool nil() {
        if (peek() != 0xc0) {
            return false;
        }
        ++p_;
        return true;
    }

    // bin, or nil (= empty), as the reference decoder reads a bin field.
    std::optional<std::string_view> bin_or_nil() {
        const uint8_t t = byte();
        std::size_t n = 0;
        if (t == 0xc0) {
            return std::nullopt;
        } else if (t == 0xc4) {
            n = be(1);
        } else if (t == 0xc5) {
            n = be(2);
        } else if (t == 0xc6) {
            n = be(4);
        } else {
            throw malformed{};
        }
        return take(n);
    }

    // Steps over one value of any type, nested ones included. Iterative (a
    // count of the elements still to step over), so no input can make it
    // recurse; each element takes a byte, so the count stays within the input.
    void skip() {
        uint64_t pending = 1;
        while (pending > 0) {
            --pending;
            pending += elements_after(byte());
            if (pending > remaining()) {
                throw malformed{};
            }
        }
    }

    bool boolean() {
        const uint8_t t = byte();
        if (t == 0xc2 || t == 0xc3) {
            return t == 0xc3;
        }
        throw malformed{};
    }

    template <typename T> T integer() {
        static_assert(std::is_integral_v<T>);
        const uint8_t t = byte();
        if (t <= 0x7f) {
            return fit<T>(static_cast<uint64_t>(t));
        }
        if (t >= 0xe0) {
            return fit<T>(static_cast<int64_t>(static_cast<int8_t>(t)));
        }
        switch (t) {
            case 0xcc: return fit<T>(be(1));
            case 0xcd: return fit<T>(be(2));
            case 0xce: return fit<T>(be(4));
            case 0xcf: return fit<T>(be(8));
            case 0xd0: return fit<T>(static_cast<int64_t>(static_cast<int8_t>(be(1))));
            case 0xd1: return fit<T>(static_cast<int64_t>(static_cast<int16_t>(be(2))));
            case 0xd2: return fit<T>(static_cast<int64_t>(static_cast<int32_t>(be(4))));
            case 0xd3: return fit<T>(static_cast<int64_t>(be(8)));
            default: throw malformed{};
        }
    }

    double number() {
        const uint8_t t = peek();
        if (t == 0xca) {
            ++p_;
            auto bits = static_cast<uint32_t>(be(4));
            float f;
            std::memcpy(&f, &bits, sizeof f);
            return f;
        }
        if (t == 0xcb) {
            ++p_;
            auto bits = be(8);
            double d;
            std::memcpy(&d, &bits, sizeof d);
            return d;
        }
        return static_cast<double>(integer<int64_t>());
    }

private:
    // For skip(): consumes the rest of the value whose type byte is `t` up to
    // its elements, and says how many elements (map: keys and values) follow.
    uint64_t elements_after(uint8_t t) {
        if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) {
            return 0;
        }
        if ((t & 0xf0) == 0x80) {
            return 2u * (t & 0x0f);
        }
        if ((t & 0xf0) == 0x90) {
            return t & 0x0f;
        }
        if ((t & 0xe0) == 0xa0) {
            take(t & 0x1f);
            return 0;
        }
        switch (t) {
            case 0xc4:
            case 0xd9: take(be(1)); return 0;
            case 0xc5:
            case 0xda: take(be(2)); return 0;
            case 0xc6:
            case 0xdb: take(be(4)); return 0;
            case 0xc7: take(be(1) + 1); return 0;  // ext: size, type, data
            case 0xc8: take(be(2) + 1); return 0;
            case 0xc9: take(be(4) + 1); return 0;
            case 0xca:
            case 0xce:
            case 0xd2: take(4); return 0;
            case 0xcb:
            case 0xcf:
            case 0xd3: take(8); return 0;
            case 0xcc:
            case 0xd0: take(1); return 0;
            case 0xcd:
            case 0xd1: take(2); return 0;
            case 0xd4: take(2); return 0;  // fixext: type, data
            case 0xd5: take(3); return 0;
            case 0xd6: take(5); return 0;
            case 0xd7: take(9); return 0;
            case 0xd8: take(17); return 0;
            case 0xdc: return be(2);
            case 0xdd: return be(4);
            case 0xde: return 2 * be(2);
            case 0xdf: return 2 * be(4);
            default: throw malformed{};  // 0xc1: never used
        }
    }

    void need(std::size_t n) const {
        if (static_cast<std::size_t>(end_ - p_) < n) {
            throw malformed{};
        }
    }
    uint8_t byte() {
        need(1);
        return static_cast<uint8_t>(*p_++);
    }
    uint64_t be(std::size_t n) {
        need(n);
        uint64_t v = 0;
        for (std::size_t i = 0; i < n; ++i) {
            v = (v << 8) | static_cast<uint8_t>(p_[i]);
        }
        p_ += n;
        return v;
    }
    std::string_view take(std::size_t n) {
        need(n);
        std::string_view s(p_, n);
        p_ += n;
        return s;
    }
    template <typename T> static T fit(uint64_t v) {
        if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
            throw malformed{};
        }
        return static_cast<T>(v);
    }
    template <typename T> static T fit(int64_t v) {
        if (v < 0) {
            if constexpr (std::is_unsigned_v<T>) {
                throw malformed{};
            } else if (v < static_cast<int64_t>(std::numeric_limits<T>::min())) {
                throw malformed{};
            }
            return static_cast<T>(v);
        }
        return fit<T>(static_cast<uint64_t>(v));
    }

    const char* p_;
    const char* end_;
};

}  // namespace taskmill::protocol
