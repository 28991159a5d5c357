#include "worker_marker.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

namespace taskmill::host::detail {
namespace fs = std::filesystem;
namespace {

fs::path worker_folder(const std::string& run_dir, pid_t pid) {
    return fs::path(run_dir) / ("worker-" + std::to_string(pid));
}

}  // namespace

void mark_worker(const std::string& run_dir, const char* stage) {
    auto dir = worker_folder(run_dir, ::getpid());
    std::error_code ec;
    fs::create_directories(dir, ec);
    std::ofstream(dir / stage) << "1\n";
}

bool worker_reached(const std::string& run_dir, pid_t pid, const char* stage) {
    std::error_code ec;
    return fs::exists(worker_folder(run_dir, pid) / stage, ec);
}

std::string last_plugin_copied(const std::string& run_dir, pid_t pid) {
    const std::string prefix = std::to_string(pid) + "-";
    std::string best;
    unsigned long best_n = 0;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(worker_folder(run_dir, pid), ec)) {
        std::string name = e.path().filename().string();
        if (name.rfind(prefix, 0) != 0) continue;
        std::size_t dash = name.find('-', prefix.size());
        if (dash == std::string::npos) continue;
        unsigned long n = std::strtoul(name.c_str() + prefix.size(), nullptr, 10);
        if (best.empty() || n > best_n) {
            best_n = n;
            best = name.substr(dash + 1);
        }
    }
    return best;
}

}  // namespace taskmill::host::detail
