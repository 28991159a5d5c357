// taskmill/host/supervisor.hpp -- the parent process of taskmill-host.
//
// Judges every plugin file in a --check child before any worker loads it
// and keeps the accepted ones in a generation folder under --run-dir;
// forks N worker processes on it (fork + exec of /proc/self/exe --worker,
// so no ZeroMQ state crosses a fork); restarts crashed workers, and workers
// that die before they are up, with exponential backoff; gives up on a
// plugin set whose workers cannot start; retires an old generation with
// SIGUSR1 on reload; tells the broker at once when a worker dies (DEAD on
// its own DEALER), and stops them all on SIGINT/SIGTERM. Single-threaded:
// signals are read from a signalfd in the same poll as the socket. The
// steps are described in docs/PLUGINS.md section 6.
#pragma once

#include <taskmill/host/options.hpp>

namespace taskmill::host {

// Runs until SIGINT/SIGTERM; returns the process exit code (0 on a clean stop).
int run_supervisor(const options& o);

// --check: loads `o.check_file` in a forked child with the workers' loader
// and judges how it ended; prints the plugin, its handlers and warnings,
// then "ok", to stdout and returns 0, or prints "refused: <reason>" to
// stderr and returns 2 (a crash, an exit or a hang while loading included).
int run_check(const options& o);

}  // namespace taskmill::host
