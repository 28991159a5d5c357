// The supervisor's workers: starts, readiness, exits, restarts, stop.
#include <signal.h>
#include <sys/wait.h>

#include <cstring>
#include <filesystem>

#include <taskmill/host/worker.hpp>
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

#include "../running_file.hpp"
#include "../worker_marker.hpp"
#include "child_process.hpp"
#include "supervisor_loop.hpp"

namespace taskmill::host::detail {

void supervisor::start(worker_slot& w) {
    const generation& g = gens_.at(*current_);
    options wo = o_;
    wo.plugins_dir = g.dir.string();  // the judged copies, not the watched folder
    pid_t pid = spawn_process(worker_argv(wo, exe_, g.number));
    if (pid < 0) {
        log_->error("fork failed: {}; retrying in {} ms", std::strerror(errno), w.backoff.count());
        w.restart_at = steady::now() + w.backoff;
        return;
    }
    figures_->worker_started(pid, w.started != steady::time_point{});
    w.pid = pid;
    w.generation = g.number;
    w.ready = false;
    w.started = steady::now();
    w.restart_at.reset();
    log_->info("worker started pid={} id={}:{} generation={}", pid, host_, pid, g.number);
}

// A worker is ready once it wrote its `ready` marker (plugins loaded, HELLO
// sent); its generation has then proven it can start.
void supervisor::poll_ready() {
    for (auto& w : slots_) {
        if (w.pid == 0 || w.ready || !worker_reached(o_.run_dir, w.pid, "ready")) continue;
        w.ready = true;
        log_->info("worker ready pid={} generation={}", w.pid, w.generation);
        if (auto it = gens_.find(w.generation); it != gens_.end()) {
            it->second.proven = true;
            it->second.failed_starts = 0;
        }
    }
}

// One DEAD per dead worker, so `running` belongs to the one id in `ids`:
// the tasks its slots were running, read from the file the worker kept
// (present, maybe empty, whenever that file was readable).
void supervisor::send_dead(pid_t pid, const std::string& why) {
    protocol::control c;
    c.ids.push_back(host_ + ":" + std::to_string(pid));
    c.note = why;
    c.running = read_running_file(running_file_path(o_.run_dir, pid));
    if (c.running) {
        std::string tasks;
        for (const auto& id : *c.running) tasks += (tasks.empty() ? "" : ",") + id;
        log_->info("worker pid={} died running {} task(s) [{}]", pid, c.running->size(), tasks);
    }
    if (!tell_brokers(protocol::cmd::dead, protocol::encode(c))) {
        log_->warn("could not queue DEAD for pid={}", pid);
    }
}

// The worker's private folder (plugin copies, markers, its running file)
// goes once the worker is gone and its DEAD, if any, is built.
void supervisor::forget_worker(pid_t pid, bool crashed) {
    figures_->worker_gone(pid, crashed);  // its last figures, before the folder goes
    std::error_code ec;
    std::filesystem::remove_all(std::filesystem::path(o_.run_dir) / ("worker-" + std::to_string(pid)), ec);
}

void supervisor::on_exit(worker_slot& w, int status) {
    const pid_t pid = w.pid;
    const bool ready = w.ready || worker_reached(o_.run_dir, pid, "ready");
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    const auto ran = steady::now() - w.started;
    std::string why = describe_exit(status);
    w.pid = 0;
    w.ready = false;
    if ((ready || stopping_) && clean) {
        // A drained worker said BYE itself: recycling, not a crash.
        log_->info("worker exited pid={} reason=\"{}\" ({})", pid, why, stopping_ ? "stopped" : "recycled");
        forget_worker(pid, false);
        if (stopping_) return;
        w.backoff = backoff_min;
        start(w);
        return;
    }
    if (!ready && !stopping_) {
        on_failed_start(w, pid, why);
        return;
    }
    log_->warn("worker exited pid={} reason=\"{}\"", pid, why);
    send_dead(pid, why);
    forget_worker(pid, true);
    if (stopping_) return;
    if (ran >= stable_after) w.backoff = backoff_min;
    w.restart_at = steady::now() + w.backoff;
    log_->info("worker restart in {} ms", w.backoff.count());
    w.backoff = std::min(w.backoff * 2, backoff_max);
}

// A worker that ended, however, before it got ready. Named after the
// plugin it was loading when it died before loading them all.
void supervisor::on_failed_start(worker_slot& w, pid_t pid, const std::string& why) {
    std::string culprit = worker_reached(o_.run_dir, pid, "loaded") ? "" : last_plugin_copied(o_.run_dir, pid);
    std::string what = why + (culprit.empty() ? "" : " while loading plugin " + culprit);
    log_->warn("worker failed to start pid={} generation={} reason=\"{}\"; restart in {} ms", pid, w.generation, what,
               w.backoff.count());
    send_dead(pid, what);  // it may have said HELLO: the broker drops what it does not know
    forget_worker(pid, true);
    w.restart_at = steady::now() + w.backoff;
    w.backoff = std::min(w.backoff * 2, backoff_max);
    auto it = gens_.find(w.generation);
    if (it == gens_.end() || w.generation != current_) return;
    it->second.culprit = culprit;
    if (++it->second.failed_starts >= max_failed_starts && !it->second.proven) give_up_on_current();
}

void supervisor::on_retired_exit(pid_t pid, int status) {
    retiring_.erase(pid);
    std::string why = describe_exit(status);
    log_->info("worker exited pid={} reason=\"{}\" (old generation)", pid, why);
    const bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!clean) send_dead(pid, why);
    forget_worker(pid, !clean);
}

void supervisor::reap() {
    int status = 0;
    pid_t pid = 0;
    while ((pid = ::waitpid(-1, &status, WNOHANG)) > 0) {
        if (judge_->owns(pid)) {
            judge_->on_exit(pid, status);
            continue;
        }
        if (retiring_.count(pid) != 0) {
            on_retired_exit(pid, status);
            collect_generations();
            continue;
        }
        for (auto& w : slots_) {
            if (w.pid == pid) on_exit(w, status);
        }
        collect_generations();
    }
}

// SIGTERM for every worker, retiring ones included: stop within --grace-ms.
void supervisor::begin_stop(int sig) {
    if (stopping_) return;
    stopping_ = true;
    log_->info("stopping on signal {}: sending SIGTERM to the workers", sig);
    for (auto& w : slots_) {
        w.restart_at.reset();
        if (w.pid != 0) ::kill(w.pid, SIGTERM);
    }
    for (const auto& [pid, gen] : retiring_) ::kill(pid, SIGTERM);
    judge_->kill_all();
    kill_at_ = steady::now() + milliseconds(o_.grace_ms) + milliseconds(1000);
}

bool supervisor::all_stopped() const {
    if (!retiring_.empty() || judge_->has_running()) return false;
    for (const auto& w : slots_) {
        if (w.pid != 0) return false;
    }
    return true;
}

}  // namespace taskmill::host::detail
