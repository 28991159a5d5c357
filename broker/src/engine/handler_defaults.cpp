#include "engine/handler_defaults.hpp"

#include <msgpack.hpp>

namespace taskmill::broker {
namespace {

// "2.10.1-rc1" -> {2, 10, 1}: what orders versions (a suffix does not).
std::vector<uint64_t> numbers_of(std::string_view version) {
    std::vector<uint64_t> out;
    uint64_t n = 0;
    bool digits = false;
    for (char c : version) {
        if (c >= '0' && c <= '9') {
            n = n * 10 + static_cast<uint64_t>(c - '0');
            digits = true;
        } else if (c == '.' && digits) {
            out.push_back(n);
            n = 0;
            digits = false;
        } else {
            break;
        }
    }
    if (digits) {
        out.push_back(n);
    }
    return out;
}

bool older(std::string_view a, std::string_view b) {
    auto na = numbers_of(a);
    auto nb = numbers_of(b);
    return na != nb ? na < nb : a < b;
}

handler_default announced(const protocol::handler_info& h) {
    handler_default d;
    if (valid_queue_name(h.default_queue)) {
        d.queue = h.default_queue;
    }
    if (h.default_timeout_ms && *h.default_timeout_ms > 0 && *h.default_timeout_ms <= max_duration_ms) {
        d.timeout_ms = h.default_timeout_ms;
    }
    if (h.default_retries && *h.default_retries >= 0 && *h.default_retries <= 1000) {
        d.retries = h.default_retries;
    }
    return d;
}

// Stored as the msgpack array [queue, timeout_ms or nil, retries or nil].
std::string encode(const handler_default& d) {
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    pk.pack_array(3);
    pk.pack(d.queue);
    pk.pack(d.timeout_ms);
    pk.pack(d.retries);
    return {buf.data(), buf.size()};
}

std::optional<handler_default> decode(std::string_view bytes) {
    try {
        auto handle = msgpack::unpack(bytes.data(), bytes.size());
        handler_default d;
        std::tie(d.queue, d.timeout_ms, d.retries) =
            handle.get().as<std::tuple<std::string, std::optional<int64_t>, std::optional<int32_t>>>();
        return d;
    } catch (const std::exception&) {
        return std::nullopt;
    }
}

}  // namespace

std::optional<std::pair<std::string, std::string>> handler_defaults::learn(const protocol::handler_info& h) {
    auto d = announced(h);
    auto& slot = known_[h.name];
    if (auto it = slot.find(h.version); it != slot.end() && it->second == d) {
        return std::nullopt;
    }
    slot[h.version] = d;
    return std::pair{std::string(key_prefix) + h.name + "@" + h.version, encode(d)};
}

bool handler_defaults::restore(std::string_view key, std::string_view value) {
    if (key.substr(0, key_prefix.size()) != key_prefix) {
        return false;
    }
    key.remove_prefix(key_prefix.size());
    auto at = key.find('@');
    auto d = decode(value);
    if (at == std::string_view::npos || !d) {
        return false;
    }
    known_[std::string(key.substr(0, at))][std::string(key.substr(at + 1))] = std::move(*d);
    return true;
}

std::optional<handler_default> handler_defaults::find(const handler_ref& want) const {
    auto it = known_.find(want.name);
    if (it == known_.end()) {
        return std::nullopt;
    }
    const std::string* newest = nullptr;
    const handler_default* out = nullptr;
    for (const auto& [version, d] : it->second) {
        if (handler_matches(want, want.name, version) && (newest == nullptr || older(*newest, version))) {
            newest = &version;
            out = &d;
        }
    }
    return out ? std::optional(*out) : std::nullopt;
}

}  // namespace taskmill::broker
