#include "plugin_watch.hpp"

#include <sys/inotify.h>
#include <unistd.h>

#include <cstring>

namespace taskmill::host::detail {
namespace fs = std::filesystem;

plugin_watch::plugin_watch(fs::path dir) : dir_(std::move(dir)) {
    fd_ = ::inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (fd_ < 0) return;
    uint32_t mask = IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB;
    if (::inotify_add_watch(fd_, dir_.c_str(), mask) < 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

plugin_watch::~plugin_watch() {
    if (fd_ >= 0) ::close(fd_);
}

bool plugin_watch::drain_events() {
    alignas(inotify_event) char buf[8192];
    bool relevant = false;
    for (;;) {
        ssize_t n = ::read(fd_, buf, sizeof buf);
        if (n <= 0) return relevant;
        for (ssize_t off = 0; off < n;) {
            inotify_event ev{};
            std::memcpy(&ev, buf + off, sizeof ev);
            std::string name = ev.len > 0 ? std::string(buf + off + sizeof(inotify_event)) : std::string();
            if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0) relevant = true;
            off += static_cast<ssize_t>(sizeof(inotify_event) + ev.len);
        }
    }
}

plugin_watch::snapshot plugin_watch::scan() const {
    snapshot s;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(dir_, ec)) {
        if (e.path().extension() != ".so") continue;
        std::error_code fe;
        auto size = e.file_size(fe);
        auto mtime = e.last_write_time(fe);
        if (fe) continue;
        s[e.path().filename().string()] = {size, static_cast<int64_t>(mtime.time_since_epoch().count())};
    }
    return s;
}

std::vector<std::string> plugin_watch::changed(const snapshot& before, const snapshot& after) {
    std::vector<std::string> out;
    for (const auto& [name, stat] : after) {
        auto it = before.find(name);
        if (it == before.end() || it->second != stat) out.push_back(name);
    }
    return out;
}

}  // namespace taskmill::host::detail
