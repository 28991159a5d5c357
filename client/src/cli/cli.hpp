// The `taskmill` command line: a thin shell over taskmill::client.
//
// main.cpp splits argv into global options and a command, args.cpp parses
// both (Boost.Program_options), commands.cpp runs each command, output.cpp
// prints task/worker/stats values as JSON or text, events.cpp follows the
// broker's event stream. The exit codes are a contract (README.md, "A
// five-minute tour"): 0 success, 1 the task did not succeed, 2 usage or
// input error, 3 the broker cannot be reached.
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include <taskmill/client/client.hpp>

namespace taskmill::cli {

enum exit_code : int {
    exit_ok = 0,
    exit_task_failed = 1,  // failed, cancelled, expired (or not finished) for --wait / result
    exit_usage = 2,        // bad flag, bad input, broker said invalid_argument / not_found
    exit_unreachable = 3,  // no answer from the broker within --timeout
};

// Thrown for a usage or input error: message to stderr, exit 2.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

struct global_options {
    std::string broker;  // empty = $TASKMILL_BROKER, else the default
    std::string events = "tcp://127.0.0.1:5557";
    bool json = false;
    double timeout_s = 5;
    std::string server_key;  // CURVE: broker public key (Z85 or file); else $TASKMILL_SERVER_KEY
    std::string key_file;    // CURVE: this client's key pair; else $TASKMILL_KEY_FILE
};

// ---- args.cpp ----

// Splits argv into the global options before the command and the rest
// (command first). Throws usage_error.
global_options parse_globals(const std::vector<std::string>& argv, std::vector<std::string>& rest);
// Seconds (fractional allowed) from a flag value; throws usage_error naming
// the flag for a negative or non-numeric value.
std::chrono::milliseconds seconds_arg(const std::string& flag, double value);
// TIME: ISO 8601 UTC (2026-01-31T12:00:00Z, or a date) or a duration ago
// (1h, 7d), as protocol::parse_time_ms reads it; throws usage_error naming
// `flag`.
client::time_point time_arg(const std::string& flag, const std::string& text);
void print_usage(std::ostream& out);

// ---- security.cpp ----

// `taskmill keygen PREFIX [--force]`.
int run_keygen(global_options& g, const std::vector<std::string>& args);
// Fills the CURVE keys of `o` from --server-key/--key-file (or the
// environment). Throws usage_error for a bad or half-given key.
void apply_curve(const global_options& g, client::client_options& o);

// ---- commands.cpp ----

// Runs `args` (command first) and returns the exit code. Throws usage_error.
int run_command(global_options& g, const std::vector<std::string>& args);
// The exit code for a client error, after printing it to stderr.
int report(const error& e);

}  // namespace taskmill::cli
