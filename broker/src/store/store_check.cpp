// taskmill-broker --check-store: the structural checks of open_lmdb_store,
// then every task record decoded.
#include <taskmill/broker/broker.hpp>

#include <string>

#include "model/task_id.hpp"
#include "model/task_record.hpp"

namespace taskmill::broker {

result<std::string> check_store(const broker_config& cfg) {
    lmdb_options o;
    o.dir = cfg.data_dir;
    o.map_size_bytes = cfg.map_size_mb << 20;
    o.mode = cfg.mode;
    o.allow_empty = cfg.allow_empty_store;
    auto st = open_lmdb_store(o);  // throws store_busy / store_damaged
    auto txn = st->begin(false);
    uint64_t tasks = 0;
    uint64_t bad = 0;
    std::string first_bad;
    auto scanned = txn->scan(table::tasks, "", false, [&](std::string_view k, std::string_view v) {
        ++tasks;
        if (!decode_record(v)) {
            if (++bad == 1) {
                first_bad = id_from_bytes(k) ? to_hex(*id_from_bytes(k)) : "(bad key)";
            }
        }
        return true;
    });
    if (!scanned) {
        return fail(errc::corrupt, "store in " + cfg.data_dir + " is damaged: " + scanned.error().message);
    }
    std::string report = "store in " + cfg.data_dir + ": " + std::to_string(tasks) + " task(s), " + st->fill_text();
    if (bad > 0) {
        return fail(errc::corrupt,
                    report + "; " + std::to_string(bad) + " task record(s) do not decode (first: " + first_bad +
                        "); the broker answers `corrupt` for them. Restore "
                        "data.mdb from a backup to get them back (docs/OPERATIONS.md, \"Damaged store\")");
    }
    return report + "; healthy";
}

}  // namespace taskmill::broker
