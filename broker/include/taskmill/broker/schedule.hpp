// taskmill/broker/schedule.hpp -- recurring tasks from the broker's config.
//
// A schedule is one `[schedule.NAME]` section of broker.ini:
//   handler = ns.name            (required)
//   payload = {"json": "value"}  (optional JSON; default null)
//   queue = default              (optional)
//   every = 30s | 5m | 2h | 1d   (exactly one of every / cron)
//   cron = "0 3 * * *"           (5 fields; quotes optional)
//   timezone = Europe/Paris      (cron only; IANA name; default UTC)
// The broker stores each schedule's last fire time in LMDB: a restart
// neither fires twice nor skips silently (a run missed while the broker was
// down fires once at start). docs/WORKFLOWS.md has the details.
#pragma once

#include <string>
#include <vector>

#include <taskmill/config/loader.hpp>

namespace taskmill::broker {

struct schedule_config {
    std::string name;
    std::string handler;
    std::string payload_json;  // empty = null payload
    std::string queue;         // empty = "default"
    std::string every;         // "30s" ...; empty when cron is set
    std::string cron;          // "0 3 * * *"; empty when every is set
    std::string timezone;      // empty = UTC
    std::string where;         // "file:line" of the section, for messages
};

// Reads one [schedule.NAME] section as the config loader gives it and
// checks it (keys, handler syntax, payload JSON, every/cron expression,
// time zone; quotes around a value are dropped). Throws config::error
// "FILE:LINE: reason", the line of the key at fault or of the section.
schedule_config read_schedule_section(const config::section& s);

// Checks one schedule as read_schedule_section does; the error message
// does not carry the location.
void check_schedule(const schedule_config& s);

}  // namespace taskmill::broker
