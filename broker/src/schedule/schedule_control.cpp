// What operators do with a schedule at run time: SCHEDULE_TRIGGER fires it
// once now, SCHEDULE_PAUSE and SCHEDULE_RESUME stop and restart its fires.
// A pause is an entry in the settings table ("schedule/NAME"), so it holds
// across restarts; it is erased on resume.
#include <nlohmann/json.hpp>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/peer_text.hpp>

#include "schedule/schedule_engine.hpp"
#include "schedule/schedule_json.hpp"

namespace taskmill::broker {
namespace {

namespace cmd = protocol::cmd;

// The settings value of a pause: when it began, for the record.
std::string pause_value(int64_t now) { return protocol::json_to_msgpack(nlohmann::json{{"paused_ms", now}}); }

}  // namespace

schedule_state* schedule_engine::named(const std::string& peer, std::string_view command, const protocol::request& rq) {
    if (rq.name.empty()) {
        ops_.reply_error(peer, command, rq.req, errc::invalid_argument,
                         std::string(command) + " needs a schedule name");
        return nullptr;
    }
    for (auto& s : schedules_) {
        if (s.cfg.name == rq.name) {
            return &s;
        }
    }
    ops_.reply_error(peer, command, rq.req, errc::not_found, "no schedule named " + protocol::printable(rq.name));
    return nullptr;
}

bool schedule_engine::stored_pause(const std::string& name) {
    return ops_.get(table::settings, schedule_settings_key(name)).has_value();
}

void schedule_engine::trigger(const std::string& peer, const protocol::request& rq) {
    auto* s = named(peer, cmd::schedule_trigger, rq);
    if (s == nullptr) {
        return;
    }
    if (auto why = ops_.new_work_refused()) {
        ops_.reply_error(peer, cmd::schedule_trigger, rq.req, errc::unavailable, *why);
        return;
    }
    auto r = ops_.submit(schedule_task(*s));
    ops_.count("schedule_fires");
    ops_.count("schedule_triggers");
    s->last_fire_ms = ops_.now();  // the planned fires (anchor, next) stay as they were
    save(*s);
    const std::string task = to_hex(r.id);
    log_.info("task={} schedule={} triggered next_ms={}", task, s->cfg.name, s->next_ms);
    ops_.events().emit("schedule.triggered", [&](event& e) {
        e.add("schedule", s->cfg.name).add("task", task).add("next_ms", s->paused ? 0 : s->next_ms);
    });
    protocol::reply rep;
    rep.req = rq.req;
    rep.ids.push_back(task);
    ops_.reply(peer, cmd::schedule_trigger, rep);
}

void schedule_engine::set_paused(const std::string& peer, const protocol::request& rq, bool paused) {
    const auto command = paused ? cmd::schedule_pause : cmd::schedule_resume;
    auto* s = named(peer, command, rq);
    if (s == nullptr) {
        return;
    }
    protocol::reply rep;
    rep.req = rq.req;
    if (s->paused == paused) {
        rep.note = paused ? "already paused" : "not paused";
    } else if (paused) {
        s->paused = true;
        ops_.put(table::settings, schedule_settings_key(s->cfg.name), pause_value(ops_.now()));
        log_.info("schedule={} paused", s->cfg.name);
    } else {
        schedule_resumed(*s, ops_.now());
        save(*s);
        ops_.erase(table::settings, schedule_settings_key(s->cfg.name));
        log_.info("schedule={} resumed next_ms={}", s->cfg.name, s->next_ms);
    }
    if (rep.note.empty()) {
        ops_.events().emit(paused ? "schedule.paused" : "schedule.resumed", [&](event& e) {
            e.add("schedule", s->cfg.name).add("next_ms", s->paused ? 0 : s->next_ms);
        });
    }
    rep.data = protocol::json_to_msgpack(schedule_json(*s));
    ops_.reply(peer, command, rep);
}

}  // namespace taskmill::broker
