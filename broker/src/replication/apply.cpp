#include "replication/apply.hpp"

#include <string>

#include "replication/write_set.hpp"
#include "store/keys.hpp"

namespace taskmill::broker::replication {

result<uint64_t> applied_index(transaction& txn) {
    auto v = txn.get(table::meta, keys::meta_applied_index);
    if (!v) {
        if (v.error().code == errc::not_found) {
            return uint64_t{0};
        }
        return failure{v.error()};
    }
    if (v->size() != 8) {
        return fail(errc::corrupt, "meta applied-index holds " + std::to_string(v->size()) + " bytes, not 8");
    }
    return keys::get_u64(*v);
}

result<bool> apply_entry(store& st, uint64_t index, std::string_view entry) {
    auto txn = st.begin(true);
    auto done = applied_index(*txn);
    if (!done) {
        return failure{done.error()};
    }
    if (index <= *done) {
        return false;
    }
    auto rc = for_each_change(entry, [&](const change& c) { return apply(*txn, c); });
    if (!rc) {
        return failure{rc.error()};
    }
    std::string at;
    keys::put_u64(at, index);
    if (auto put = txn->put(table::meta, keys::meta_applied_index, at); !put) {
        return failure{put.error()};
    }
    if (auto commit = txn->commit(); !commit) {
        return failure{commit.error()};
    }
    return true;
}

}  // namespace taskmill::broker::replication
