// Schedule fire-time bookkeeping (see schedule_runtime.hpp).
#include "schedule/schedule_runtime.hpp"

#include <stdexcept>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "store/keys.hpp"

namespace taskmill::broker {

schedule_state make_schedule(const schedule_config& c) {
    check_schedule(c);
    schedule_state s;
    s.cfg = c;
    if (!c.every.empty()) {
        s.every_ms = *parse_every(c.every);
    } else {
        s.cron = *parse_cron(c.cron, c.timezone);
    }
    if (!c.payload_json.empty()) {
        // check_schedule accepted it, so this parse succeeds.
        auto j = protocol::parse_json<nlohmann::json>(c.payload_json, "payload").value();
        if (!j.is_null()) {
            s.payload = protocol::json_to_msgpack(j);
        }
    }
    return s;
}

std::optional<int64_t> schedule_next(const schedule_state& s, int64_t t) {
    if (s.cron) {
        return next_fire(*s.cron, t);
    }
    return t + s.every_ms;
}

void restore_schedule(schedule_state& s, std::optional<std::pair<int64_t, int64_t>> stored, int64_t now) {
    if (stored) {
        s.last_fire_ms = stored->first;
        s.anchor_ms = stored->second;
    } else {
        s.last_fire_ms = 0;
        s.anchor_ms = now;
    }
    s.next_ms = schedule_next(s, s.anchor_ms).value_or(0);
}

bool schedule_due(const schedule_state& s, int64_t now) { return s.next_ms > 0 && s.next_ms <= now; }

void schedule_fired(schedule_state& s, int64_t now) {
    s.last_fire_ms = now;
    // On time: keep the cadence from the planned time. Late by more than a
    // period: start again from now (one fire for all the missed ones).
    auto after_planned = schedule_next(s, s.next_ms);
    if (after_planned && *after_planned <= now) {
        s.misfires += fire_times_between(s, s.next_ms, now);
    }
    s.anchor_ms = after_planned && *after_planned > now ? s.next_ms : now;
    s.next_ms = schedule_next(s, s.anchor_ms).value_or(0);
}

uint64_t fire_times_between(const schedule_state& s, int64_t after, int64_t upto) {
    if (upto <= after) {
        return 0;
    }
    if (!s.cron) {
        return static_cast<uint64_t>((upto - after) / s.every_ms);
    }
    uint64_t n = 0;
    for (auto t = next_fire(*s.cron, after); t && *t <= upto && n < max_counted_misfires; t = next_fire(*s.cron, *t)) {
        ++n;
    }
    return n;
}

void schedule_resumed(schedule_state& s, int64_t now) {
    s.paused = false;
    s.anchor_ms = now;
    s.next_ms = schedule_next(s, now).value_or(0);
}

protocol::task_spec schedule_task(const schedule_state& s) {
    protocol::task_spec spec;
    spec.handler = s.cfg.handler;
    spec.payload = s.payload;
    spec.queue = s.cfg.queue;
    spec.tags = {"schedule:" + s.cfg.name};
    return spec;
}

std::string encode_schedule_meta(const schedule_state& s) {
    std::string v;
    keys::put_u64(v, static_cast<uint64_t>(s.last_fire_ms));
    keys::put_u64(v, static_cast<uint64_t>(s.anchor_ms));
    keys::put_u64(v, s.misfires);
    return v;
}

std::optional<std::pair<int64_t, int64_t>> decode_schedule_meta(std::string_view v) {
    if (v.size() != 16 && v.size() != 24) {
        return std::nullopt;
    }
    return std::pair{static_cast<int64_t>(keys::get_u64(v)), static_cast<int64_t>(keys::get_u64(v.substr(8)))};
}

uint64_t decode_schedule_misfires(std::string_view v) { return v.size() == 24 ? keys::get_u64(v.substr(16)) : 0; }

std::string schedule_settings_key(std::string_view name) { return "schedule/" + std::string(name); }

}  // namespace taskmill::broker
