// taskmill/client/json.hpp -- JSON views of the client's value types.
//
// The shapes the `taskmill --json` CLI prints (DESIGN.md, user-facing
// contract): times as ISO 8601 UTC with milliseconds or null, missing
// optional values as null, results decoded from msgpack. Pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <taskmill/client/types.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::client {

// "2024-05-01T12:34:56.789Z".
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
// error, progress, result, created, started, finished, eta, parent, tags,
// children, worker.
nlohmann::json to_json(const task_info& t);
nlohmann::json to_json(const worker_info& w);
nlohmann::json to_json(const stats_info& s);

}  // namespace taskmill::client
