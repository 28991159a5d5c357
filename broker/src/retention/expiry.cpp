#include "retention/expiry.hpp"

#include "store/keys.hpp"

namespace taskmill::broker {

std::string expiry_key(int64_t at_ms, expiry_kind kind, std::string_view id) {
    std::string k;
    k.reserve(9 + id.size());
    keys::put_u64(k, static_cast<uint64_t>(at_ms));
    k.push_back(static_cast<char>(kind));
    k.append(id);
    return k;
}

std::optional<expiry_entry> parse_expiry_key(std::string_view key) {
    if (key.size() < 10) {
        return std::nullopt;
    }
    expiry_entry e;
    e.at_ms = static_cast<int64_t>(keys::get_u64(key));
    e.kind = static_cast<expiry_kind>(key[8]);
    e.id = std::string(key.substr(9));
    if (e.kind == expiry_kind::task && e.id.size() == 16) {
        return e;
    }
    if (e.kind == expiry_kind::workflow) {
        return e;
    }
    return std::nullopt;
}

}  // namespace taskmill::broker
