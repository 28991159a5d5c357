// The exit codes of a worker process, and their meaning in words for the
// supervisor's log. Chosen from the range sysexits.h leaves to programs
// (64-78 is taken by it; 70+ are rarely used by plugins calling exit()),
// so a plugin's own exit(3) is not mistaken for one of the worker's.
#pragma once

#include <sys/wait.h>

#include <csignal>
#include <cstring>
#include <string>

namespace taskmill::host {

inline constexpr int exit_worker_ok = 0;       // stopped or recycled after draining
inline constexpr int exit_worker_startup = 1;  // could not start (bad options, socket, ...)
inline constexpr int exit_task_stuck = 70;     // a task ran past its deadline + --kill-grace-ms
inline constexpr int exit_handed_back = 71;    // stopping: tasks still ran after the grace; handed back

// What a worker's wait status means, for a log line: "stopped or recycled
// (exit 0)", "a task was stuck past its deadline (exit 70)", "killed by
// signal 11 (Segmentation fault)", "exited with status 3 (not a worker
// exit code: the plugin code called exit?)".
inline std::string describe_worker_exit(int status) {
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = ::strsignal(sig);
        return "killed by signal " + std::to_string(sig) + " (" + (name != nullptr ? name : "unknown") + ")";
    }
    if (!WIFEXITED(status)) return "ended with wait status " + std::to_string(status);
    const int code = WEXITSTATUS(status);
    const std::string tail = " (exit " + std::to_string(code) + ")";
    switch (code) {
        case exit_worker_ok: return "stopped or recycled" + tail;
        case exit_worker_startup: return "could not start" + tail;
        case exit_task_stuck: return "a task was stuck past its deadline and kill grace" + tail;
        case exit_handed_back: return "tasks still ran when the grace ended; handed back" + tail;
        default:
            return "exited with status " + std::to_string(code) + " (not a worker exit code: plugin code called exit?)";
    }
}

}  // namespace taskmill::host
