// JSON <-> wire types for the HTTP API. Tasks, workers and stats are shown
// by the view the CLI's --json output shares (taskmill/protocol/json_view.hpp,
// found by argument-dependent lookup); what is the HTTP API's own is here.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

#include "metrics/metrics.hpp"

namespace taskmill::broker::http {

// The snapshot as the dashboard reads it (GET /api/v1/metrics).
nlohmann::json to_json(const metrics_snapshot& s);

// A handler's task counts by outcome, the part every handler view shares.
nlohmann::json handler_counts_json(const handler_metrics& h);

// A submit body: one task object, or {"tasks": [task, ...]}. Every field is
// type-checked and unknown fields are refused, so a typo is an error and
// not a silently ignored option. The payload (any JSON) becomes msgpack.
result<std::vector<protocol::task_spec>> parse_submit(const nlohmann::json& body);

}  // namespace taskmill::broker::http
