#include "child_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <sstream>

namespace taskmill::host::detail {
namespace {

int open_log(const std::string& path) {
    return path.empty() ? -1 : ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

}  // namespace

pid_t spawn_process(std::vector<std::string> args, const std::string& out_path, const std::string& err_path) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int out_fd = open_log(out_path);
    int err_fd = err_path == out_path ? -1 : open_log(err_path);
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = ::fork();
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec (ZeroMQ threads did not come along).
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (out_fd >= 0) ::dup2(out_fd, 1);
        if (err_fd >= 0) ::dup2(err_fd, 2);
        if (err_fd < 0 && out_fd >= 0 && !err_path.empty()) ::dup2(out_fd, 2);  // one file for both
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    if (out_fd >= 0) ::close(out_fd);
    if (err_fd >= 0) ::close(err_fd);
    return pid;
}

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    }
    return "exited with status " + std::to_string(WEXITSTATUS(status));
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

}  // namespace taskmill::host::detail
