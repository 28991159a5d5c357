#include "store/keys.hpp"

namespace taskmill::broker::keys {

void put_u64(std::string& out, uint64_t v) {
    for (int i = 7; i >= 0; --i) {
        out.push_back(static_cast<char>(v >> (8 * i)));
    }
}

uint64_t get_u64(std::string_view in) {
    uint64_t v = 0;
    for (std::size_t i = 0; i < 8; ++i) {
        v = v << 8 | static_cast<uint8_t>(in[i]);
    }
    return v;
}

std::string ready_key(std::string_view queue, int priority, uint64_t seq) {
    std::string k;
    k.reserve(queue.size() + 10);
    k.append(queue);
    k.push_back('\0');
    k.push_back(static_cast<char>(9 - priority));
    put_u64(k, seq);
    return k;
}

std::string ready_value(const task_id& id, int64_t expires_ms, std::string_view handler) {
    std::string v(id_bytes(id));
    put_u64(v, static_cast<uint64_t>(expires_ms));
    v.append(handler);
    return v;
}

std::optional<ready_entry> parse_ready(std::string_view key, std::string_view value) {
    auto nul = key.find('\0');
    if (nul == std::string_view::npos || key.size() != nul + 10 || value.size() < 24) {
        return std::nullopt;
    }
    ready_entry e;
    e.queue = std::string(key.substr(0, nul));
    e.priority = 9 - static_cast<int>(static_cast<uint8_t>(key[nul + 1]));
    e.seq = get_u64(key.substr(nul + 2));
    e.id = *id_from_bytes(value.substr(0, 16));
    e.expires_ms = static_cast<int64_t>(get_u64(value.substr(16)));
    e.handler = std::string(value.substr(24));
    if (e.priority < 0 || e.priority > 9) {
        return std::nullopt;
    }
    return e;
}

std::string delayed_key(int64_t eta_ms, const task_id& id) {
    std::string k;
    put_u64(k, static_cast<uint64_t>(eta_ms));
    k.append(id_bytes(id));
    return k;
}

std::string tag_prefix(std::string_view tag) {
    std::string k(tag);
    k.push_back('\0');
    return k;
}

std::string tag_key(std::string_view tag, const task_id& id) {
    auto k = tag_prefix(tag);
    k.append(id_bytes(id));
    return k;
}

std::optional<task_id> parse_tag_key(std::string_view key, std::size_t prefix_size) {
    if (key.size() != prefix_size + 16) {
        return std::nullopt;
    }
    return id_from_bytes(key.substr(prefix_size));
}

std::optional<std::pair<int64_t, task_id>> parse_delayed(std::string_view key) {
    if (key.size() != 24) {
        return std::nullopt;
    }
    return std::pair{static_cast<int64_t>(get_u64(key)), *id_from_bytes(key.substr(8))};
}

}  // namespace taskmill::broker::keys
