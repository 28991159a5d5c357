// Schedules inside the engine: restoring their fire times at start, firing
// due ones as ordinary tasks (tag "schedule:NAME"), and SCHEDULES.
#include <nlohmann/json.hpp>

#include "engine/engine.hpp"

namespace taskmill::broker {

void engine::recover_schedules() {
    schedules_.clear();
    for (const auto& c : cfg_.schedules) {
        schedule_state s;
        try {
            s = make_schedule(c);
        } catch (const std::exception& e) {
            throw std::runtime_error((c.where.empty() ? "" : c.where + ": ") + e.what());
        }
        std::optional<std::pair<int64_t, int64_t>> stored;
        if (auto raw = txn_->get(table::meta, schedule_meta_key(c.name))) {
            stored = decode_schedule_meta(*raw);
        }
        restore_schedule(s, stored, now_);
        if (!stored) {
            check(txn_->put(table::meta, schedule_meta_key(c.name), encode_schedule_meta(s)), "put schedule");
        }
        log_.info("schedule={} handler={} {}={} next_ms={}{}", c.name, c.handler, c.cron.empty() ? "every" : "cron",
                  c.cron.empty() ? c.every : c.cron, s.next_ms,
                  schedule_due(s, now_) ? " (missed while down: fires once now)" : "");
        schedules_.push_back(std::move(s));
    }
}

void engine::fire_schedules() {
    for (auto& s : schedules_) {
        if (!schedule_due(s, now_)) {
            continue;
        }
        if (auto why = new_work_refused()) {
            // Skipped, not postponed: a due schedule left due would wake the
            // loop at once, again and again.
            log_.warn("schedule={} fire skipped: {}", s.cfg.name, *why);
            count("schedule_skips");
            schedule_fired(s, now_);
            check(txn_->put(table::meta, schedule_meta_key(s.cfg.name), encode_schedule_meta(s)), "put schedule");
            continue;
        }
        protocol::task_spec spec;
        spec.handler = s.cfg.handler;
        spec.payload = s.payload;
        spec.queue = s.cfg.queue;
        spec.tags = {"schedule:" + s.cfg.name};
        auto r = create(spec, "");
        enqueue(*r);
        count("submitted");
        count("schedule_fires");
        int64_t planned = s.next_ms;
        schedule_fired(s, now_);
        check(txn_->put(table::meta, schedule_meta_key(s.cfg.name), encode_schedule_meta(s)), "put schedule");
        log_.info("task={} schedule={} fired planned_ms={} next_ms={}", to_hex(r->id), s.cfg.name, planned, s.next_ms);
        if (wants_event("schedule.fired")) {
            nlohmann::json e = {{"type", "schedule.fired"}, {"schedule", s.cfg.name}, {"task", to_hex(r->id)},
                                {"planned_ms", planned}, {"time_ms", now_}, {"next_ms", s.next_ms}};
            auto v = nlohmann::json::to_msgpack(e);
            out_.events.emplace_back("schedule.fired", std::string(v.begin(), v.end()));
        }
    }
}

std::optional<int64_t> engine::next_schedule_ms() const {
    std::optional<int64_t> best;
    for (const auto& s : schedules_) {
        if (s.next_ms > 0 && (!best || s.next_ms < *best)) {
            best = s.next_ms;
        }
    }
    return best;
}

void engine::schedules_cmd(const std::string& peer, const protocol::request& rq) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& s : schedules_) {
        nlohmann::json j = {{"name", s.cfg.name},
                            {"handler", s.cfg.handler},
                            {"queue", s.cfg.queue.empty() ? "default" : s.cfg.queue},
                            {"every", s.cfg.every.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.cfg.every)},
                            {"cron", s.cfg.cron.empty() ? nlohmann::json(nullptr) : nlohmann::json(s.cfg.cron)},
                            {"timezone", s.cron ? nlohmann::json(s.cron->tz_name) : nlohmann::json(nullptr)},
                            {"last_fire_ms", s.last_fire_ms},
                            {"next_fire_ms", s.next_ms}};
        list.push_back(std::move(j));
    }
    protocol::reply rep;
    rep.req = rq.req;
    auto v = nlohmann::json::to_msgpack(nlohmann::json{{"schedules", list}});
    rep.data.assign(v.begin(), v.end());
    reply_front(peer, "SCHEDULES", rep);
}

}  // namespace taskmill::broker
