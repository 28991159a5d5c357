// Conversions between the client's public value types and the wire structs
// of taskmill::protocol. Pure functions.
#pragma once

#include <nlohmann/json.hpp>

#include <taskmill/client/types.hpp>
#include <taskmill/protocol/messages.hpp>

namespace taskmill::client::detail {

protocol::task_spec to_wire(const task_options& o);
protocol::task_spec to_wire(task_options&& o);  // moves the strings out
task_info from_wire(const protocol::task_info& t);
task_info from_wire(protocol::task_info&& t);  // moves the strings out
worker_info from_wire(const protocol::worker_info& w);
stats_info from_wire(const protocol::stats_info& s);
flow_limits from_wire(const protocol::flow_limits& l);
queue_stats from_wire(const protocol::queue_stats& q);
protocol::flow_limits to_wire(const flow_limits& l);
protocol::queue_stats to_wire(const queue_stats& q);
// Back to the wire structs, for the JSON view they share with the broker
// (taskmill/protocol/json_view.hpp). Absent times become 0.
protocol::task_info to_wire(const task_info& t);
protocol::worker_info to_wire(const worker_info& w);
protocol::stats_info to_wire(const stats_info& s);

// Unix milliseconds (0 = unset) to a time point and back.
std::optional<time_point> from_unix_ms(int64_t ms);
int64_t to_unix_ms(time_point t);

// CLUSTER's map; throws nlohmann::json::exception for one of the wrong shape.
cluster_info cluster_from_json(const nlohmann::json& j);

}  // namespace taskmill::client::detail
