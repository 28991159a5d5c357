// Schedules run by the broker (see schedule_engine.hpp).
#include "schedule/schedule_engine.hpp"
#include "schedule/schedule_json.hpp"

#include <nlohmann/json.hpp>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/wire.hpp>

namespace taskmill::broker {

void schedule_engine::recover() {
    schedules_.clear();
    const int64_t now = ops_.now();
    for (const auto& c : configs_) {
        schedule_state s;
        try {
            s = make_schedule(c);
        } catch (const std::exception& e) {
            throw std::runtime_error((c.where.empty() ? "" : c.where + ": ") + e.what());
        }
        std::optional<std::pair<int64_t, int64_t>> stored;
        auto raw = ops_.get(table::schedules, c.name);
        if (raw) {
            stored = decode_schedule_meta(*raw);
        }
        restore_schedule(s, stored, now);
        if (!stored) {
            save(s);
        } else {
            s.misfires = decode_schedule_misfires(*raw);
        }
        s.paused = stored_pause(c.name);
        log_.info("schedule={} handler={} {}={} next_ms={}{}", c.name, c.handler, c.cron.empty() ? "every" : "cron",
                  c.cron.empty() ? c.every : c.cron, s.next_ms,
                  s.paused               ? " (paused: SCHEDULE_PAUSE; resume to fire again)"
                  : schedule_due(s, now) ? " (missed while down: fires once now)"
                                         : "");
        if (auto why = ops_.unoffered(c.handler)) {
            log_.warn("schedule={} {}: its tasks will wait until one does", c.name, *why);
        }
        schedules_.push_back(std::move(s));
    }
}

void schedule_engine::save(const schedule_state& s) { ops_.put(table::schedules, s.cfg.name, encode_schedule_meta(s)); }

void schedule_engine::fire_due() {
    const int64_t now = ops_.now();
    for (auto& s : schedules_) {
        if (s.paused || !schedule_due(s, now)) {
            continue;
        }
        if (auto why = ops_.new_work_refused()) {
            // Skipped, not postponed: a due schedule left due would wake the
            // loop at once, again and again.
            log_.warn("schedule={} fire skipped: {}", s.cfg.name, *why);
            ops_.count("schedule_skips");
            ++s.misfires;
            schedule_fired(s, now);
            save(s);
            continue;
        }
        auto r = ops_.submit(schedule_task(s));
        ops_.count("schedule_fires");
        int64_t planned = s.next_ms;
        schedule_fired(s, now);
        save(s);
        const std::string task = to_hex(r.id);
        log_.info("task={} schedule={} fired planned_ms={} next_ms={}", task, s.cfg.name, planned, s.next_ms);
        ops_.events().emit("schedule.fired", [&](event& e) {
            e.add("schedule", s.cfg.name).add("task", task).add("planned_ms", planned).add("next_ms", s.next_ms);
        });
    }
}

std::optional<int64_t> schedule_engine::next_fire_ms() const {
    std::optional<int64_t> best;
    for (const auto& s : schedules_) {
        if (!s.paused && s.next_ms > 0 && (!best || s.next_ms < *best)) {
            best = s.next_ms;
        }
    }
    return best;
}

nlohmann::json schedule_json(const schedule_state& s) {
    return {{"name", s.cfg.name},
            {"handler", s.cfg.handler},
            {"queue", s.cfg.queue.empty() ? "default" : s.cfg.queue},
            {"every", s.cfg.every.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.cfg.every)},
            {"cron", s.cfg.cron.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.cfg.cron)},
            {"timezone", s.cron ? nlohmann::json(s.cron->tz_name) : nlohmann::json(nullptr)},
            {"last_fire_ms", s.last_fire_ms},
            {"next_fire_ms", s.paused ? 0 : s.next_ms},
            {"paused", s.paused},
            {"misfires", s.misfires}};
}

void schedule_engine::list(const std::string& peer, const protocol::request& rq) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : schedules_) {
        list.push_back(schedule_json(s));
    }
    protocol::reply rep;
    rep.req = rq.req;
    rep.data = protocol::json_to_msgpack(nlohmann::json{{"schedules", list}});
    ops_.reply(peer, protocol::cmd::schedules, rep);
}

}  // namespace taskmill::broker
