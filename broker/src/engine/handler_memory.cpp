#include "engine/handler_memory.hpp"

#include "store/keys.hpp"

namespace taskmill::broker {

std::optional<std::pair<std::string, std::string>> handler_memory::offered(const std::string& name,
                                                                           const std::string& version, int64_t now_ms) {
    auto& at = seen_[name][version];
    if (at != 0 && now_ms - at < resolution_ms) {
        return std::nullopt;
    }
    at = now_ms;
    std::string value;
    keys::put_u64(value, static_cast<uint64_t>(now_ms));
    return std::pair{std::string(key_prefix) + name + "@" + version, std::move(value)};
}

bool handler_memory::restore(std::string_view key, std::string_view value) {
    if (!key.starts_with(key_prefix) || value.size() != 8) {
        return false;
    }
    key.remove_prefix(key_prefix.size());
    auto at = key.find('@');
    if (at == std::string_view::npos || at == 0) {
        return false;
    }
    seen_[std::string(key.substr(0, at))][std::string(key.substr(at + 1))] = static_cast<int64_t>(keys::get_u64(value));
    return true;
}

std::optional<int64_t> handler_memory::last_offered(const handler_ref& want) const {
    auto it = seen_.find(want.name);
    if (it == seen_.end()) {
        return std::nullopt;
    }
    std::optional<int64_t> out;
    for (const auto& [version, ms] : it->second) {
        if (handler_matches(want, want.name, version) && (!out || ms > *out)) {
            out = ms;
        }
    }
    return out;
}

}  // namespace taskmill::broker
