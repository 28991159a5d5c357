// Printing the client's values: one JSON document with --json, readable
// text (key: value lines, tables) without.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

#include <taskmill/client/types.hpp>

namespace taskmill::cli {

void print_task(std::ostream& out, const client::task_info& t, bool json);
// "RUNNING 42% resizing" : a task's state and progress on one line.
std::string progress_line(const client::task_info& t);
void print_tasks(std::ostream& out, const std::vector<client::task_info>& ts, bool json);
void print_workers(std::ostream& out, const std::vector<client::worker_info>& ws, bool json);
void print_stats(std::ostream& out, const client::stats_info& s, bool json);
// Queues with their counts, pause and flow limits (`taskmill queues`).
void print_queues(std::ostream& out, const std::vector<client::queue_stats>& qs, bool json);
void print_handler_limits(std::ostream& out, const client::handler_stats& h, bool json);

}  // namespace taskmill::cli
