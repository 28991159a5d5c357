// The worker's crash trace: which task each slot is running, in a small
// file-backed MAP_SHARED mapping, <run-dir>/worker-<pid>/running (inside the
// worker's private folder, which the supervisor removes when the worker
// exits). Entry i (32 bytes) holds the id of the task slot i is running, or
// zeros. Writes land in the page cache, so they survive the process being
// killed; the supervisor reads the file after reaping the worker and tells
// the broker, in DEAD's `running`, exactly which tasks the crash hit.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace taskmill::host::detail {

std::filesystem::path running_file_path(const std::string& run_dir, pid_t pid);

class running_file {
public:
    static constexpr std::size_t entry_size = 32;  // a task id is 32 hex chars

    running_file() = default;
    ~running_file();  // unmaps; the file stays (remove() deletes it)
    running_file(const running_file&) = delete;
    running_file& operator=(const running_file&) = delete;

    // Creates (or truncates) `path`, sized slots x entry_size and zeroed, and
    // maps it shared. False (and a no-op set()/clear()) if that fails.
    bool open(const std::filesystem::path& path, uint32_t slots);
    bool is_open() const { return base_ != nullptr; }

    // Called by slot thread `slot` only, so entries need no lock. An id
    // longer than entry_size cannot be recorded and is left out.
    void set(uint32_t slot, std::string_view id) noexcept;
    void clear(uint32_t slot) noexcept;

    // Deletes the file (a clean exit); the mapping stays valid until destruction.
    void remove() noexcept;

private:
    char* base_ = nullptr;
    std::size_t size_ = 0;
    uint32_t slots_ = 0;
    std::filesystem::path path_;
};

// The non-empty entries of a running file, in slot order; nullopt if the
// file does not exist or cannot be read.
std::optional<std::vector<std::string>> read_running_file(const std::filesystem::path& path);

}  // namespace taskmill::host::detail
