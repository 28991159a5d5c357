// The supervisor: worker processes, their restarts, and DEAD notices.
#include <taskmill/host/supervisor.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <vector>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <taskmill/host/worker.hpp>
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

#include "plugin_watch.hpp"
#include "running_file.hpp"
#include "security.hpp"

namespace taskmill::host {
namespace {

using steady = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr milliseconds backoff_min{100};
constexpr milliseconds backoff_max{5000};
constexpr milliseconds stable_after{30000};  // a worker that ran this long resets its backoff
constexpr milliseconds settle_time{500};     // plugins folder quiet this long = files complete
constexpr milliseconds check_timeout{10000};

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

// fork + exec of `args` with stdout/stderr to `log_path` (inherited if empty).
pid_t spawn_process(std::vector<std::string> args, const std::string& log_path) {
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    int log_fd = log_path.empty() ? -1 : ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    sigset_t none;
    sigemptyset(&none);
    pid_t pid = ::fork();
    if (pid == 0) {
        // Child: only async-signal-safe calls until exec (ZeroMQ threads did not come along).
        ::prctl(PR_SET_PDEATHSIG, SIGTERM);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        if (log_fd >= 0) {
            ::dup2(log_fd, 1);
            ::dup2(log_fd, 2);
        }
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    if (log_fd >= 0) ::close(log_fd);
    return pid;
}

std::string read_all(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string text = ss.str();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    return text;
}

// A reload in progress: the new folder state and its --check children.
struct reload_state {
    detail::plugin_watch::snapshot snap;
    std::map<pid_t, std::string> checks;  // pid -> file being checked
    std::vector<std::string> failures;
    steady::time_point deadline;
};

class supervisor {
public:
    supervisor(const options& o, std::shared_ptr<spdlog::logger> log, int signal_fd)
        : o_(o),
          log_(std::move(log)),
          signal_fd_(signal_fd),
          slots_(o.processes),
          watch_(o.plugins_dir),
          generation_(o.generation) {}
    int run();

private:
    void start(worker_slot& w);
    void on_plugins_settled();
    void on_check_exit(pid_t pid, int status);
    void apply_reload(const detail::plugin_watch::snapshot& snap);
    void on_retired_exit(pid_t pid, int status);
    void on_signal();
    void reap();
    void on_exit(worker_slot& w, int status);
    void send_dead(pid_t pid, const std::string& why);
    void forget_worker(pid_t pid);
    void report_plugins(const std::string& what, std::vector<std::string> files, const std::string& error);
    void begin_stop(int sig);
    milliseconds next_timeout() const;
    bool all_stopped() const {
        if (!retiring_.empty()) return false;
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
    detail::plugin_watch watch_;
    detail::plugin_watch::snapshot current_;  // the folder the running generation loaded
    std::optional<steady::time_point> settle_at_;
    std::optional<reload_state> reload_;
    uint32_t generation_;
    std::vector<pid_t> retiring_;  // old generation, draining
    uint64_t check_counter_ = 0;
};

void supervisor::start(worker_slot& w) {
    pid_t pid = spawn_process(worker_argv(o_, exe_, generation_), {});
    if (pid < 0) {
        log_->error("fork failed: {}; retrying in {} ms", std::strerror(errno), w.backoff.count());
        w.restart_at = steady::now() + w.backoff;
        return;
    }
    w.pid = pid;
    w.started = steady::now();
    w.restart_at.reset();
    log_->info("worker started pid={} id={}:{} generation={}", pid, host_, pid, generation_);
}

// Tells the broker the plugin set changed or a change was refused; the
// broker publishes it as a plugin.* event for operators and dashboards.
void supervisor::report_plugins(const std::string& what, std::vector<std::string> files, const std::string& error) {
    protocol::control c;
    c.id = host_;
    c.note = what;
    c.ids = std::move(files);
    c.slots = generation_;
    c.error = error;
    if (!protocol::send(socket_, {}, protocol::cmd::plugins, protocol::encode(c))) {
        log_->warn("could not queue PLUGINS {} report", what);
    }
}

// One DEAD per dead worker, so `running` belongs to the one id in `ids`:
// the tasks its slots were running, read from the file the worker kept
// (present, maybe empty, whenever that file was readable).
void supervisor::send_dead(pid_t pid, const std::string& why) {
    protocol::control c;
    c.ids.push_back(host_ + ":" + std::to_string(pid));
    c.note = why;
    c.running = detail::read_running_file(detail::running_file_path(o_.run_dir, pid));
    if (c.running) {
        std::string tasks;
        for (const auto& id : *c.running) tasks += (tasks.empty() ? "" : ",") + id;
        log_->info("worker pid={} died running {} task(s) [{}]", pid, c.running->size(), tasks);
    }
    if (!protocol::send(socket_, {}, protocol::cmd::dead, protocol::encode(c))) {
        log_->warn("could not queue DEAD for pid={}", pid);
    }
}

// The worker's private folder (plugin copies, its running file) goes once
// the worker is gone and its DEAD, if any, is built.
void supervisor::forget_worker(pid_t pid) {
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(o_.run_dir) / ("worker-" + std::to_string(pid)), ec);
}

void supervisor::on_exit(worker_slot& w, int status) {
    auto ran = steady::now() - w.started;
    bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    std::string why = describe_exit(status);
    pid_t pid = w.pid;
    w.pid = 0;
    if (clean) {
        // A drained worker said BYE itself: recycling, not a crash.
        log_->info("worker exited pid={} reason=\"{}\" ({})", pid, why, stopping_ ? "stopped" : "recycled");
    } else {
        log_->warn("worker exited pid={} reason=\"{}\"", pid, why);
        send_dead(pid, why);
    }
    forget_worker(pid);
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
        if (reload_ && reload_->checks.count(pid) != 0) on_check_exit(pid, status);
        if (std::find(retiring_.begin(), retiring_.end(), pid) != retiring_.end()) on_retired_exit(pid, status);
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
    for (pid_t pid : retiring_) ::kill(pid, SIGTERM);
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
    if (settle_at_) until = std::min(until, *settle_at_ - now);
    if (reload_) until = std::min(until, reload_->deadline - now);
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(until) + milliseconds(1));
}

// ---- hot reload ----

void supervisor::on_plugins_settled() {
    settle_at_.reset();
    if (reload_) {  // a reload is being checked: look again once it is decided
        settle_at_ = steady::now() + settle_time;
        return;
    }
    auto snap = watch_.scan();
    if (snap == current_) return;
    auto changed = detail::plugin_watch::changed(current_, snap);
    reload_ = reload_state{snap, {}, {}, steady::now() + check_timeout};
    for (const auto& file : changed) {
        // Checked in a child: a library that crashes on load cannot hurt the supervisor.
        std::string log_path = o_.run_dir + "/check-" + std::to_string(++check_counter_) + ".log";
        pid_t pid = spawn_process(check_argv(o_, exe_, (watch_.dir() / file).string()), log_path);
        if (pid > 0) reload_->checks[pid] = file + "\n" + log_path;
        else reload_->failures.push_back(file + ": cannot start the check");
    }
    log_->info("plugins folder changed: checking {} file(s)", reload_->checks.size());
    if (reload_->checks.empty()) on_check_exit(0, 0);
}

void supervisor::on_check_exit(pid_t pid, int status) {
    if (auto it = reload_->checks.find(pid); it != reload_->checks.end()) {
        auto nl = it->second.find('\n');
        std::string file = it->second.substr(0, nl);
        std::string log_path = it->second.substr(nl + 1);
        if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
            std::string why = read_all(log_path);
            reload_->failures.push_back(file + ": " + (why.empty() ? describe_exit(status) : why));
        }
        std::error_code ec;
        std::filesystem::remove(log_path, ec);
        reload_->checks.erase(it);
    }
    if (!reload_->checks.empty()) return;
    auto done = std::move(*reload_);
    reload_.reset();
    if (!done.failures.empty()) {
        for (const auto& f : done.failures) log_->error("plugin refused: {}", f);
        log_->error("reload skipped: {} plugin(s) failed validation; generation {} keeps serving", done.failures.size(),
                    generation_);
        std::string why;
        for (const auto& f : done.failures) why += (why.empty() ? "" : "; ") + f;
        report_plugins("refused", {}, why);
        return;
    }
    apply_reload(done.snap);
}

void supervisor::apply_reload(const detail::plugin_watch::snapshot& snap) {
    current_ = snap;
    ++generation_;
    log_->info("plugins changed: starting generation {}, draining the old one", generation_);
    std::vector<std::string> files;
    for (const auto& [file, stamp] : snap) files.push_back(file);
    report_plugins("reloaded", std::move(files), {});
    for (auto& w : slots_) {
        if (w.pid != 0) {
            ::kill(w.pid, SIGTERM);  // drains: CREDIT 0, finishes its tasks, BYE
            retiring_.push_back(w.pid);
        }
        w = worker_slot{};
        start(w);
    }
}

void supervisor::on_retired_exit(pid_t pid, int status) {
    retiring_.erase(std::find(retiring_.begin(), retiring_.end(), pid));
    std::string why = describe_exit(status);
    log_->info("worker exited pid={} reason=\"{}\" (old generation)", pid, why);
    if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0)) send_dead(pid, why);
    forget_worker(pid);
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
    socket_.set(zmq::sockopt::routing_id, supervisor_id(::getpid()));  // the workers name it in HELLO
    socket_.set(zmq::sockopt::linger, 1000);
    socket_.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(protocol::frame_limit(protocol::default_max_body)));
    if (auto ok = apply_curve(socket_, o_); !ok) {
        log_->critical("{}", ok.error().message);
        return 2;
    }
    socket_.connect(o_.broker);
    current_ = watch_.scan();
    if (watch_.fd() < 0 && o_.watch) log_->warn("cannot watch {}: hot reload is off", o_.plugins_dir);
    for (auto& w : slots_) start(w);
    log_->info("host ready workers={} concurrency={} prefetch={} broker={} plugins={}", o_.processes, o_.concurrency,
               prefetch_text(o_), o_.broker, o_.plugins_dir);
    while (!(stopping_ && all_stopped())) {
        zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                                   {nullptr, signal_fd_, ZMQ_POLLIN, 0},
                                   {nullptr, watch_.fd(), ZMQ_POLLIN, 0}};
        zmq::poll(items, o_.watch && watch_.fd() >= 0 ? 3 : 2, next_timeout());
        if ((items[2].revents & ZMQ_POLLIN) != 0 && watch_.drain_events() && !stopping_) {
            settle_at_ = steady::now() + settle_time;  // every event pushes it out: wait for quiet
        }
        if ((items[0].revents & ZMQ_POLLIN) != 0) {
            while (protocol::try_recv(socket_, false)) {
            }  // the broker has nothing to tell the supervisor; keep the pipe empty
        }
        if ((items[1].revents & ZMQ_POLLIN) != 0) on_signal();
        auto now = steady::now();
        if (settle_at_ && now >= *settle_at_) on_plugins_settled();
        if (reload_ && now >= reload_->deadline) {
            for (const auto& [pid, file] : reload_->checks) ::kill(pid, SIGKILL);  // a hung check is a failed one
            reload_->deadline = now + check_timeout;
        }
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
