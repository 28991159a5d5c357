#include "model/task_id.hpp"

#include <array>
#include <cstring>

namespace taskmill::broker {

std::size_t task_id_hash::operator()(const task_id& id) const noexcept {
    // The last 8 bytes are random: a ready-made hash.
    uint64_t h = 0;
    std::memcpy(&h, id.data() + 8, sizeof h);
    return static_cast<std::size_t>(h);
}

std::string to_hex(const task_id& id) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(32, '0');
    for (std::size_t i = 0; i < id.size(); ++i) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 0xf];
    }
    return out;
}

namespace {
// Ids arrive as text in most requests: a table, not a chain of compares.
constexpr std::array<int8_t, 256> hex_table = [] {
    std::array<int8_t, 256> t{};
    t.fill(-1);
    for (int c = 0; c < 10; ++c) {
        t['0' + c] = static_cast<int8_t>(c);
    }
    for (int c = 0; c < 6; ++c) {
        t['a' + c] = static_cast<int8_t>(10 + c);
        t['A' + c] = static_cast<int8_t>(10 + c);
    }
    return t;
}();

int hex_value(char c) { return hex_table[static_cast<uint8_t>(c)]; }
}  // namespace

result<task_id> parse_task_id(std::string_view hex, std::string_view what) {
    auto bad_id = [&] { return fail(errc::invalid_argument, std::string(what) + " must be 32 hex chars"); };
    if (hex.size() != 32) {
        return bad_id();
    }
    task_id id{};
    int bad = 0;
    for (std::size_t i = 0; i < id.size(); ++i) {
        int hi = hex_value(hex[2 * i]);
        int lo = hex_value(hex[2 * i + 1]);
        bad |= hi | lo;  // negative if either is not a hex digit
        id[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    if (bad < 0) {
        return bad_id();
    }
    return id;
}

std::optional<task_id> id_from_bytes(std::string_view raw) {
    if (raw.size() != 16) {
        return std::nullopt;
    }
    task_id id{};
    std::memcpy(id.data(), raw.data(), id.size());
    return id;
}

int64_t created_ms(std::string_view raw) {
    uint64_t ms = 0;
    for (std::size_t i = 0; i < 6 && i < raw.size(); ++i) {
        ms = ms << 8 | static_cast<uint8_t>(raw[i]);
    }
    return static_cast<int64_t>(ms);
}

id_generator::id_generator() : rng_(std::random_device{}()) {}

task_id id_generator::next(int64_t now_ms) {
    // Never go back in time (clock steps) and never reuse a (ms, counter).
    if (now_ms > last_ms_) {
        last_ms_ = now_ms;
        counter_ = 0;
    } else if (++counter_ > 0xffff) {
        ++last_ms_;
        counter_ = 0;
    }
    task_id id{};
    auto ms = static_cast<uint64_t>(last_ms_);
    for (int i = 0; i < 6; ++i) {
        id[static_cast<std::size_t>(i)] = static_cast<uint8_t>(ms >> (8 * (5 - i)));
    }
    id[6] = static_cast<uint8_t>(counter_ >> 8);
    id[7] = static_cast<uint8_t>(counter_);
    uint64_t r = rng_();
    std::memcpy(id.data() + 8, &r, sizeof r);
    return id;
}

}  // namespace taskmill::broker
