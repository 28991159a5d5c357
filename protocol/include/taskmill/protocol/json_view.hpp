// taskmill/protocol/json_view.hpp -- the one JSON view of the wire's values.
//
// What the CLI's --json output, the HTTP API and workflow status print for
// tasks, workers, stats, times and msgpack bytes, written once so the shapes
// cannot drift apart (docs/HTTP.md, "Objects"). Part of taskmill::protocol_json,
// the only protocol target that uses nlohmann::json, so the wire codecs and the
// broker's engine stay free of it. Pure functions: no state, thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/nesting.hpp>

namespace taskmill::protocol {

// Unix milliseconds as ISO 8601 UTC with milliseconds:
// "2024-05-01T12:34:56.789Z". Times before 1970 round down (-1 ms is
// "1969-12-31T23:59:59.999Z"); a year outside 0000..9999 is written with its
// sign and as many digits as it needs ("+10000-01-01T...", "-0001-12-31T..."),
// ISO 8601's expanded form. Defined for every int64_t.
std::string iso8601_utc(int64_t unix_ms);

// iso8601_utc(unix_ms), or null when unix_ms <= 0: the wire's "not yet".
nlohmann::json iso8601_or_null(int64_t unix_ms);

// Msgpack bytes as JSON: empty bytes are null. Never throws, and decodes
// (which recurses once per level) only values within `max` levels: bytes
// that are not one msgpack value (truncated, a reserved type byte, trailing
// bytes), or a value nested deeper than `max`, render as
// {"msgpack_error": "<why>", "size": <bytes>}.
nlohmann::json msgpack_to_json(std::string_view bytes, std::size_t max = max_nesting);

// A JSON value as msgpack bytes, written straight into the string. The
// caller bounds the nesting (parse_json or msgpack_within_nesting) first:
// encoding recurses once per level.
std::string json_to_msgpack(const nlohmann::json& value);

// The largest payload the task object shows whole (msgpack bytes); a
// larger one is shown by truncated_payload().
inline constexpr std::size_t max_payload_json = 64u << 10;
// How much of a large payload's JSON text the task object shows.
inline constexpr std::size_t payload_head_chars = 1024;

// A payload too large to show (over max_payload_json, or left out of the
// reply): {"truncated": true, "size": <msgpack bytes>, "head": "<the
// first payload_head_chars of its JSON text>" or null when the bytes are
// not at hand}.
nlohmann::json truncated_payload(const std::optional<std::string>& bytes, uint64_t size);

// One attempt: {attempt, worker, started, finished (iso8601_or_null),
// outcome, error, error_code, version}; empty strings and absent values
// are null.
nlohmann::json to_json(const attempt_info& a);

// The task object: id, handler, queue, priority, state, attempts,
// max_retries, error, progress {fraction, note}, result (msgpack_to_json),
// created, started, finished, eta (iso8601_or_null), created_ms, started_ms,
// finished_ms (unix ms, 0 = not yet), parent, tags, children, worker,
// error_code, delete_at (iso8601_or_null). Empty strings (error, parent,
// worker) and absent values are null. A task as STATUS shows it (its
// payload_size is set) also has payload (msgpack_to_json, or
// truncated_payload() past max_payload_json), payload_size and history
// (the attempts, oldest first).
nlohmann::json to_json(const task_info& t);
// The worker object: id, host, pid, slots, busy, generation, queues,
// handlers [{name, version, plugin}], last_seen (iso8601_or_null), last_seen_ms,
// prefetch, running (see worker_info).
nlohmann::json to_json(const worker_info& w);
// The stats object: queues [queue objects], states, counters, workers,
// slots, busy, uptime_ms, handlers [{name, running, limits}] (those with
// flow limits), prefetch, running (see stats_info).
nlohmann::json to_json(const stats_info& s);
// The queue object: name, ready, delayed, running, paused, limits.
nlohmann::json to_json(const queue_stats& q);
// Flow limits: rate (tasks started per second), burst (the effective one),
// max_running; null = no such limit.
nlohmann::json to_json(const flow_limits& l);

}  // namespace taskmill::protocol
