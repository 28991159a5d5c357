// taskmill-bench: load generators that measure a running broker + host
// through the C++ client library, as a real producer would use it.
//
// Every mode returns one JSON object (printed on stdout by main); figures
// are plain numbers so scripts can read them without parsing units.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

#include <nlohmann/json.hpp>

namespace taskmill::bench {

struct bench_options {
    std::string mode;      // throughput | latency | backlog | drain | ready | wire | wake
    std::string endpoint;  // broker frontend
    std::string handler = "echo.echo";
    std::string queue = "default";
    std::size_t count = 10000;                   // tasks (throughput, backlog, drain) or round trips (latency)
    std::size_t batch = 500;                     // tasks per submit_async call
    std::size_t window = 8;                      // submit batches awaiting their ack at once
    std::size_t warmup = 20;                     // untimed round trips before measuring
    std::chrono::milliseconds deadline{120000};  // the whole run gives up after this
};

// Each returns the figures of one run; errors are reported in the object as
// "error" with "ok": false, never thrown.
nlohmann::json run_throughput(const bench_options& o);
nlohmann::json run_latency(const bench_options& o);
nlohmann::json run_backlog(const bench_options& o);
nlohmann::json run_drain(const bench_options& o);
nlohmann::json run_ready(const bench_options& o);
nlohmann::json run_wire(const bench_options& o);
nlohmann::json run_wake(const bench_options& o);

}  // namespace taskmill::bench
