#include "plugin_judge.hpp"

#include <signal.h>
#include <sys/wait.h>

#include <cstring>

#include "../security.hpp"
#include "child_process.hpp"

namespace taskmill::host::detail {
namespace fs = std::filesystem;
namespace {

// The last line of `text` that starts with `prefix`, without the prefix.
std::optional<std::string> last_line_with(const std::string& text, const std::string& prefix) {
    std::optional<std::string> found;
    std::size_t at = 0;
    while (at < text.size()) {
        std::size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        if (line.rfind(prefix, 0) == 0) found = line.substr(prefix.size());
        if (nl == std::string::npos) break;
        at = nl + 1;
    }
    return found;
}

std::string last_line(const std::string& text) {
    auto nl = text.rfind('\n');
    return nl == std::string::npos ? text : text.substr(nl + 1);
}

}  // namespace

plugin_judge::plugin_judge(const options& o, std::string exe, fs::path work_dir)
    : o_(o), exe_(std::move(exe)), work_dir_(std::move(work_dir)) {}

std::chrono::milliseconds plugin_judge::check_timeout() const {
    return std::chrono::milliseconds(o_.init_timeout_ms) + std::chrono::seconds(5);
}

void plugin_judge::submit(const std::string& file, stamp when) {
    verdict v;
    v.file = file;
    v.when = when;
    queued_.push_back(std::move(v));
}

void plugin_judge::pump(steady::time_point now) {
    while (!queued_.empty() && running_.size() < max_parallel) {
        verdict v = std::move(queued_.front());
        queued_.pop_front();
        start(std::move(v));
    }
    for (auto& [pid, c] : running_) {
        if (!c.killed && now >= c.deadline) {
            ::kill(pid, SIGKILL);
            c.killed = true;
        }
    }
}

// Strict modes are judged on the original (owner and modes are the
// operator's); the check then loads a private copy.
void plugin_judge::start(verdict v) {
    fs::path original = fs::path(o_.plugins_dir) / v.file;
    if (o_.strict_modes) {
        if (auto why = strict_mode_problem(original); !why.empty()) {
            v.reason = "refused (strict modes): " + why;
            done_.push_back(std::move(v));
            return;
        }
    }
    fs::path stage = work_dir_ / ("stage-" + std::to_string(++counter_));
    std::error_code ec;
    fs::create_directories(stage, ec);
    v.copy = stage / v.file;
    if (!ec) fs::copy_file(original, v.copy, fs::copy_options::overwrite_existing, ec);
    if (!ec)
        fs::permissions(v.copy,
                        fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read | fs::perms::others_read,
                        ec);
    if (ec) {
        v.reason = "cannot copy it for checking: " + ec.message();
        v.copy = stage / v.file;
        done_.push_back(std::move(v));
        return;
    }
    options co = o_;
    co.run_dir = stage.string();  // what a crashing check leaves behind goes with the stage
    pid_t pid = spawn_process(check_argv(co, exe_, v.copy.string()), (stage / "check.out").string(),
                              (stage / "check.err").string());
    if (pid < 0) {
        v.reason = std::string("cannot start the check: ") + std::strerror(errno);
        done_.push_back(std::move(v));
        return;
    }
    running_[pid] = check{std::move(v), stage, steady::now() + check_timeout()};
}

std::string plugin_judge::refusal(const check& c, int status) const {
    if (c.killed) {
        return "check did not finish within " + std::to_string(check_timeout().count() / 1000) + " s (killed)";
    }
    if (auto why = last_line_with(read_all((c.stage / "check.err").string()), "refused: ")) return *why;
    return "check " + describe_exit(status);
}

void plugin_judge::on_exit(pid_t pid, int status) {
    auto it = running_.find(pid);
    if (it == running_.end()) return;
    check c = std::move(it->second);
    running_.erase(it);
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    c.v.accepted = clean && !c.killed && last_line(read_all((c.stage / "check.out").string())) == "ok";
    if (!c.v.accepted) c.v.reason = refusal(c, status);
    done_.push_back(std::move(c.v));
}

std::vector<plugin_judge::verdict> plugin_judge::take() {
    std::vector<verdict> out;
    out.swap(done_);
    return out;
}

std::optional<plugin_judge::steady::time_point> plugin_judge::next_deadline() const {
    std::optional<steady::time_point> next;
    for (const auto& [pid, c] : running_) {
        if (!c.killed && (!next || c.deadline < *next)) next = c.deadline;
    }
    return next;
}

void plugin_judge::kill_all() {
    queued_.clear();
    for (auto& [pid, c] : running_) {
        ::kill(pid, SIGKILL);
        c.killed = true;
    }
}

void plugin_judge::discard(const verdict& v) {
    if (v.copy.empty()) return;
    std::error_code ec;
    fs::remove_all(v.copy.parent_path(), ec);
}

}  // namespace taskmill::host::detail
