// Key and value layouts of the ordered tables (see store.hpp). Integers are
// big-endian so that byte order is numeric order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "model/task_id.hpp"

namespace taskmill::broker::keys {

void put_u64(std::string& out, uint64_t v);
uint64_t get_u64(std::string_view in);  // first 8 bytes; in.size() >= 8

// ready: queue \0 (9 - priority) seq -> id expires_ms handler. Sorting puts
// a queue's priority 9 first, then FIFO by seq.
std::string ready_key(std::string_view queue, int priority, uint64_t seq);
std::string ready_value(const task_id& id, int64_t expires_ms, std::string_view handler);

struct ready_entry {
    std::string queue;
    int priority = 0;
    uint64_t seq = 0;
    task_id id{};
    int64_t expires_ms = 0;  // 0 = no TTL
    std::string handler;
};
std::optional<ready_entry> parse_ready(std::string_view key, std::string_view value);

// delayed: eta_ms id -> empty.
std::string delayed_key(int64_t eta_ms, const task_id& id);
std::optional<std::pair<int64_t, task_id>> parse_delayed(std::string_view key);

// tags: tag \0 id -> empty, from the task's creation until it is deleted. A tag's entries
// are the keys that start with tag_prefix(tag) and are 16 bytes longer (a
// tag holding \0 cannot pass for another).
std::string tag_prefix(std::string_view tag);
std::string tag_key(std::string_view tag, const task_id& id);
std::optional<task_id> parse_tag_key(std::string_view key, std::size_t prefix_size);

inline constexpr std::string_view meta_seq = "seq";
// Tasks per queue and state (msgpack map queue -> state -> n), written in
// the transaction of every change, so a restart need not read every task.
inline constexpr std::string_view meta_counts = "counts";
// Present once the tags table holds every unfinished tagged task (a store
// written before it existed gets it at its first start).
inline constexpr std::string_view meta_tags_indexed = "tags-indexed";
// Present once the listing indexes (table::index) and the tags table hold
// every task, finished ones too (a store written before gets them at its
// first start).
inline constexpr std::string_view meta_listing_indexed = "listing-indexed";
// Present once the listing indexes hold no entry by state of a QUEUED
// task (those are listed from memory; a store written before has them).
inline constexpr std::string_view meta_queued_unlisted = "queued-unlisted";
// Present once every finished task and workflow has its expiry entry.
inline constexpr std::string_view meta_expiry_indexed = "expiry-indexed";
// + a final state's name ("sweep-from/SUCCEEDED"): where the retention
// sweep's walk of that state's finished tasks goes on from.
inline constexpr std::string_view meta_sweep_from = "sweep-from/";
// While an older store is upgraded in slices: the task key the next slice
// starts at (engine/store_upgrade.cpp).
inline constexpr std::string_view meta_upgrade_from = "upgrade-from";

// In a cluster member's store: the index, in the replicated log, of the
// last entry applied to it (u64 BE; replication/apply.hpp).
inline constexpr std::string_view meta_applied_index = "applied-index";

// Where releases before the workflows and schedules tables kept their
// records in the meta table ("workflow/ID", "schedule/NAME"); a store that
// still has them is migrated at start (store/migrate.hpp).
inline constexpr std::string_view legacy_workflow_prefix = "workflow/";
inline constexpr std::string_view legacy_schedule_prefix = "schedule/";

}  // namespace taskmill::broker::keys
