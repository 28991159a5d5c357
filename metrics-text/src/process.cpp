// process_figures from /proc (proc(5): /proc/PID/stat fields 14, 15, 22,
// 23, 24; /proc/stat btime).
#include "taskmill/metrics/process.hpp"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace taskmill::metrics {

namespace {

std::optional<double> boot_time_seconds() {
    std::ifstream in("/proc/stat");
    std::string key;
    while (in >> key) {
        if (key == "btime") {
            double t = 0;
            if (in >> t) {
                return t;
            }
            return std::nullopt;
        }
        in.ignore(1 << 16, '\n');
    }
    return std::nullopt;
}

// The fields of /proc/PID/stat after "(comm)" (which may hold spaces),
// numbered from 3 as proc(5) numbers them: out[0] is field 3.
std::optional<std::vector<std::string>> stat_fields(pid_t pid) {
    std::ifstream in(pid == 0 ? std::string("/proc/self/stat") : "/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(in, line)) {
        return std::nullopt;
    }
    auto close = line.rfind(')');
    if (close == std::string::npos) {
        return std::nullopt;
    }
    std::istringstream rest(line.substr(close + 1));
    std::vector<std::string> out;
    for (std::string f; rest >> f;) {
        out.push_back(std::move(f));
    }
    if (out.size() < 22) {
        return std::nullopt;
    }
    return out;
}

double field(const std::vector<std::string>& f, std::size_t number) {
    try {
        return std::stod(f[number - 3]);
    } catch (const std::exception&) {
        return 0;
    }
}

}  // namespace

std::optional<process_figures> read_process(pid_t pid) {
    auto f = stat_fields(pid);
    if (!f) {
        return std::nullopt;
    }
    const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
    process_figures p;
    p.cpu_seconds = (field(*f, 14) + field(*f, 15)) / ticks;
    p.virtual_bytes = static_cast<uint64_t>(field(*f, 23));
    p.resident_bytes = static_cast<uint64_t>(field(*f, 24) * page);
    p.start_time_seconds = boot_time_seconds().value_or(0) + field(*f, 22) / ticks;
    return p;
}

std::optional<uint64_t> open_fds() {
    std::error_code ec;
    uint64_t n = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec)) {
        ++n;
    }
    if (ec) {
        return std::nullopt;
    }
    return n > 0 ? n - 1 : 0;  // less the one the listing itself holds open
}

std::optional<uint64_t> max_fds() {
    rlimit l{};
    if (getrlimit(RLIMIT_NOFILE, &l) != 0 || l.rlim_cur == RLIM_INFINITY) {
        return std::nullopt;
    }
    return static_cast<uint64_t>(l.rlim_cur);
}

}  // namespace taskmill::metrics
