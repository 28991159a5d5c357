// taskmill/broker/store.hpp -- the broker's durable storage, as an interface.
//
// A store is a set of ordered byte-keyed tables reached through
// transactions. The broker loop opens ONE write transaction per turn, applies
// every command of that turn to it and commits before sending any reply that
// promises durability (group commit). The LMDB implementation is the real
// one; the in-memory one serves unit tests and has no durability.
// Threading: a store may be shared. A write transaction belongs to the
// thread that began it; a read transaction may be handed to another thread
// and used there, by one thread at a time. Only one write transaction may
// be open at a time.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

#include <taskmill/protocol/result.hpp>

namespace taskmill::broker {

// The named tables (LMDB named databases). Key layouts live in
// src/store/keys.hpp (docs/DESIGN.md, "Store tables and keys").
enum class table : uint8_t {
    tasks,    // 16-byte binary task id -> msgpack task record
    ready,    // queue \0 (9-priority) seq(8, BE) -> id(16) expires_ms(8, BE) handler
    delayed,  // eta_ms(8, BE) id(16) -> empty: PENDING and RETRYING tasks
    // id(16) -> empty. Written by nothing: a running task stays QUEUED in
    // the store (docs/DESIGN.md, "RUNNING in memory"); recovery requeues
    // the entries an older store may hold and empties it.
    running,
    keys,       // idempotency key -> id(16)
    meta,       // "seq" -> u64 BE, "counts", "tags-indexed", "listing-indexed"
    tags,       // tag \0 id(16) -> empty: every task carrying each tag, finished ones too
    workflows,  // workflow id (hex) -> msgpack workflow record
    schedules,  // schedule name -> last fire ms(8, BE) anchor ms(8, BE)
    // The listing indexes: by state, queue, handler and finish time
    // (src/index/task_index.hpp has the layouts).
    index,
    // delete_at_ms(8, BE) kind(1) id -> empty: finished tasks and workflows
    // to delete when their retention ends (src/retention/).
    expiry,
    // "queue/NAME" or "handler/NAME" -> msgpack: what operators set at run
    // time (pause, limits), kept across restarts.
    settings,
    // job id(8, BE) -> msgpack job record: bulk operations, with the cursor
    // each resumes from after a restart.
    jobs,
};
inline constexpr int table_count = 13;

// Called with each entry by scan(); return false to stop. The views are valid
// only during the call.
using scan_fn = std::function<bool(std::string_view key, std::string_view value)>;

class transaction {
public:
    virtual ~transaction() = default;

    // The value under `key`; errc::not_found if absent.
    virtual result<std::string> get(table t, std::string_view key) = 0;
    // Inserts or replaces. errc::unavailable when the store is full (LMDB map
    // full): the transaction is then unusable and must be aborted.
    virtual result<void> put(table t, std::string_view key, std::string_view value) = 0;
    // Removes `key`; removing an absent key is not an error.
    virtual result<void> erase(table t, std::string_view key) = 0;
    // Removes every entry of the table (a replica installing a snapshot).
    virtual result<void> clear(table t) = 0;
    // Visits entries in key order starting at the first key >= `from`, or,
    // with `reverse`, in descending order starting at the last key <= `from`
    // (empty `from` + reverse = from the very last key).
    virtual result<void> scan(table t, std::string_view from, bool reverse, const scan_fn& fn) = 0;
    // Makes every change durable (per the store's durability mode). A
    // failed commit loses the transaction's changes. Only once.
    virtual result<void> commit() = 0;
};

// The room of a store, in bytes. `used`: pages up to the last one in use
// (freed pages count: a safe overestimate); `map`: the map size in force;
// `capacity`: what the file can still reach, the smaller of the map and
// the file's size plus the free disk.
struct store_space {
    double used = 0;
    double map = 0;
    double disk_free = 0;
    double capacity = 0;
};

class store {
public:
    virtual ~store() = default;
    // Begins a transaction; `write` = read-write. Throws std::runtime_error if
    // the environment cannot start one (a fatal condition).
    virtual std::unique_ptr<transaction> begin(bool write) = 0;
    // What the store occupies; all 0 for a store without bounds.
    virtual store_space space() { return {}; }
    // Fraction (0..1) of the capacity in use; 0 if unbounded.
    double fill_ratio() {
        auto s = space();
        return s.capacity > 0 ? s.used / s.capacity : 0;
    }
    // What fill_ratio() measured, in words (used and capacity in MiB), for
    // messages that tell an operator what to do.
    virtual std::string fill_text() { return {}; }
};

// Another process holds the data folder (taskmill-broker exits 3).
class store_busy : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// The store on disk is damaged: the message says what is wrong and what to
// run (taskmill-broker exits 4).
class store_damaged : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

enum class durability : uint8_t {
    sync,  // fsync each commit: a power loss loses nothing acknowledged
    none,  // no fsync: survives a process crash, not a power loss
};

struct lmdb_options {
    std::string dir;                       // created if missing
    uint64_t map_size_bytes = 8ull << 30;  // LMDB's own default (10 MiB) is far too small
    durability mode = durability::sync;
    // A 0-byte data.mdb beside signs of an earlier store (lock.mdb,
    // broker.lock, endpoints.json) is refused as lost data unless this is set.
    bool allow_empty = false;
};

// Opens (creating if needed) the LMDB environment in `opts.dir`.
// First takes an exclusive flock on DIR/broker.lock, held until the store is
// destroyed: a second opener (broker or --check-store) gets store_busy.
// Then checks the store before any page is read through the map: the file
// holds every page its last commit names, and every table (and the free
// list) can be read from end to end; store_damaged otherwise. Throws
// std::runtime_error naming the path and the LMDB error on other failures.
std::unique_ptr<store> open_lmdb_store(const lmdb_options& opts);

// A store kept in process memory, lost at destruction. For tests.
std::unique_ptr<store> make_memory_store();

}  // namespace taskmill::broker
