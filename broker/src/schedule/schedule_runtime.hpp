// The running form of a schedule and its fire-time bookkeeping. The
// schedule engine keeps one per configured schedule and stores (last fire,
// anchor) in the schedules table under its name, in the same transaction as
// the task a fire submits: a restart can neither repeat nor lose a fire.
//
// Misfire policy: when the broker finds a fire time already past (it was
// down, or the loop was late), the schedule fires ONCE now, and the next
// fire is computed from now: missed runs are not replayed one by one. Each
// fire time that got no fire of its own (collapsed into a late one, or
// skipped while new work was refused) counts as a misfire. Fire times that
// pass while the schedule is paused are not misfires: resuming computes the
// next fire from the time of the resume.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include <taskmill/broker/schedule.hpp>
#include <taskmill/protocol/messages.hpp>

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
    uint64_t misfires = 0;     // fire times that got no fire of their own
    bool paused = false;       // SCHEDULE_PAUSE: does not fire until resumed
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

// The fire times t with after < t <= upto (for a cron expression, at most
// max_counted_misfires of them are counted).
uint64_t fire_times_between(const schedule_state& s, int64_t after, int64_t upto);
inline constexpr uint64_t max_counted_misfires = 10000;
// Starts the schedule again at `now` after a pause: the next fire is the
// first fire time after now.
void schedule_resumed(schedule_state& s, int64_t now);
// The task a fire submits: the schedule's handler, payload and queue,
// tagged "schedule:NAME".
protocol::task_spec schedule_task(const schedule_state& s);

// The stored meta: last fire, anchor and misfires (u64 BE each). A store
// written before misfires were counted has the first two only.
std::string encode_schedule_meta(const schedule_state& s);
std::optional<std::pair<int64_t, int64_t>> decode_schedule_meta(std::string_view v);
uint64_t decode_schedule_misfires(std::string_view v);

// The settings table key of a schedule's pause ("schedule/NAME"); the entry
// exists while it is paused.
std::string schedule_settings_key(std::string_view name);

}  // namespace taskmill::broker
