// The supervisor: worker processes, their restarts, and DEAD notices.
#include <taskmill/host/supervisor.hpp>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <optional>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <taskmill/host/worker.hpp>
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

namespace taskmill::host {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds backoff_min{100};
constexpr milliseconds backoff_max{5000};
constexpr milliseconds stable_after{30000};  // a worker that ran this long resets its backoff

struct worker_slot {
    pid_t pid = 0;
    steady::time_point started{};
    milliseconds backoff = backoff_min;
    std::optional<steady::time_point> restart_at;
};

std::string describe_exit(int status) {
    if (WIFSIGNALED(status)) {
        int sig = WTERMSIG(status);
        return "killed by signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
    }
    return "exited with status " + std::to_string(WEXITSTATUS(status));
}

class supervisor {
public:
    supervisor(const options& o, std::shared_ptr<spdlog::logger> log, int signal_fd)
        : o_(o), log_(std::move(log)), signal_fd_(signal_fd), slots_(o.processes) {}
    int run();

private:
    void start(worker_slot& w);
    void on_signal();
    void reap();
    void on_exit(worker_slot& w, int status);
    void send_dead(pid_t pid, const std::string& why);
    void begin_stop(int sig);
    milliseconds next_timeout() const;
    bool all_stopped() const {
        for (const auto& w : slots_) {
            if (w.pid != 0) return false;
        }
        return true;
    }

    const options& o_;
    std::shared_ptr<spdlog::logger> log_;
    int signal_fd_;
    std::vector<worker_slot> slots_;
    std::string exe_;
    std::string host_;
    zmq::context_t zctx_{1};
    zmq::socket_t socket_{zctx_, zmq::socket_type::dealer};
    bool stopping_ = false;
    std::optional<steady::time_point> kill_at_;
};

void supervisor::start(worker_slot& w) {
    auto args = worker_argv(o_, exe_, o_.generation);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = ::fork();
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec (ZeroMQ threads did not come along).
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        ::execv(exe_.c_str(), argv.data());
        ::_exit(127);
    }
    if (pid < 0) {
        log_->error("fork failed: {}; retrying in {} ms", std::strerror(errno), w.backoff.count());
        w.restart_at = steady::now() + w.backoff;
        return;
    }
    w.pid = pid;
    w.started = steady::now();
    w.restart_at.reset();
    log_->info("worker started pid={} id={}:{}", pid, host_, pid);
}

void supervisor::send_dead(pid_t pid, const std::string& why) {
    protocol::control c;
    c.ids.push_back(host_ + ":" + std::to_string(pid));
    c.note = why;
    if (!protocol::send(socket_, {}, protocol::cmd::dead, protocol::encode(c))) {
        log_->warn("could not queue DEAD for pid={}", pid);
    }
}

void supervisor::on_exit(worker_slot& w, int status) {
    auto ran = steady::now() - w.started;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::string why = describe_exit(status);
    pid_t pid = w.pid;
    w.pid = 0;
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(o_.run_dir) / ("worker-" + std::to_string(pid)), ec);
    if (clean) {
        // A drained worker said BYE itself: recycling, not a crash.
        log_->info("worker exited pid={} reason=\"{}\" (recycled)", pid, why);
    } else {
        log_->warn("worker exited pid={} reason=\"{}\"", pid, why);
        send_dead(pid, why);
    }
    if (stopping_) return;
    if (clean) {
        w.backoff = backoff_min;
        start(w);
        return;
    }
    if (ran >= stable_after) w.backoff = backoff_min;
    w.restart_at = steady::now() + w.backoff;
    log_->info("worker restart in {} ms", w.backoff.count());
    w.backoff = std::min(w.backoff * 2, backoff_max);
}

void supervisor::reap() {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        for (auto& w : slots_) {
            if (w.pid == pid) on_exit(w, status);
        }
    }
}

void supervisor::begin_stop(int sig) {
    if (stopping_) return;
    stopping_ = true;
    log_->info("stopping on signal {}: sending SIGTERM to the workers", sig);
    for (auto& w : slots_) {
        w.restart_at.reset();
        if (w.pid != 0) ::kill(w.pid, SIGTERM);
    }
    kill_at_ = steady::now() + milliseconds(o_.grace_ms) + milliseconds(1000);
}

void supervisor::on_signal() {
    signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        if (info.ssi_signo == SIGCHLD) {
            reap();
        } else {
            begin_stop(static_cast<int>(info.ssi_signo));
        }
    }
    reap();  // SIGCHLDs coalesce: collect every exited child each time
}

milliseconds supervisor::next_timeout() const {
    auto now = steady::now();
    steady::duration until = std::chrono::hours(1);
    for (const auto& w : slots_) {
        if (w.restart_at) until = std::min(until, *w.restart_at - now);
    }
    if (kill_at_) until = std::min(until, *kill_at_ - now);
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(until) + milliseconds(1));
}

int supervisor::run() {
    std::error_code ec;
    exe_ = std::filesystem::read_symlink("/proc/self/exe", ec).string();
    if (ec) {
        log_->critical("cannot resolve /proc/self/exe: {}", ec.message());
        return 1;
    }
    char buf[256] = {};
    host_ = ::gethostname(buf, sizeof buf - 1) == 0 ? buf : "localhost";
    std::filesystem::create_directories(o_.run_dir, ec);
    socket_.set(zmq::sockopt::routing_id, host_ + ":" + std::to_string(::getpid()) + ":supervisor");
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.connect(o_.broker);
    for (auto& w : slots_) start(w);
    log_->info("host ready workers={} concurrency={} broker={} plugins={}", o_.processes, o_.concurrency, o_.broker,
               o_.plugins_dir);
    while (!(stopping_ && all_stopped())) {
        zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0}, {nullptr, signal_fd_, ZMQ_POLLIN, 0}};
        zmq::poll(items, 2, next_timeout());
        if ((items[0].revents & ZMQ_POLLIN) != 0) {
            while (protocol::try_recv(socket_, false)) {
            }  // the broker has nothing to tell the supervisor; keep the pipe empty
        }
        if ((items[1].revents & ZMQ_POLLIN) != 0) on_signal();
        auto now = steady::now();
        for (auto& w : slots_) {
            if (w.restart_at && now >= *w.restart_at && !stopping_) start(w);
        }
        if (kill_at_ && now >= *kill_at_) {
            for (auto& w : slots_) {
                if (w.pid != 0) {
                    log_->warn("worker pid={} did not stop in time; SIGKILL", w.pid);
                    ::kill(w.pid, SIGKILL);
                }
            }
            kill_at_ = now + milliseconds(1000);
        }
    }
    log_->info("host stopped");
    socket_.close();
    zctx_.close();
    std::filesystem::remove(o_.run_dir, ec);  // only if empty
    return 0;
}

}  // namespace

int run_supervisor(const options& o) {
    auto log = spdlog::stderr_color_mt("host");
    log->set_level(spdlog::level::from_str(o.log_level));
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    // Blocked before any thread exists (ZeroMQ's included), so only the signalfd sees them.
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sfd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) {
        log->critical("signalfd failed: {}", std::strerror(errno));
        return 1;
    }
    try {
        supervisor s(o, log, sfd);
        int rc = s.run();
        ::close(sfd);
        return rc;
    } catch (const std::exception& e) {
        log->critical("host failed: {}", e.what());
        return 1;
    }
}

}  // namespace taskmill::host
