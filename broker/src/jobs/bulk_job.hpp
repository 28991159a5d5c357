// A bulk job: one operator verb (purge, cancel, retry, delete) over the
// tasks a filter (or a list of ids) names, carried out by the engine in
// bounded slices over several loop turns (engine::run_jobs, jobs.cpp).
//
// Stored in table::jobs (id, 8 bytes big-endian -> msgpack map) and written
// in the transaction of every slice together with the changes the slice
// made, so a job that a crash interrupts resumes after a restart exactly
// where its last committed slice stopped: no task is done twice or missed.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

#include "index/task_index.hpp"
#include "model/task_id.hpp"

namespace taskmill::broker {

// The bounds of a job's work per loop turn: at most job_slice_tasks tasks
// read per slice, and the turn's jobs stop once job_turn_budget has passed
// since the first slice of the turn began.
inline constexpr uint32_t job_slice_tasks = 2000;
inline constexpr std::chrono::microseconds job_turn_budget{1000};
// A retry job waits this long when new work is refused (a full store).
inline constexpr int64_t job_hold_ms = 1000;
// Finished jobs kept in the store for JOB; older ones are deleted.
inline constexpr std::size_t finished_jobs_kept = 100;
// The ids a bulk reply lists when its first slice finished the job.
inline constexpr std::size_t max_reported_ids = 1000;

enum class job_kind : uint8_t { purge, cancel, retry, remove };

std::string_view to_string(job_kind k);
std::optional<job_kind> parse_job_kind(std::string_view name);

struct bulk_job {
    uint64_t id = 0;
    job_kind kind = job_kind::cancel;
    task_filter filter;
    std::vector<task_id> ids;  // non-empty: these tasks instead of the filter
    std::string cursor;        // task_index::scan's, "" = from the start
    uint64_t position = 0;     // with ids: the next one to look at
    bool started = false;      // the scan has begun (an empty cursor then means done)
    bool done = false;
    uint64_t matched = 0;  // tasks looked at that matched
    uint64_t changed = 0;  // tasks cancelled, retried or deleted
    int64_t started_ms = 0;
    int64_t finished_ms = 0;

    uint64_t skipped() const { return matched - changed; }
};

// The job's key in table::jobs.
std::string job_key(uint64_t id);
std::optional<uint64_t> job_id_of(std::string_view key);

std::string encode(const bulk_job& j);
result<bulk_job> decode_job(std::string_view bytes);

protocol::job_info to_info(const bulk_job& j);

}  // namespace taskmill::broker
