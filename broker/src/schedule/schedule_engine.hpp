// Schedules run by the broker: restoring their fire times at start, firing
// due ones as ordinary tasks (tag "schedule:NAME") and SCHEDULES. A client
// of the engine through task_ops: the engine owns one, has it recover at
// start, fire on its timers and answer SCHEDULES.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <spdlog/logger.h>

#include <taskmill/broker/schedule.hpp>
#include <taskmill/protocol/messages.hpp>

#include "engine/task_ops.hpp"
#include "schedule/schedule_runtime.hpp"

namespace taskmill::broker {

class schedule_engine {
public:
    schedule_engine(const std::vector<schedule_config>& configs, task_ops& ops, spdlog::logger& log)
        : configs_(configs), ops_(ops), log_(log) {}

    // Builds the schedules from their configs and their stored fire times
    // (a new one is stored). Throws std::runtime_error "where: reason" for a
    // bad config.
    void recover();
    // Fires the schedules that are due now.
    void fire_due();
    // The earliest fire time; nullopt = none.
    std::optional<int64_t> next_fire_ms() const;
    // SCHEDULES: the list with each one's last and next fire.
    void list(const std::string& peer, const protocol::request& rq);
    // ---- operator control (schedule_control.cpp) ----
    // SCHEDULE_TRIGGER: fires `rq.name` once now, as its cron would, and
    // leaves its planned fire times as they were.
    void trigger(const std::string& peer, const protocol::request& rq);
    // SCHEDULE_PAUSE / SCHEDULE_RESUME: a paused schedule does not fire
    // (kept in the settings table across restarts); resuming plans the
    // next fire from now.
    void set_paused(const std::string& peer, const protocol::request& rq, bool paused);

private:
    void save(const schedule_state& s);
    // The schedule `rq.name` names; nullptr after answering the error.
    schedule_state* named(const std::string& peer, std::string_view command, const protocol::request& rq);
    // Whether a stored pause holds it (at start).
    bool stored_pause(const std::string& name);

    const std::vector<schedule_config>& configs_;
    task_ops& ops_;
    spdlog::logger& log_;
    std::vector<schedule_state> schedules_;
};

}  // namespace taskmill::broker
