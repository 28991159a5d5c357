// taskmill/plugin.hpp -- header-only C++ layer over the C ABI in plugin.h.
//
// For plugin authors: a `context` wrapping the host table and the call's
// tm_ctx, a `retryable_error` exception, a noexcept trampoline that keeps
// every exception on the plugin's side of the boundary, declaration macros,
// and a small msgpack reader/writer (namespace `mp`) so a plugin needs no
// msgpack library. Depends on the standard library only. A context belongs
// to one execute() call on one thread, like the tm_ctx it wraps.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <taskmill/plugin.h>

namespace taskmill::plugin {

// TM_ABI_VERSION without the C casts (clean under -Wold-style-cast).
inline constexpr uint32_t abi_version =
    (static_cast<uint32_t>(TM_ABI_MAJOR) << 16) | static_cast<uint32_t>(TM_ABI_MINOR);

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

// ============================================================================
// Errors a handler may throw
// ============================================================================

// Thrown by a handler for a transient failure: the trampoline returns
// TM_RETRY with the message and, if given, the delay before the next try.
class retryable_error : public std::runtime_error {
public:
    explicit retryable_error(const std::string& what, std::optional<std::chrono::milliseconds> delay = std::nullopt)
        : std::runtime_error(what), delay_(delay) {}
    std::optional<std::chrono::milliseconds> delay() const noexcept { return delay_; }

private:
    std::optional<std::chrono::milliseconds> delay_;
};

// ============================================================================
// context: the call's view of the host
// ============================================================================

inline tm_str to_str(std::string_view s) noexcept { return tm_str{s.data(), s.size()}; }
inline tm_bytes to_bytes(std::string_view s) noexcept {
    return tm_bytes{reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view view(tm_str s) noexcept {
    return s.data != nullptr ? std::string_view(s.data, s.size) : std::string_view();
}
inline std::string_view view(tm_bytes b) noexcept {
    return b.data != nullptr ? std::string_view(reinterpret_cast<const char*>(b.data), b.size) : std::string_view();
}

// Wraps the task, the host table and the tm_ctx of one execute() call.
// Everything it returns as a view is borrowed until execute() returns.
class context {
public:
    context(const tm_task* task, const tm_host_api* host, tm_ctx* ctx) noexcept : task_(task), host_(host), ctx_(ctx) {}

    const tm_task& task() const noexcept { return *task_; }
    std::string_view id() const noexcept { return view(task_->task_id); }
    std::string_view handler() const noexcept { return view(task_->handler); }
    std::string_view parent() const noexcept { return view(task_->parent_task_id); }
    uint32_t attempt() const noexcept { return task_->attempt; }
    int64_t deadline_unix_ms() const noexcept { return task_->deadline_unix_ms; }
    std::string_view payload_bytes() const noexcept { return view(task_->payload); }

    // The payload decoded; an empty payload is nil. Throws std::runtime_error
    // (so the task fails permanently) if it is not valid msgpack.
    mp::value payload() const {
        if (task_->payload.size == 0) return {};
        std::string err;
        auto v = mp::unpack(payload_bytes(), &err);
        if (!v) throw std::runtime_error("payload is not valid msgpack: " + err);
        return *v;
    }

    void log(int32_t level, std::string_view msg) const noexcept {
        if (host_->log != nullptr) host_->log(ctx_, level, to_str(msg));
    }
    void debug(std::string_view msg) const noexcept { log(TM_LOG_DEBUG, msg); }
    void info(std::string_view msg) const noexcept { log(TM_LOG_INFO, msg); }
    void warn(std::string_view msg) const noexcept { log(TM_LOG_WARN, msg); }
    void error(std::string_view msg) const noexcept { log(TM_LOG_ERROR, msg); }

    bool cancelled() const noexcept { return host_->is_cancelled != nullptr && host_->is_cancelled(ctx_) != 0; }

    // Reports progress; fraction in [0, 1] or negative if unknown.
    void progress(double fraction, std::string_view note = {}) const noexcept {
        if (host_->report_progress != nullptr) (void)host_->report_progress(ctx_, fraction, to_str(note));
    }

    // Stores a checkpoint. Returns only once it is durable; throws
    // retryable_error if the host could not store it.
    void checkpoint_save(std::string_view state) const {
        int32_t rc = host_->checkpoint_save != nullptr ? host_->checkpoint_save(ctx_, to_bytes(state)) : TM_E_STATE;
        if (rc != 0) throw retryable_error("checkpoint_save failed with code " + std::to_string(rc));
    }
    void checkpoint_save(const std::string& state) const { checkpoint_save(std::string_view(state)); }
    void checkpoint_save(const mp::value& state) const { checkpoint_save(std::string_view(mp::pack(state))); }

    // The last checkpoint of this task (copied), or nullopt if none.
    std::optional<std::string> checkpoint_load() const {
        tm_bytes out{nullptr, 0};
        if (host_->checkpoint_load == nullptr || host_->checkpoint_load(ctx_, &out) != 0) return std::nullopt;
        return std::string(view(out));
    }

    // Submits a subtask and returns its id; throws retryable_error on failure.
    std::string spawn(std::string_view handler_name, std::string_view payload, std::string_view key = {},
                      int64_t delay_ms = 0) const {
        tm_spawn_request req{};
        req.struct_size = sizeof(tm_spawn_request);
        req.handler = to_str(handler_name);
        req.payload = to_bytes(payload);
        req.key = to_str(key);
        req.delay_ms = delay_ms;
        tm_str out{nullptr, 0};
        int32_t rc = host_->spawn != nullptr ? host_->spawn(ctx_, &req, &out) : TM_E_STATE;
        if (rc != 0)
            throw retryable_error("spawn of " + std::string(handler_name) + " failed with code " + std::to_string(rc));
        return std::string(view(out));
    }
    std::string spawn(std::string_view handler_name, const std::string& payload, std::string_view key = {},
                      int64_t delay_ms = 0) const {
        return spawn(handler_name, std::string_view(payload), key, delay_ms);
    }
    std::string spawn(std::string_view handler_name, const mp::value& payload, std::string_view key = {},
                      int64_t delay_ms = 0) const {
        return spawn(handler_name, std::string_view(mp::pack(payload)), key, delay_ms);
    }

    void set_result(std::string_view bytes) const noexcept {
        if (host_->set_result != nullptr) (void)host_->set_result(ctx_, to_bytes(bytes));
    }
    void set_result(const std::string& bytes) const noexcept { set_result(std::string_view(bytes)); }
    void set_result(const mp::value& v) const { set_result(std::string_view(mp::pack(v))); }

    void set_error(std::string_view message, int64_t retry_after_ms = -1, int32_t code = 0) const noexcept {
        if (host_->set_error == nullptr) return;
        tm_error e{};
        e.struct_size = sizeof(tm_error);
        e.code = code;
        e.message = to_str(message);
        e.retry_after_ms = retry_after_ms;
        (void)host_->set_error(ctx_, &e);
    }

    const tm_host_api* host() const noexcept { return host_; }
    tm_ctx* raw() const noexcept { return ctx_; }

private:
    const tm_task* task_;
    const tm_host_api* host_;
    tm_ctx* ctx_;
};

// ============================================================================
// The trampoline: the only way execute() is entered from C
// ============================================================================
namespace detail {

// Runs the handler and maps what it returns: void -> TM_OK, tm_status as
// is, mp::value -> set as result then TM_OK.
template <auto Fn> tm_status invoke(context& c) {
    using ret = decltype(Fn(c));
    if constexpr (std::is_void_v<ret>) {
        Fn(c);
        return TM_OK;
    } else if constexpr (std::is_same_v<ret, mp::value>) {
        c.set_result(Fn(c));
        return TM_OK;
    } else {
        return static_cast<tm_status>(Fn(c));
    }
}

}  // namespace detail

// The execute() for handler function `Fn(context&)`. noexcept: a
// retryable_error becomes TM_RETRY (with its delay), any other exception
// TM_FAIL with what(); nothing crosses the ABI.
template <auto Fn>
tm_status trampoline(void* /*plugin_state*/, const tm_task* task, const tm_host_api* host, tm_ctx* ctx) noexcept {
    context c(task, host, ctx);
    try {
        return detail::invoke<Fn>(c);
    } catch (const retryable_error& e) {
        c.set_error(e.what(), e.delay() ? e.delay()->count() : -1);
        return TM_RETRY;
    } catch (const std::exception& e) {
        c.set_error(e.what());
        return TM_FAIL;
    } catch (...) {
        c.set_error("unknown exception");
        return TM_FAIL;
    }
}

// Options of a handler declaration (defaults the broker applies).
struct handler_options {
    const char* default_queue = nullptr;
    int64_t default_timeout_ms = 0;
    int32_t default_retries = -1;
    uint32_t flags = 0;
    uint32_t payload_version = 1;
};

// A tm_handler for `Fn`; meant for a static constexpr object.
template <auto Fn> constexpr tm_handler make_handler(const char* name, handler_options o = {}) noexcept {
    return tm_handler{sizeof(tm_handler),   o.flags,          name, o.payload_version, &trampoline<Fn>, o.default_queue,
                      o.default_timeout_ms, o.default_retries};
}

}  // namespace taskmill::plugin

// Declares a handler object `var` named NAME running function FN:
//     TASKMILL_HANDLER(sleep_handler, "demo.sleep", do_sleep);
//     TASKMILL_HANDLER(slow, "demo.slow", do_slow, {.default_timeout_ms = 5000});
#define TASKMILL_HANDLER(var, NAME, FN, ...) \
    static constexpr tm_handler var = ::taskmill::plugin::make_handler<FN>(NAME __VA_OPT__(, ) __VA_ARGS__)

// Declares the plugin descriptor (static storage) and the entry point:
//     TASKMILL_PLUGIN("demo", "1.0.0", &sleep_handler, &spin_handler);
#define TASKMILL_PLUGIN(NAME, VERSION, ...)                                                              \
    static const tm_handler* const taskmill_plugin_handlers_[] = {__VA_ARGS__};                          \
    static const tm_plugin taskmill_plugin_descriptor_ = {                                               \
        sizeof(tm_plugin),                                                                               \
        ::taskmill::plugin::abi_version,                                                                 \
        NAME,                                                                                            \
        VERSION,                                                                                         \
        static_cast<uint32_t>(sizeof(taskmill_plugin_handlers_) / sizeof(taskmill_plugin_handlers_[0])), \
        taskmill_plugin_handlers_,                                                                       \
        nullptr,                                                                                         \
        nullptr};                                                                                        \
    TM_DECLARE_PLUGIN(taskmill_plugin_descriptor_)
