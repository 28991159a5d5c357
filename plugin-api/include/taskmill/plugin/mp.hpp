// taskmill/plugin/mp.hpp -- a tiny msgpack reader/writer for JSON-shaped
// data, so a C++ plugin needs no msgpack library. Part of plugin.hpp (include
// that). Depends on the standard library only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace taskmill::plugin {

// ============================================================================
// mp: a tiny msgpack reader/writer for JSON-shaped data
// ============================================================================
namespace mp {

enum class kind { nil, boolean, integer, floating, string, binary, array, map };

// One msgpack value. Integers are int64 (a uint64 above INT64_MAX decodes as
// a float); map keys are strings (JSON-shaped data only).
class value {
public:
    using array_t = std::vector<value>;
    using map_t = std::vector<std::pair<std::string, value>>;

    value() = default;
    value(std::nullptr_t) {}
    value(bool b) : kind_(kind::boolean), b_(b) {}
    template <typename I, std::enable_if_t<std::is_integral_v<I> && !std::is_same_v<I, bool>, int> = 0> value(I i)
        : kind_(kind::integer), i_(static_cast<int64_t>(i)) {}
    value(double f) : kind_(kind::floating), f_(f) {}
    value(std::string s) : kind_(kind::string), s_(std::move(s)) {}
    value(std::string_view s) : kind_(kind::string), s_(s) {}
    value(const char* s) : kind_(kind::string), s_(s) {}
    value(array_t a) : kind_(kind::array), a_(std::move(a)) {}
    value(map_t m) : kind_(kind::map), m_(std::move(m)) {}

    static value binary(std::string bytes) {
        value v(std::move(bytes));
        v.kind_ = kind::binary;
        return v;
    }
    static value array(array_t a = {}) { return value(std::move(a)); }
    static value map(map_t m = {}) { return value(std::move(m)); }

    kind type() const noexcept { return kind_; }
    bool is_nil() const noexcept { return kind_ == kind::nil; }
    bool is_map() const noexcept { return kind_ == kind::map; }
    bool is_array() const noexcept { return kind_ == kind::array; }
    bool is_string() const noexcept { return kind_ == kind::string; }
    bool is_number() const noexcept { return kind_ == kind::integer || kind_ == kind::floating; }

    bool as_bool(bool def = false) const noexcept { return kind_ == kind::boolean ? b_ : def; }
    int64_t as_int(int64_t def = 0) const noexcept {
        if (kind_ == kind::integer) return i_;
        if (kind_ == kind::floating) return static_cast<int64_t>(f_);
        return def;
    }
    double as_double(double def = 0) const noexcept {
        if (kind_ == kind::floating) return f_;
        if (kind_ == kind::integer) return static_cast<double>(i_);
        return def;
    }
    // The text of a string (or the bytes of a bin); `def` for anything else.
    std::string as_string(std::string def = {}) const {
        return (kind_ == kind::string || kind_ == kind::binary) ? s_ : def;
    }
    const array_t& items() const noexcept { return a_; }
    array_t& items() noexcept { return a_; }
    const map_t& entries() const noexcept { return m_; }

    // Member of a map, or nullptr (also when this is not a map).
    const value* find(std::string_view key) const noexcept {
        for (const auto& [k, v] : m_) {
            if (k == key) return &v;
        }
        return nullptr;
    }
    // Member of a map or a shared nil: `payload["ms"].as_int(0)`.
    const value& operator[](std::string_view key) const noexcept {
        const value* v = find(key);
        return v != nullptr ? *v : nil_value();
    }
    // Sets (or replaces) a map member; turns a nil into a map.
    value& set(std::string key, value v) {
        if (kind_ == kind::nil) kind_ = kind::map;
        for (auto& [k, old] : m_) {
            if (k == key) {
                old = std::move(v);
                return old;
            }
        }
        m_.emplace_back(std::move(key), std::move(v));
        return m_.back().second;
    }
    void push_back(value v) {
        if (kind_ == kind::nil) kind_ = kind::array;
        a_.push_back(std::move(v));
    }

    friend bool operator==(const value& x, const value& y) {
        if (x.kind_ != y.kind_) return false;
        switch (x.kind_) {
            case kind::nil: return true;
            case kind::boolean: return x.b_ == y.b_;
            case kind::integer: return x.i_ == y.i_;
            case kind::floating: return x.f_ == y.f_;
            case kind::string:
            case kind::binary: return x.s_ == y.s_;
            case kind::array: return x.a_ == y.a_;
            case kind::map: return x.m_ == y.m_;
        }
        return false;
    }

private:
    // A function, not a static member: no STB_GNU_UNIQUE object, no init order.
    static const value& nil_value() noexcept;

    kind kind_ = kind::nil;
    bool b_ = false;
    int64_t i_ = 0;
    double f_ = 0;
    std::string s_;
    array_t a_;
    map_t m_;
};

namespace detail {
// One nil per plugin; internal linkage keeps it out of the dynamic symbol table.
namespace {
const value shared_nil{};
}  // namespace

inline void put_be(std::string& out, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) {
        out.push_back(static_cast<char>((v >> (8 * i)) & 0xFFu));
    }
}

inline void put_len(std::string& out, std::size_t n, uint8_t fix, std::size_t fix_max, uint8_t c8, uint8_t c16,
                    uint8_t c32) {
    if (n <= fix_max && fix != 0) {
        out.push_back(static_cast<char>(fix | static_cast<uint8_t>(n)));
    } else if (n <= 0xFF && c8 != 0) {
        out.push_back(static_cast<char>(c8));
        put_be(out, n, 1);
    } else if (n <= 0xFFFF) {
        out.push_back(static_cast<char>(c16));
        put_be(out, n, 2);
    } else {
        out.push_back(static_cast<char>(c32));
        put_be(out, n, 4);
    }
}

inline void pack_int(std::string& out, int64_t i) {
    if (i >= 0 && i <= 0x7F) {
        out.push_back(static_cast<char>(i));
    } else if (i < 0 && i >= -32) {
        out.push_back(static_cast<char>(static_cast<uint8_t>(i & 0xFF)));
    } else if (i >= 0) {
        out.push_back(static_cast<char>(0xCF));
        put_be(out, static_cast<uint64_t>(i), 8);
    } else {
        out.push_back(static_cast<char>(0xD3));
        put_be(out, static_cast<uint64_t>(i), 8);
    }
}

inline void pack_to(std::string& out, const value& v) {
    switch (v.type()) {
        case kind::nil: out.push_back(static_cast<char>(0xC0)); break;
        case kind::boolean: out.push_back(static_cast<char>(v.as_bool() ? 0xC3 : 0xC2)); break;
        case kind::integer: pack_int(out, v.as_int()); break;
        case kind::floating: {
            double d = v.as_double();
            uint64_t bits = 0;
            std::memcpy(&bits, &d, sizeof bits);
            out.push_back(static_cast<char>(0xCB));
            put_be(out, bits, 8);
            break;
        }
        case kind::string: {
            std::string s = v.as_string();
            put_len(out, s.size(), 0xA0, 31, 0xD9, 0xDA, 0xDB);
            out += s;
            break;
        }
        case kind::binary: {
            std::string s = v.as_string();
            put_len(out, s.size(), 0, 0, 0xC4, 0xC5, 0xC6);
            out += s;
            break;
        }
        case kind::array:
            put_len(out, v.items().size(), 0x90, 15, 0, 0xDC, 0xDD);
            for (const auto& item : v.items()) pack_to(out, item);
            break;
        case kind::map:
            put_len(out, v.entries().size(), 0x80, 15, 0, 0xDE, 0xDF);
            for (const auto& [k, item] : v.entries()) {
                put_len(out, k.size(), 0xA0, 31, 0xD9, 0xDA, 0xDB);
                out += k;
                pack_to(out, item);
            }
            break;
    }
}

// A bounds-checked cursor. Every read checks what is left; errors are
// values, never exceptions or out-of-range reads.
class reader {
public:
    explicit reader(std::string_view in) : in_(in) {}
    bool done() const noexcept { return pos_ == in_.size(); }
    std::size_t left() const noexcept { return in_.size() - pos_; }
    const std::string& error() const noexcept { return error_; }

    bool read(value& out, int depth) {
        if (depth > 64) return fail("nested too deeply");
        uint8_t c = 0;
        if (!byte(c)) return false;
        if (c <= 0x7F) return out = value(static_cast<int64_t>(c)), true;
        if (c >= 0xE0) return out = value(static_cast<int64_t>(static_cast<int8_t>(c))), true;
        if ((c & 0xF0) == 0x80) return read_map(out, c & 0x0Fu, depth);
        if ((c & 0xF0) == 0x90) return read_array(out, c & 0x0Fu, depth);
        if ((c & 0xE0) == 0xA0) return read_str(out, c & 0x1Fu, false);
        return read_tagged(out, c, depth);
    }

private:
    bool fail(std::string msg) {
        if (error_.empty()) error_ = std::move(msg) + " at byte " + std::to_string(pos_);
        return false;
    }
    bool byte(uint8_t& c) {
        if (pos_ >= in_.size()) return fail("truncated input");
        c = static_cast<uint8_t>(in_[pos_++]);
        return true;
    }
    bool be(uint64_t& v, int bytes) {
        if (left() < static_cast<std::size_t>(bytes)) return fail("truncated input");
        v = 0;
        for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<uint8_t>(in_[pos_++]);
        return true;
    }
    bool read_str(value& out, uint64_t n, bool bin) {
        if (n > left()) return fail("string longer than the input");
        std::string s(in_.substr(pos_, static_cast<std::size_t>(n)));
        pos_ += static_cast<std::size_t>(n);
        out = bin ? value::binary(std::move(s)) : value(std::move(s));
        return true;
    }
    bool read_array(value& out, uint64_t n, int depth) {
        // Each element takes at least one byte: a huge count cannot allocate.
        if (n > left()) return fail("array count larger than the input");
        value::array_t items;
        items.reserve(static_cast<std::size_t>(n));
        for (uint64_t i = 0; i < n; ++i) {
            value item;
            if (!read(item, depth + 1)) return false;
            items.push_back(std::move(item));
        }
        out = value(std::move(items));
        return true;
    }
    bool read_map(value& out, uint64_t n, int depth) {
        if (n > left() / 2) return fail("map count larger than the input");
        value::map_t entries;
        entries.reserve(static_cast<std::size_t>(n));
        for (uint64_t i = 0; i < n; ++i) {
            value key;
            value item;
            if (!read(key, depth + 1)) return false;
            if (!key.is_string()) return fail("map key is not a string");
            if (!read(item, depth + 1)) return false;
            entries.emplace_back(key.as_string(), std::move(item));
        }
        out = value(std::move(entries));
        return true;
    }
    bool read_number(value& out, uint8_t c) {
        uint64_t raw = 0;
        switch (c) {
            case 0xCA: {
                if (!be(raw, 4)) return false;
                uint32_t bits = static_cast<uint32_t>(raw);
                float f = 0;
                std::memcpy(&f, &bits, sizeof f);
                return out = value(static_cast<double>(f)), true;
            }
            case 0xCB: {
                if (!be(raw, 8)) return false;
                double d = 0;
                std::memcpy(&d, &raw, sizeof d);
                return out = value(d), true;
            }
            case 0xCC:
            case 0xCD:
            case 0xCE:
            case 0xCF: {
                if (!be(raw, 1 << (c - 0xCC))) return false;
                if (raw > static_cast<uint64_t>(INT64_MAX)) return out = value(static_cast<double>(raw)), true;
                return out = value(static_cast<int64_t>(raw)), true;
            }
            default: {  // 0xD0..0xD3: signed
                int bytes = 1 << (c - 0xD0);
                if (!be(raw, bytes)) return false;
                int shift = 64 - 8 * bytes;
                // Sign-extend through the unsigned -> signed conversion (two's complement).
                int64_t v = static_cast<int64_t>(raw << shift) >> shift;
                return out = value(v), true;
            }
        }
    }
    bool read_tagged(value& out, uint8_t c, int depth) {
        uint64_t n = 0;
        switch (c) {
            case 0xC0: return out = value(), true;
            case 0xC2: return out = value(false), true;
            case 0xC3: return out = value(true), true;
            case 0xC4: return be(n, 1) && read_str(out, n, true);
            case 0xC5: return be(n, 2) && read_str(out, n, true);
            case 0xC6: return be(n, 4) && read_str(out, n, true);
            case 0xD9: return be(n, 1) && read_str(out, n, false);
            case 0xDA: return be(n, 2) && read_str(out, n, false);
            case 0xDB: return be(n, 4) && read_str(out, n, false);
            case 0xDC: return be(n, 2) && read_array(out, n, depth);
            case 0xDD: return be(n, 4) && read_array(out, n, depth);
            case 0xDE: return be(n, 2) && read_map(out, n, depth);
            case 0xDF: return be(n, 4) && read_map(out, n, depth);
            default: break;
        }
        if (c >= 0xCA && c <= 0xD3) return read_number(out, c);
        return fail("unsupported msgpack type 0x" + hex(c));
    }
    static std::string hex(uint8_t c) {
        const char* digits = "0123456789abcdef";
        return {digits[c >> 4], digits[c & 0xF]};
    }

    std::string_view in_;
    std::size_t pos_ = 0;
    std::string error_;
};
}  // namespace detail

inline const value& value::nil_value() noexcept { return detail::shared_nil; }

// Encodes a value as msgpack. Never fails.
inline std::string pack(const value& v) {
    std::string out;
    detail::pack_to(out, v);
    return out;
}

// Decodes exactly one msgpack value filling all of `in`. On malformed,
// truncated or trailing input returns nullopt and, if `error` is given,
// says why. Never throws on bad input, never reads out of bounds.
inline std::optional<value> unpack(std::string_view in, std::string* error = nullptr) {
    detail::reader r(in);
    value v;
    bool ok = r.read(v, 0);
    if (ok && !r.done()) {
        if (error != nullptr) *error = "trailing bytes after the value";
        return std::nullopt;
    }
    if (!ok) {
        if (error != nullptr) *error = r.error();
        return std::nullopt;
    }
    return v;
}

}  // namespace mp

}  // namespace taskmill::plugin
