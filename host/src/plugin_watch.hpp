// Private to the supervisor: notices changes in the plugins folder.
//
// inotify reports that something happened; what changed is decided by
// comparing snapshots (file name -> size and mtime) of the *.so files, so
// partial writes and event storms reduce to "settle, then compare".
// Single-threaded (the supervisor's loop).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace taskmill::host::detail {

class plugin_watch {
public:
    using stamp = std::pair<uintmax_t, int64_t>;    // (size, mtime ns)
    using snapshot = std::map<std::string, stamp>;  // file -> its stamp

    // Watches `dir`; fd() is -1 if inotify is unavailable (no hot reload).
    explicit plugin_watch(std::filesystem::path dir);
    ~plugin_watch();
    plugin_watch(const plugin_watch&) = delete;
    plugin_watch& operator=(const plugin_watch&) = delete;

    int fd() const { return fd_; }
    // Reads the pending events; true if any concerned a *.so file.
    bool drain_events();
    snapshot scan() const;
    const std::filesystem::path& dir() const { return dir_; }

    // Files of `after` that are new or differ from `before`.
    static std::vector<std::string> changed(const snapshot& before, const snapshot& after);

private:
    std::filesystem::path dir_;
    int fd_ = -1;
};

}  // namespace taskmill::host::detail
