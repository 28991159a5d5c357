// taskmill/client/json.hpp -- JSON views of the client's value types.
//
// The shapes the `taskmill --json` CLI prints, the same the broker's HTTP
// API answers (docs/HTTP.md, "Objects"; docs/CLIENT.md; one view, in
// taskmill/protocol/json_view.hpp): times as ISO 8601 UTC with milliseconds
// or null, missing optional values as null, results decoded from msgpack.
// Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <taskmill/client/types.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::client {

// "2024-05-01T12:34:56.789Z", rounded down to the millisecond (before 1970
// too: one microsecond before is "1969-12-31T23:59:59.999Z").
std::string iso8601(time_point t);
// iso8601 or null.
nlohmann::json iso8601_or_null(const std::optional<time_point>& t);

// msgpack bytes to JSON; empty bytes = null. Bytes that are not valid
// msgpack, or nest deeper than protocol::max_nesting (128) levels, give
// {"msgpack_error": "...", "size": N} rather than throwing.
nlohmann::json msgpack_to_json(std::string_view bytes);
// JSON text to msgpack bytes. Errors: invalid_argument naming the problem
// (nlohmann's parse message: position and what was expected; or nesting
// deeper than protocol::max_nesting levels).
result<std::string> json_text_to_msgpack(std::string_view text);

// Object with id, handler, queue, priority, state, attempts, max_retries,
// error, progress, result, created, started, finished, eta, created_ms,
// started_ms, finished_ms, parent, tags, children, worker. Times at or
// before 1970-01-01T00:00:00Z show as null and 0, as the wire has them.
nlohmann::json to_json(const task_info& t);
// Object with id, host, pid, slots, busy, generation, queues, handlers,
// last_seen, last_seen_ms.
nlohmann::json to_json(const worker_info& w);
// Object with queues, states, counters, workers, slots, busy, uptime_ms,
// handlers (those with flow limits: name, running, limits).
nlohmann::json to_json(const stats_info& s);
// Object with name, ready, delayed, running, paused, limits {rate, burst,
// max_running} (null = no such limit).
nlohmann::json to_json(const queue_stats& q);

}  // namespace taskmill::client
