// A schedule as SCHEDULES lists it (and SCHEDULE_PAUSE / _RESUME answer).
// Apart from schedule_engine.hpp so that the engine, which includes that,
// stays free of JSON headers (scripts/check-layout.sh).
#pragma once

#include <nlohmann/json_fwd.hpp>

#include "schedule/schedule_runtime.hpp"

namespace taskmill::broker {

nlohmann::json schedule_json(const schedule_state& s);

}  // namespace taskmill::broker
