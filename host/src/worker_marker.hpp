// How far a worker got, for its supervisor: marker files in the worker's
// private folder <run-dir>/worker-<pid>/ (removed with it once reaped).
//
//   loaded  written after the worker loaded its plugins;
//   ready   written after it connected and sent its HELLO.
//
// A worker that exits without `ready` failed to start. One that exits
// without `loaded` died loading a plugin: that plugin is the one whose
// private copy (PID-N-FILE, made by plugin_set just before each dlopen)
// has the highest N, since the copies of refused files are removed.
#pragma once

#include <sys/types.h>

#include <string>

namespace taskmill::host::detail {

// In the worker: marks this process as having reached `stage`.
void mark_worker(const std::string& run_dir, const char* stage);
// In the supervisor: whether worker `pid` reached `stage`.
bool worker_reached(const std::string& run_dir, pid_t pid, const char* stage);
// In the supervisor: the file name of the plugin worker `pid` loaded last
// (or was loading), or "" if it made no copy.
std::string last_plugin_copied(const std::string& run_dir, pid_t pid);

}  // namespace taskmill::host::detail
