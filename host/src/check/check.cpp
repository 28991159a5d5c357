// taskmill-host --check FILE.so: the file is loaded in a forked child, with
// the workers' own loader; this process only listens and judges, so no
// constructor, init() or truncated file can crash or stall it.
#include <taskmill/host/supervisor.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "check/check_child.hpp"
#include "security.hpp"

namespace taskmill::host {
namespace {

using steady = std::chrono::steady_clock;

// What the child said before it ended.
struct heard {
    std::string stage = "while loading (constructor)";
    std::vector<std::string> report;
    std::optional<std::string> refused;
    bool done = false;
    bool timed_out = false;
};

void take(heard& h, const std::string& line) {
    auto space = line.find(' ');
    std::string kind = line.substr(0, space);
    std::string text = space == std::string::npos ? "" : line.substr(space + 1);
    if (kind == "stage") h.stage = text;
    else if (kind == "line") h.report.push_back(text);
    else if (kind == "refused") h.refused = text;
    else if (kind == "done") h.done = true;
}

// Takes the complete lines of `buf`; a new stage restarts the clock.
void take_lines(heard& h, std::string& buf, steady::time_point& deadline, std::chrono::milliseconds timeout) {
    for (auto nl = buf.find('\n'); nl != std::string::npos; nl = buf.find('\n')) {
        auto before = h.stage;
        take(h, buf.substr(0, nl));
        buf.erase(0, nl + 1);
        if (h.stage != before) deadline = steady::now() + timeout;
    }
}

// Reads what is in the pipe without waiting; false at its end.
bool read_available(int fd, std::string& buf) {
    char chunk[4096];
    for (;;) {
        ssize_t got = ::read(fd, chunk, sizeof chunk);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) return got < 0 && errno == EAGAIN;
        buf.append(chunk, static_cast<std::size_t>(got));
    }
}

// Reads messages until the child's verdict, its end, or a stage lasting
// longer than the timeout (each stage gets the whole timeout). The child's
// end is seen on `pidfd` too (when there is one), so a process the library
// forked cannot keep the check waiting by holding the pipe open.
heard listen(int fd, int pidfd, std::chrono::milliseconds timeout) {
    heard h;
    std::string buf;
    auto deadline = steady::now() + timeout;
    while (!h.done && !h.refused) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now()).count();
        if (left <= 0) {
            h.timed_out = true;
            break;
        }
        pollfd p[2] = {{fd, POLLIN, 0}, {pidfd, POLLIN, 0}};
        int n = ::poll(p, pidfd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, 60000)));
        if (n < 0 && errno != EINTR) break;
        if (n <= 0) continue;
        bool open = read_available(fd, buf);
        take_lines(h, buf, deadline, timeout);
        if (!open || (pidfd >= 0 && (p[1].revents & POLLIN) != 0)) break;  // the child ended
    }
    return h;
}

std::string seconds_text(int64_t ms) {
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + " s";
    return std::to_string(ms) + " ms";
}

std::string timeout_reason(const std::string& stage, int64_t ms) {
    if (stage == "in init()") return "init() did not return within " + seconds_text(ms);
    if (stage == "in shutdown()") return "shutdown() did not return within " + seconds_text(ms);
    if (stage == "in the entry point") return "the entry point did not return within " + seconds_text(ms);
    return "the library did not finish loading within " + seconds_text(ms) + " (constructor)";
}

// Why the child's end refuses the file; empty if it ended as it should.
std::string judge(const heard& h, int status, int64_t timeout_ms) {
    if (h.refused) return *h.refused;
    if (h.timed_out) return timeout_reason(h.stage, timeout_ms);
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        return "the library crashed the process " + h.stage + ": signal " + std::to_string(sig) + " (" +
               strsignal(sig) + ")";
    }
    if (!h.done) {
        std::string where = h.stage == "while loading (constructor)" ? "while loading" : h.stage;
        return "the library ended the process " + where + " (exit status " + std::to_string(WEXITSTATUS(status)) + ")";
    }
    return {};
}

std::string strict_modes_refusal(const options& o) {
    if (!o.strict_modes) return {};
    auto file = std::filesystem::absolute(o.check_file);
    for (const auto& path : {file.parent_path(), file}) {
        if (auto why = strict_mode_problem(path); !why.empty()) {
            return "strict modes: " + path.string() + " is " + why +
                   "; fix the permissions or run with --strict-modes=false";
        }
    }
    return {};
}

int refuse(const std::string& why) {
    std::fprintf(stderr, "refused: %s\n", why.c_str());
    return 2;
}

}  // namespace

int run_check(const options& o) {
    if (auto why = strict_modes_refusal(o); !why.empty()) return refuse(why);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) return refuse(std::string("cannot start the check: ") + std::strerror(errno));
    std::fflush(nullptr);  // nothing buffered may be written twice
    pid_t pid = ::fork();
    if (pid < 0) return refuse(std::string("cannot start the check: ") + std::strerror(errno));
    if (pid == 0) {
        ::close(fds[0]);
        detail::run_check_child(o, fds[1]);
    }
    ::close(fds[1]);
    ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
    int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // -1 on kernels before 5.3: the pipe only
    heard h = listen(fds[0], pidfd, std::chrono::milliseconds(o.init_timeout_ms));
    if (pidfd >= 0) ::close(pidfd);
    ::close(fds[0]);
    if (h.timed_out) ::kill(pid, SIGKILL);
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(o.run_dir) / ("check-" + std::to_string(pid)), ec);
    std::filesystem::remove(o.run_dir, ec);  // only if empty: it may be shared
    if (auto why = judge(h, status, o.init_timeout_ms); !why.empty()) return refuse(why);
    for (const auto& line : h.report) std::printf("%s\n", line.c_str());
    std::printf("ok\n");
    return 0;
}

}  // namespace taskmill::host
