// JSON <-> wire types for the HTTP API. Field names follow the CLI's --json
// output (client/src/json.cpp) so that scripts can use either.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/nesting.hpp>
#include <taskmill/protocol/result.hpp>

#include "metrics/metrics.hpp"

namespace taskmill::broker::http {

nlohmann::json to_json(const protocol::task_info& t);
nlohmann::json to_json(const protocol::worker_info& w);
nlohmann::json to_json(const protocol::stats_info& s);
// The snapshot as the dashboard reads it (GET /api/v1/metrics).
nlohmann::json to_json(const metrics_snapshot& s);

// A submit body: one task object, or {"tasks": [task, ...]}. Every field is
// type-checked and unknown fields are refused, so a typo is an error and
// not a silently ignored option. The payload (any JSON) becomes msgpack.
result<std::vector<protocol::task_spec>> parse_submit(const nlohmann::json& body);

// Msgpack bytes as JSON; bytes that are not msgpack come back as
// {"msgpack_hex": "..."}, and a value nested deeper than
// protocol::max_nesting as {"error": "...", "size": N}, rather than failing
// the request.
nlohmann::json msgpack_to_json(const std::string& bytes, std::size_t max_nesting = protocol::max_nesting);

}  // namespace taskmill::broker::http
