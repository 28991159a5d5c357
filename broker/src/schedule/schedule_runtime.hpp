// The running form of a schedule and its fire-time bookkeeping. The
// schedule engine keeps one per configured schedule and stores (last fire,
// anchor) in the schedules table under its name, in the same transaction as
// the task a fire submits: a restart can neither repeat nor lose a fire.
//
// Misfire policy: when the broker finds a fire time already past (it was
// down, or the loop was late), the schedule fires ONCE now, and the next
// fire is computed from now: missed runs are not replayed one by one.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <taskmill/broker/schedule.hpp>

#include "schedule/cron.hpp"

namespace taskmill::broker {

struct schedule_state {
    schedule_config cfg;
    std::optional<cron_expr> cron;
    int64_t every_ms = 0;
    std::string payload;       // msgpack
    int64_t last_fire_ms = 0;  // 0 = never fired
    int64_t anchor_ms = 0;     // the next fire is computed from this time
    int64_t next_ms = 0;       // 0 = never again
};

// Throws std::runtime_error (without location) for a bad config.
schedule_state make_schedule(const schedule_config& c);
// The first fire time strictly after `t`; nullopt = none.
std::optional<int64_t> schedule_next(const schedule_state& s, int64_t t);
// Sets anchor and next from the stored (last, anchor), or from `now` for a
// schedule never seen before (it first fires one period after now).
void restore_schedule(schedule_state& s, std::optional<std::pair<int64_t, int64_t>> stored, int64_t now);
// True when s is due at `now`.
bool schedule_due(const schedule_state& s, int64_t now);
// Records a fire at `now` and computes the next one (see the misfire policy).
void schedule_fired(schedule_state& s, int64_t now);

std::string encode_schedule_meta(const schedule_state& s);
std::optional<std::pair<int64_t, int64_t>> decode_schedule_meta(std::string_view v);

}  // namespace taskmill::broker
