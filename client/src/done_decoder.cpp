#include "done_decoder.hpp"

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

namespace taskmill::client::detail {

namespace {

// Thrown (internally only) when the fast path cannot read the body.
struct give_up {};

class reader {
public:
    explicit reader(std::string_view b) : p_(b.data()), end_(b.data() + b.size()) {}

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
            throw give_up{};
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
        throw give_up{};
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
        throw give_up{};
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
            throw give_up{};
        }
        return take(n);
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
            throw give_up{};
        }
        return take(n);
    }

    bool boolean() {
        const uint8_t t = byte();
        if (t == 0xc2 || t == 0xc3) {
            return t == 0xc3;
        }
        throw give_up{};
    }

    template <typename T>
    T integer() {
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
            default: throw give_up{};
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
    void need(std::size_t n) const {
        if (static_cast<std::size_t>(end_ - p_) < n) {
            throw give_up{};
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
    template <typename T>
    static T fit(uint64_t v) {
        if (v > static_cast<uint64_t>(std::numeric_limits<T>::max())) {
            throw give_up{};
        }
        return static_cast<T>(v);
    }
    template <typename T>
    static T fit(int64_t v) {
        if (v < 0) {
            if constexpr (std::is_unsigned_v<T>) {
                throw give_up{};
            } else if (v < static_cast<int64_t>(std::numeric_limits<T>::min())) {
                throw give_up{};
            }
            return static_cast<T>(v);
        }
        return fit<T>(static_cast<uint64_t>(v));
    }

    const char* p_;
    const char* end_;
};

void read_strings(reader& r, std::vector<std::string>& out) {
    const auto n = r.array_size();
    out.clear();
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        out.emplace_back(r.str());
    }
}

void read_task(reader& r, protocol::task_info& t) {
    const auto n = r.map_size();
    for (uint32_t i = 0; i < n; ++i) {
        const auto key = r.str();
        if (key == "id") {
            t.id = r.str();
        } else if (key == "handler") {
            t.handler = r.str();
        } else if (key == "queue") {
            t.queue = r.str();
        } else if (key == "priority") {
            t.priority = r.integer<int32_t>();
        } else if (key == "state") {
            t.state = r.str();
        } else if (key == "attempts") {
            t.attempts = r.integer<uint32_t>();
        } else if (key == "max_retries") {
            t.max_retries = r.integer<int32_t>();
        } else if (key == "error") {
            t.error = r.str();
        } else if (key == "progress") {
            if (r.peek() == 0xc0) {
                throw give_up{};  // leave the nil corner to the reference decoder
            }
            protocol::progress_info p;
            const auto m = r.map_size();
            for (uint32_t j = 0; j < m; ++j) {
                const auto k = r.str();
                if (k == "fraction") {
                    p.fraction = r.number();
                } else if (k == "note") {
                    p.note = r.str();
                } else {
                    throw give_up{};
                }
            }
            t.progress = std::move(p);
        } else if (key == "result") {
            if (auto b = r.bin_or_nil()) {
                t.result.emplace(*b);
            } else {
                t.result.reset();
            }
        } else if (key == "created_ms") {
            t.created_ms = r.integer<int64_t>();
        } else if (key == "started_ms") {
            t.started_ms = r.integer<int64_t>();
        } else if (key == "finished_ms") {
            t.finished_ms = r.integer<int64_t>();
        } else if (key == "eta_ms") {
            t.eta_ms = r.integer<int64_t>();
        } else if (key == "parent") {
            t.parent = r.str();
        } else if (key == "tags") {
            read_strings(r, t.tags);
        } else if (key == "children") {
            read_strings(r, t.children);
        } else if (key == "worker") {
            t.worker = r.str();
        } else {
            throw give_up{};
        }
    }
}

}  // namespace

std::optional<protocol::reply> decode_done(std::string_view body) {
    try {
        reader r(body);
        protocol::reply out;
        const auto n = r.map_size();
        for (uint32_t i = 0; i < n; ++i) {
            const auto key = r.str();
            if (key == "req") {
                out.req = r.integer<uint64_t>();
            } else if (key == "ok") {
                out.ok = r.boolean();
            } else if (key == "task") {
                if (r.peek() == 0xc0) {
                    throw give_up{};
                }
                read_task(r, out.task.emplace());
            } else if (key == "tasks") {
                const auto m = r.array_size();
                out.tasks.clear();
                out.tasks.resize(m);
                for (auto& t : out.tasks) {
                    read_task(r, t);
                }
            } else {
                throw give_up{};
            }
        }
        if (!r.at_end()) {
            return std::nullopt;
        }
        return out;
    } catch (const give_up&) {
        return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;  // e.g. bad_alloc from a hostile array size
    }
}

}  // namespace taskmill::client::detail
