// Task ids: 16 bytes, shown as 32 lowercase hex chars. The first 48 bits are
// the unix time in ms, then a 16-bit counter within that ms, then 64 random
// bits: ids sort by creation time within a broker, and ids made by different
// brokers collide with negligible probability.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>

#include <taskmill/protocol/result.hpp>

namespace taskmill::broker {

using task_id = std::array<uint8_t, 16>;

struct task_id_hash {
    std::size_t operator()(const task_id& id) const noexcept;
};

std::string to_hex(const task_id& id);
// The one way from text (the wire, JSON, workflow records, older task
// records) to a task id: exactly 32 hex digits, either case. Anything else
// is errc::invalid_argument "<what> must be 32 hex chars".
result<task_id> parse_task_id(std::string_view hex, std::string_view what = "id");
// The 16 raw bytes as a string (the tasks table key).
inline std::string_view id_bytes(const task_id& id) { return {reinterpret_cast<const char*>(id.data()), id.size()}; }
std::optional<task_id> id_from_bytes(std::string_view raw);
// The creation time (unix ms) an id begins with, from the id or from raw
// bytes that begin with one (at least 6).
int64_t created_ms(std::string_view raw);
inline int64_t created_ms(const task_id& id) { return created_ms(id_bytes(id)); }

// Makes time-ordered ids. Not thread-safe: one per loop.
class id_generator {
public:
    id_generator();
    task_id next(int64_t now_ms);

private:
    std::mt19937_64 rng_;
    int64_t last_ms_ = 0;
    uint32_t counter_ = 0;
};

}  // namespace taskmill::broker
