// The worker's figures for its supervisor's /metrics: per handler, tasks
// run by outcome and a run-time histogram, and the slots busy now, in a
// small file-backed MAP_SHARED mapping, <run-dir>/worker-<pid>/stats (next
// to the running file, removed with the worker's folder once reaped).
//
// Slot threads count with relaxed atomic adds on the mapping (no lock, no
// message, no syscall: the task path stays as it was). The supervisor reads
// the file when scraped, and one last time when it reaps the worker, so
// the host's counters never go back when a worker is recycled or crashes
// (the page cache outlives the process).
//
// Layout (native endianness, 8-byte words): a header {magic, handlers,
// busy}, then per handler a 64-byte name (NUL-padded, without @version)
// and {succeeded, failed, retried, cancelled, timeouts, run buckets[21]
// (per bucket, not cumulative; last = +Inf), run sum (ns)}.
#pragma once

#include <sys/types.h>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/metrics/histogram.hpp>

namespace taskmill::host::detail {

std::filesystem::path worker_stats_path(const std::string& run_dir, pid_t pid);

// A handler's figures, as read back.
struct handler_figures {
    uint64_t succeeded = 0;
    uint64_t failed = 0;
    uint64_t retried = 0;
    uint64_t cancelled = 0;
    uint64_t timeouts = 0;
    metrics::seconds_histogram run;

    void add(const handler_figures& o);
};

struct worker_figures {
    uint64_t busy = 0;                                              // slots running a handler now
    std::vector<std::pair<std::string, handler_figures>> handlers;  // in file order
};

class worker_stats {
public:
    static constexpr std::size_t name_size = 64;
    static constexpr std::size_t max_handlers = 256;

    worker_stats() = default;
    ~worker_stats();  // unmaps; the file stays for the supervisor
    worker_stats(const worker_stats&) = delete;
    worker_stats& operator=(const worker_stats&) = delete;

    // Creates `path` with an entry per handler name (names past
    // max_handlers, or longer than name_size, are not counted). False (and
    // no-op counting) if that fails.
    bool open(const std::filesystem::path& path, const std::vector<std::string>& handlers);

    // Slot threads.
    void slot_busy(bool busy) noexcept;
    // An attempt of `handler` ran `run_ns` and ended with `status` (ok fail
    // retry cancelled timeout).
    void ran(std::string_view handler, std::string_view status, uint64_t run_ns) noexcept;

private:
    uint64_t* words_ = nullptr;
    std::size_t size_ = 0;
    std::vector<std::string> names_;  // fixed after open(): read by slot threads without a lock
};

// The figures in a stats file; nullopt if it is missing or not one.
std::optional<worker_figures> read_worker_stats(const std::filesystem::path& path);

}  // namespace taskmill::host::detail
