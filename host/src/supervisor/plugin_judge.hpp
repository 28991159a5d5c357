// Private to the supervisor: judges plugin files before any worker loads them.
//
// Each file is first copied into a private staging folder; a
// `taskmill-host --check` child (check_argv) then loads that copy, so what
// is judged is byte for byte what the workers will load, however the
// original changes afterwards. A file is accepted only if its check exits
// 0 and the last line of its stdout is `ok`; otherwise the reason is the
// check's `refused: ...` line on stderr, or how the check ended. A few
// checks run at a time; one still running after check_timeout() is killed
// (SIGKILL) and its file refused: the check's own init timeout plus a
// margin, so a hung init() is refused with the check's own reason. Single-threaded (the supervisor's loop).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <taskmill/host/options.hpp>

#include "../plugin_watch.hpp"

namespace taskmill::host::detail {

class plugin_judge {
public:
    using steady = std::chrono::steady_clock;
    using stamp = plugin_watch::stamp;
    static constexpr std::size_t max_parallel = 4;
    // How long a check may take: --init-timeout-ms plus room to load and report.
    std::chrono::milliseconds check_timeout() const;

    struct verdict {
        std::string file;  // name in the plugins folder
        stamp when{};      // the file's stamp before it was copied
        bool accepted = false;
        std::string reason;          // why it was refused
        std::filesystem::path copy;  // the judged copy (accepted only)
    };

    // Files are named relative to o.plugins_dir; copies live under work_dir.
    plugin_judge(const options& o, std::string exe, std::filesystem::path work_dir);

    void submit(const std::string& file, stamp when);
    // Starts queued checks (up to max_parallel) and kills overdue ones.
    void pump(steady::time_point now);
    bool owns(pid_t pid) const { return running_.count(pid) != 0; }
    void on_exit(pid_t pid, int status);
    bool idle() const { return queued_.empty() && running_.empty(); }
    bool has_running() const { return !running_.empty(); }
    // The verdicts reached since the last take().
    std::vector<verdict> take();
    std::optional<steady::time_point> next_deadline() const;
    void kill_all();
    // Removes the staging folder of `v` (its copy included).
    static void discard(const verdict& v);

private:
    struct check {
        verdict v;
        std::filesystem::path stage;
        steady::time_point deadline;
        bool killed = false;
    };
    void start(verdict v);
    std::string refusal(const check& c, int status) const;

    const options& o_;
    std::string exe_;
    std::filesystem::path work_dir_;
    std::deque<verdict> queued_;
    std::map<pid_t, check> running_;
    std::vector<verdict> done_;
    uint64_t counter_ = 0;
};

}  // namespace taskmill::host::detail
