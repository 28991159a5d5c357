#include "store/migrate.hpp"

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "store/keys.hpp"

namespace taskmill::broker {
namespace {

// Moves every meta entry under `prefix` to `to`, keyed by the rest of its key.
result<std::size_t> move_prefix(transaction& txn, std::string_view prefix, table to) {
    std::vector<std::pair<std::string, std::string>> found;
    auto scanned = txn.scan(table::meta, prefix, false, [&](std::string_view k, std::string_view v) {
        if (!k.starts_with(prefix)) {
            return false;  // past the prefix's entries
        }
        found.emplace_back(std::string(k), std::string(v));
        return true;
    });
    if (!scanned) {
        return failure{scanned.error()};
    }
    for (const auto& [key, value] : found) {
        const auto new_key = std::string_view(key).substr(prefix.size());
        auto existing = txn.get(to, new_key);
        if (!existing && existing.error().code != errc::not_found) {
            return failure{existing.error()};
        }
        if (!existing) {
            if (auto rc = txn.put(to, new_key, value); !rc) {
                return failure{rc.error()};
            }
        }
        if (auto rc = txn.erase(table::meta, key); !rc) {
            return failure{rc.error()};
        }
    }
    return found.size();
}

}  // namespace

result<meta_moved> move_meta_records(transaction& txn) {
    meta_moved moved;
    auto w = move_prefix(txn, keys::legacy_workflow_prefix, table::workflows);
    if (!w) {
        return failure{w.error()};
    }
    moved.workflows = *w;
    auto s = move_prefix(txn, keys::legacy_schedule_prefix, table::schedules);
    if (!s) {
        return failure{s.error()};
    }
    moved.schedules = *s;
    return moved;
}

}  // namespace taskmill::broker
