// taskmill/host/worker.hpp -- one worker process.
//
// The worker owns one DEALER socket to the broker backend (routing id
// "<hostname>:<pid>"), loads the plugins from private copies, announces its
// handlers with HELLO and runs `concurrency` slot threads. The socket
// belongs to the I/O thread (the caller of run_worker); slot threads reach
// it through a queue + eventfd, never directly.
#pragma once

#include <string>

#include <taskmill/host/options.hpp>

namespace taskmill::host {

// Runs a worker until it is told to stop (SIGTERM/SIGINT) or to retire
// (SIGUSR1), or it is recycled (--max-tasks / --max-rss-mb). Each drains:
// no new tasks, running ones finish within --grace-ms; then they are
// cancelled (on a retire only those without a deadline) and what has not
// returned --kill-grace-ms later is handed back. Exit codes (exit_codes.hpp):
// 0 drained (BYE), 71 tasks handed back after the kill grace, 70 a task
// overran its deadline past --kill-grace-ms; startup failures return 1.
// SIGTERM, SIGINT and SIGUSR1 are blocked in the calling thread and read
// from a signalfd.
int run_worker(const options& o);

// "<hostname>:<pid>" for this process.
std::string worker_id();

// "<hostname>:<pid>:supervisor": the routing id of the supervisor process
// `pid`. A worker names its parent's in HELLO, so the broker takes DEAD for
// it from that supervisor only.
std::string supervisor_id(long pid);

}  // namespace taskmill::host
