// The supervisor's plugin sets: judging the folder, building generations,
// retiring old workers, giving up on a generation that cannot start.
#include <signal.h>

#include <algorithm>
#include <filesystem>

#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/messages.hpp>

#include "../security.hpp"
#include "../worker_marker.hpp"
#include "supervisor_loop.hpp"

namespace taskmill::host::detail {
namespace {

std::string join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& i : items) out += (out.empty() ? "" : ", ") + i;
    return out;
}

}  // namespace

// Tells the broker the plugin set changed or a file was refused; the
// broker publishes it as a plugin.* event for operators and dashboards.
void supervisor::report_plugins(const std::string& what, std::vector<std::string> files, const std::string& error) {
    protocol::control c;
    c.id = host_;
    c.note = what;
    c.ids = std::move(files);
    c.slots = current_.value_or(next_generation_);
    c.error = error;
    if (!tell_brokers(protocol::cmd::plugins, protocol::encode(c))) {
        log_->warn("could not queue PLUGINS {} report", what);
    }
}

// Judges every file that is new or changed since the last judgement.
void supervisor::begin_judging() {
    auto snap = watch_.scan();
    if (current_ && snap == judged_) return;
    if (std::error_code ec; !std::filesystem::is_directory(o_.plugins_dir, ec)) {
        log_->warn("plugins folder {} is not a readable folder: no plugins are loaded", o_.plugins_dir);
    }
    if (o_.strict_modes) {
        if (auto why = strict_mode_problem(o_.plugins_dir); !why.empty()) {
            log_->error(
                "plugin refused: {}: plugins folder refused (strict modes): {}; fix the permissions or start "
                "with --strict-modes=false",
                o_.plugins_dir, why);
            snap.clear();  // nothing is loaded from it
            judged_.clear();
            pending_ = snap;
            return;
        }
    }
    std::size_t n = 0;
    for (const auto& file : plugin_watch::changed(judged_, snap)) {
        judge_->submit(file, snap.at(file));
        ++n;
    }
    if (current_) log_->info("plugins folder changed: checking {} file(s)", n);
    pending_ = std::move(snap);
    judge_->pump(steady::now());
}

void supervisor::on_plugins_settled() {
    settle_at_.reset();
    if (pending_) {  // a judgement is under way: look again once it is decided
        settle_at_ = steady::now() + settle_time;
        return;
    }
    begin_judging();
}

// Every verdict is in: the accepted files replace their previous versions,
// each refused one is reported by name and its previous version, if any,
// stays. A new generation starts if that changed the set.
void supervisor::finish_judging() {
    plugin_watch::snapshot snap = std::move(*pending_);
    pending_.reset();
    generation_sources sources;
    if (const generation* g = current()) sources = sources_of(*g);
    std::erase_if(sources, [&](const auto& s) { return snap.count(s.first) == 0; });
    auto verdicts = judge_->take();
    std::size_t refused = 0;
    for (const auto& v : verdicts) {
        if (v.accepted) {
            sources[v.file] = {v.when, v.copy};
            continue;
        }
        ++refused;
        bool kept = sources.count(v.file) != 0;
        log_->error("plugin refused: {}: {}{}", v.file, v.reason, kept ? " (its previous version keeps serving)" : "");
        report_plugins("refused", {v.file}, v.file + ": " + v.reason);
    }
    figures_->plugins_judged(verdicts.size() - refused, refused);
    judged_ = std::move(snap);
    bool same = current_ && sources.size() == current()->files.size() &&
                std::all_of(sources.begin(), sources.end(), [&](const auto& s) {
                    auto it = current()->files.find(s.first);
                    return it != current()->files.end() && it->second == s.second.when;
                });
    if (same && refused > 0) {
        log_->error("reload skipped: {} plugin file(s) refused, nothing else changed; generation {} keeps serving",
                    refused, *current_);
    }
    if (!same) start_generation(sources);
    for (const auto& v : verdicts) plugin_judge::discard(v);
}

// Builds the next generation from `sources`, retires the workers of the
// current one and starts the new ones.
bool supervisor::start_generation(const generation_sources& sources) {
    generation g;
    if (auto err = build_generation(g, o_.run_dir, next_generation_, sources); !err.empty()) {
        log_->error("cannot start generation {}: {}", next_generation_, err);
        remove_generation(g);
        return false;
    }
    ++next_generation_;
    const bool reload = current_.has_value();
    if (reload && current()->proven) previous_good_ = current_;
    current_ = g.number;
    std::vector<std::string> files;
    for (const auto& [file, when] : g.files) files.push_back(file);
    gens_[g.number] = std::move(g);
    if (reload) {
        log_->info("plugins changed: starting generation {}, retiring the old one", *current_);
        report_plugins("reloaded", files, {});
    }
    for (auto& w : slots_) {
        retire(w);
        w = worker_slot{};
        start(w);
    }
    collect_generations();
    return true;
}

// An old generation's worker: SIGUSR1 (stop taking tasks, finish the
// running ones) once it is up, else SIGTERM; it is not killed early.
void supervisor::retire(worker_slot& w) {
    if (w.pid == 0) return;
    const bool up = w.ready || worker_reached(o_.run_dir, w.pid, "ready");
    log_->info("worker pid={} generation={} retiring ({})", w.pid, w.generation, up ? "SIGUSR1" : "SIGTERM");
    ::kill(w.pid, up ? SIGUSR1 : SIGTERM);
    retiring_[w.pid] = w.generation;
}

// The current generation's workers keep failing to start. Back to the last
// generation that served, without what changed since; with none, without
// the plugin they died loading; else keep trying (with backoff).
void supervisor::give_up_on_current() {
    generation& bad = *current();
    const generation* good = previous_good_ ? &gens_.at(*previous_good_) : nullptr;
    std::vector<std::string> blamed;
    generation_sources sources;
    if (good != nullptr && good->files != bad.files) {
        blamed = differing_files(*good, bad);
        sources = sources_of(*good);
        log_->error(
            "generation {} abandoned: its workers failed to start {} times in a row; back to the plugins of "
            "generation {}; refused until they change: {}",
            bad.number, bad.failed_starts, good->number, join(blamed));
    } else if (!bad.culprit.empty() && bad.files.count(bad.culprit) != 0) {
        blamed = {bad.culprit};
        sources = sources_of(bad);
        sources.erase(bad.culprit);
        log_->error("plugin refused: {}: workers died loading it {} times in a row; starting without it", bad.culprit,
                    bad.failed_starts);
    } else {
        return;
    }
    figures_->plugins_judged(0, blamed.size());
    for (const auto& file : blamed) {
        report_plugins("refused", {file},
                       file + ": the workers of generation " + std::to_string(bad.number) + " failed to start (" +
                           (bad.culprit.empty() ? "no plugin named" : "last loading " + bad.culprit) + ")");
    }
    start_generation(sources);
}

// A generation folder goes once no worker uses it, unless it is the
// current or the last good one (the way back).
void supervisor::collect_generations() {
    std::erase_if(gens_, [&](const auto& entry) {
        uint32_t n = entry.first;
        if (n == current_ || n == previous_good_) return false;
        for (const auto& w : slots_) {
            if (w.pid != 0 && w.generation == n) return false;
        }
        for (const auto& [pid, gen] : retiring_) {
            if (gen == n) return false;
        }
        remove_generation(entry.second);
        return true;
    });
}

}  // namespace taskmill::host::detail
