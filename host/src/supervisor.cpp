// The supervisor: its loop, signals, and the entry point run_supervisor.
#include <taskmill/host/supervisor.hpp>

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <vector>

#include <spdlog/spdlog.h>

#include <taskmill/host/worker.hpp>
#include <taskmill/logging/stderr_logger.hpp>
#include <taskmill/protocol/endpoints.hpp>
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

#include "security.hpp"
#include "supervisor/supervisor_loop.hpp"

namespace taskmill::host {
namespace detail {

supervisor::supervisor(const options& o, std::shared_ptr<spdlog::logger> log, int signal_fd)
    : o_(o),
      log_(std::move(log)),
      signal_fd_(signal_fd),
      slots_(o.processes),
      watch_(o.plugins_dir),
      next_generation_(o.generation) {}

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
        if (w.pid != 0 && !w.ready) until = std::min<steady::duration>(until, ready_poll);
    }
    if (kill_at_) until = std::min(until, *kill_at_ - now);
    if (settle_at_) until = std::min(until, *settle_at_ - now);
    if (auto d = judge_->next_deadline()) until = std::min(until, *d - now);
    if (pending_ && judge_->idle()) until = steady::duration::zero();  // decided: apply it now
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
    judge_ = std::make_unique<plugin_judge>(o_, exe_, o_.run_dir);
    figures_ = std::make_unique<host_metrics>(o_.run_dir, host_, o_.concurrency);
    if (!o_.metrics.empty()) {
        auto server = metrics_server::start(o_.metrics, *figures_);
        if (!server) {
            log_->critical("{}", server.error().message);
            return 2;
        }
        metrics_server_ = std::move(*server);
        log_->info("metrics on {}", metrics_server_->url());
    }
    try {
        connect_brokers();
    } catch (const std::exception& e) {
        log_->critical("{}", e.what());
        return 2;
    }
    if (watch_.fd() < 0 && o_.watch) log_->warn("cannot watch {}: hot reload is off", o_.plugins_dir);
    begin_judging();  // the workers start once the first generation is judged
    while (!(stopping_ && all_stopped())) {
        std::vector<zmq::pollitem_t> items{{nullptr, signal_fd_, ZMQ_POLLIN, 0}, {nullptr, watch_.fd(), ZMQ_POLLIN, 0}};
        if (!(o_.watch && watch_.fd() >= 0)) items.pop_back();
        const std::size_t first_broker = items.size();
        for (auto& b : brokers_) items.push_back({b.handle(), 0, ZMQ_POLLIN, 0});
        zmq::poll(items.data(), items.size(), next_timeout());
        if (first_broker == 2 && (items[1].revents & ZMQ_POLLIN) != 0 && watch_.drain_events() && !stopping_) {
            settle_at_ = steady::now() + settle_time;  // every event pushes it out: wait for quiet
        }
        for (std::size_t i = first_broker; i < items.size(); ++i) {
            if ((items[i].revents & ZMQ_POLLIN) == 0) continue;
            while (protocol::try_recv(brokers_[i - first_broker], false)) {
            }  // brokers have nothing to tell the supervisor (followers refuse); keep the pipes empty
        }
        if ((items[0].revents & ZMQ_POLLIN) != 0) on_signal();
        auto now = steady::now();
        if (stopping_) {
            settle_at_.reset();
        } else {
            judge_->pump(now);
            if (pending_ && judge_->idle()) {
                bool first = !current_;
                finish_judging();
                if (first) {
                    log_->info("host ready workers={} concurrency={} prefetch={} broker={} plugins={}", o_.processes,
                               o_.concurrency, prefetch_text(o_), o_.broker, o_.plugins_dir);
                }
            }
            if (settle_at_ && now >= *settle_at_) on_plugins_settled();
            poll_ready();
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
            for (const auto& [pid, gen] : retiring_) {
                log_->warn("worker pid={} did not stop in time; SIGKILL", pid);
                ::kill(pid, SIGKILL);
            }
            kill_at_ = now + milliseconds(1000);
        }
    }
    log_->info("host stopped");
    brokers_.clear();
    zctx_.close();
    for (const auto& v : judge_->take()) plugin_judge::discard(v);
    for (const auto& [n, g] : gens_) remove_generation(g);
    std::filesystem::remove(o_.run_dir, ec);  // only if empty
    return 0;
}

void supervisor::connect_brokers() {
    for (const auto& endpoint : protocol::split_endpoints(o_.broker)) {
        zmq::socket_t& s = brokers_.emplace_back(zctx_, zmq::socket_type::dealer);
        s.set(zmq::sockopt::routing_id, supervisor_id(::getpid()));  // the workers name it in HELLO
        s.set(zmq::sockopt::linger, 1000);
        s.set(zmq::sockopt::maxmsgsize, static_cast<int64_t>(protocol::frame_limit(protocol::default_max_body)));
        if (auto ok = apply_curve(s, o_); !ok) throw std::runtime_error(ok.error().message);
        try {
            s.connect(endpoint);
        } catch (const zmq::error_t& e) {
            throw std::runtime_error("--broker: cannot connect to '" + endpoint + "': " + e.what());
        }
    }
}

bool supervisor::tell_brokers(std::string_view command, const std::string& body) {
    bool queued = false;
    for (auto& b : brokers_) queued = protocol::send(b, {}, command, body) || queued;
    return queued;
}

}  // namespace detail

int run_supervisor(const options& o) {
    auto log = logging::make_stderr_logger("host", *logging::parse_log_format(o.log_format));
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
        detail::supervisor s(o, log, sfd);
        int rc = s.run();
        ::close(sfd);
        return rc;
    } catch (const std::exception& e) {
        log->critical("host failed: {}", e.what());
        return 1;
    }
}

}  // namespace taskmill::host
