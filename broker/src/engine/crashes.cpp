// Crashes: which task a dead worker's crash is charged to. A crash is
// charged only when it is unambiguous: the worker was running exactly one
// task. When it was running several, none is charged; each becomes a
// suspect and runs alone from then on (dispatch gives it an idle worker and
// that worker nothing else meanwhile), so its next crash, if any, is its
// own. A healthy task is thus never failed as poison for a neighbour's
// crashes, and max_crashes counts exact crashes.
#include <algorithm>
#include <set>

#include "engine/engine.hpp"

namespace taskmill::broker {

std::vector<engine::blame> engine::blame_crash(const std::vector<task_id>& held, uint32_t concurrency,
                                               const std::vector<std::string>* running) const {
    std::vector<blame> out(held.size(), blame::none);
    std::vector<std::size_t> candidates;
    // The supervisor names the tasks its slots were running (read from a
    // trace the worker leaves in a shared file mapping). Without that list,
    // or with an empty one (a task that kills its process as it starts may
    // leave no trace): a worker starts its tasks in the order it received
    // them, at most `concurrency` at a time, so the ones that may have been
    // running are its `concurrency` oldest; the rest waited in its prefetch
    // queue.
    if (running != nullptr && !running->empty()) {
        std::set<std::string, std::less<>> named(running->begin(), running->end());
        for (std::size_t i = 0; i < held.size(); ++i) {
            if (named.count(to_hex(held[i])) > 0) {
                candidates.push_back(i);
            }
        }
    } else {
        for (std::size_t i = 0; i < held.size() && i < std::max<uint32_t>(concurrency, 1); ++i) {
            candidates.push_back(i);
        }
    }
    const blame b = candidates.size() == 1 ? blame::crash : blame::suspect;
    for (auto i : candidates) {
        out[i] = b;
    }
    return out;
}

bool engine::charge(task_record& r, blame b) {
    if (b == blame::crash) {
        ++r.crashes;
        count("crashes");
        return r.crashes >= cfg_.max_crashes;
    }
    if (b == blame::suspect) {
        ++r.suspect_crashes;
        count("suspect_crashes");
    }
    return false;
}

std::string engine::poison_error(const task_record& r) const {
    std::string out = "poison: crashed its worker " + std::to_string(r.crashes) + " time" +
                      (r.crashes == 1 ? "" : "s") + " (max-crashes " + std::to_string(cfg_.max_crashes) + ")";
    if (r.suspect_crashes > 0) {
        out += "; it was also running in " + std::to_string(r.suspect_crashes) + " worker crash" +
               (r.suspect_crashes == 1 ? "" : "es") + " shared with other tasks (not counted)";
    }
    return out;
}

void engine::remember_departure(const worker& w, const std::vector<task_id>& held, uint32_t concurrency) {
    std::erase_if(departed_, [&](const auto& d) { return now_ - d.second.at_ms > cfg_.liveness_ms; });
    if (w.info.supervisor.empty() || held.empty()) {
        return;  // no DEAD can follow, or nothing to charge
    }
    departed_[w.id] = departure{w.info.supervisor, w.user_id, held, concurrency, now_};
}

bool engine::charge_departed(const protocol::incoming& in, const std::string& worker_id,
                             const std::vector<std::string>* running) {
    auto it = departed_.find(worker_id);
    if (it == departed_.end() || it->second.supervisor != in.peer || it->second.user_id != in.user_id) {
        return false;
    }
    auto d = std::move(it->second);
    departed_.erase(it);
    auto blames = blame_crash(d.held, d.concurrency, running);
    for (std::size_t i = 0; i < d.held.size(); ++i) {
        if (blames[i] != blame::none) {
            charge_late(d.held[i], blames[i]);
        }
    }
    log_.info("worker={} reported dead after it left: its crash is charged", protocol::printable(worker_id));
    return true;
}

// Its attempt was already requeued uncharged; the task may be waiting,
// running elsewhere, or over.
void engine::charge_late(const task_id& id, blame b) {
    auto r = load(id);
    if (!r || is_final(r->state)) {
        return;
    }
    const bool was_alone = r->runs_alone();
    const bool poison = charge(*r, b);
    if (poison && r->state != task_state::running) {
        unqueue(*r);
        finish(*r, task_state::failed, poison_error(*r));
        return;
    }
    if (r->state == task_state::queued && r->runs_alone() != was_alone) {
        unqueue(*r);  // its ready entry moves to the tasks that run alone
        enqueue(*r, true);
        return;
    }
    save(*r);  // a running one is failed by its next crash, if any
}

}  // namespace taskmill::broker
