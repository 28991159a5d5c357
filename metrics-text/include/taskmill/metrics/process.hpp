// What /proc says about a process: the figures behind process_* metrics.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace taskmill::metrics {

struct process_figures {
    double cpu_seconds = 0;  // user + system
    uint64_t resident_bytes = 0;
    uint64_t virtual_bytes = 0;
    double start_time_seconds = 0;  // since the Unix epoch
};

// From /proc/PID/stat; nullopt when the process is gone or /proc unreadable.
std::optional<process_figures> read_process(pid_t pid);
// Open file descriptors of this process (/proc/self/fd), and its limit.
std::optional<uint64_t> open_fds();
std::optional<uint64_t> max_fds();

}  // namespace taskmill::metrics
