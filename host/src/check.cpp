// taskmill-host --check FILE.so
#include <taskmill/host/supervisor.hpp>

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include <taskmill/host/plugin_loader.hpp>

namespace taskmill::host {

int run_check(const options& o) {
    auto dir = std::filesystem::path(o.run_dir) / ("check-" + std::to_string(::getpid()));
    int rc = 2;
    {
        plugin_set set(dir);
        auto r = set.load(o.check_file);
        if (!r) {
            std::fprintf(stderr, "refused: %s\n", r.error().message.c_str());
        } else {
            const plugin_info& p = **r;
            std::printf("plugin %s %s abi %u.%u file %s\n", p.name.c_str(), p.version.c_str(), p.abi_version >> 16,
                        p.abi_version & 0xFFFFu, p.source.c_str());
            for (const auto& h : p.handlers) {
                std::printf("  handler %s queue=%s timeout_ms=%lld retries=%d flags=%u\n", h.name.c_str(),
                            h.default_queue.empty() ? "default" : h.default_queue.c_str(),
                            static_cast<long long>(h.default_timeout_ms), h.default_retries, h.flags);
            }
            rc = 0;
        }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
    std::filesystem::remove(o.run_dir, ec);  // only if empty: it may be shared
    return rc;
}

}  // namespace taskmill::host
