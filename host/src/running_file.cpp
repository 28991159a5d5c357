// The worker's crash trace (see running_file.hpp).
#include "running_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace taskmill::host::detail {

std::filesystem::path running_file_path(const std::string& run_dir, pid_t pid) {
    return std::filesystem::path(run_dir) / ("worker-" + std::to_string(pid)) / "running";
}

running_file::~running_file() {
    if (base_ != nullptr) ::munmap(base_, size_);
}

bool running_file::open(const std::filesystem::path& path, uint32_t slots) {
    if (base_ != nullptr || slots == 0) return false;
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return false;
    std::size_t size = static_cast<std::size_t>(slots) * entry_size;
    // ftruncate zero-fills; the pages are allocated on first write. No fsync:
    // the page cache outlives the process, which is all the supervisor needs.
    if (::ftruncate(fd, static_cast<off_t>(size)) != 0) {
        ::close(fd);
        ::unlink(path.c_str());
        return false;
    }
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    ::close(fd);  // the mapping keeps the file
    if (p == MAP_FAILED) {
        ::unlink(path.c_str());
        return false;
    }
    base_ = static_cast<char*>(p);
    size_ = size;
    slots_ = slots;
    path_ = path;
    return true;
}

void running_file::set(uint32_t slot, std::string_view id) noexcept {
    if (base_ == nullptr || slot >= slots_ || id.empty() || id.size() > entry_size) return;
    char* e = base_ + static_cast<std::size_t>(slot) * entry_size;
    std::memcpy(e, id.data(), id.size());
    if (id.size() < entry_size) std::memset(e + id.size(), 0, entry_size - id.size());
}

void running_file::clear(uint32_t slot) noexcept {
    if (base_ == nullptr || slot >= slots_) return;
    // First byte first: a process killed mid-clear leaves an empty entry.
    char* e = base_ + static_cast<std::size_t>(slot) * entry_size;
    e[0] = 0;
    std::memset(e + 1, 0, entry_size - 1);
}

void running_file::remove() noexcept {
    if (path_.empty()) return;
    ::unlink(path_.c_str());
    path_.clear();
}

std::optional<std::vector<std::string>> read_running_file(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string bytes;
    char buf[4096];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n > 0) {
            bytes.append(buf, static_cast<std::size_t>(n));
        } else if (n == 0) {
            break;
        } else if (errno != EINTR) {
            ::close(fd);
            return std::nullopt;
        }
    }
    ::close(fd);
    std::vector<std::string> ids;
    for (std::size_t off = 0; off + running_file::entry_size <= bytes.size(); off += running_file::entry_size) {
        std::string_view e(bytes.data() + off, running_file::entry_size);
        e = e.substr(0, e.find('\0'));
        if (!e.empty()) ids.emplace_back(e);
    }
    return ids;
}

}  // namespace taskmill::host::detail
