// The settings of taskmill-broker: its options declared to the config
// loader (taskmill/config/loader.hpp), checked together, CURVE keys read.
#pragma once

#include <map>
#include <string>

#include <taskmill/broker/broker.hpp>

namespace taskmill::broker {

enum class broker_mode { serve, help, print_config, check_store };

struct broker_options {
    broker_config cfg;
    std::string log_level = "info";
    broker_mode mode = broker_mode::serve;
    std::string text;                 // what help / print_config print
    std::string log_format = "text";  // text | json (taskmill/logging/stderr_logger.hpp)
};

// Reads flags, TASKMILL_* variables (`env`) and the --config file. Throws
// config::error (exit 2) naming the flag, variable or FILE:LINE at fault,
// or std::runtime_error for a key file that cannot be read.
broker_options load_broker_options(int argc, const char* const* argv, const std::map<std::string, std::string>& env);

}  // namespace taskmill::broker
