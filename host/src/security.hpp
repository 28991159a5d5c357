// Host-side security: CURVE on the sockets to the broker's backend, and
// sshd-like strict modes for the plugins folder.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include <zmq.hpp>

#include <taskmill/host/options.hpp>

namespace spdlog {
class logger;
}

namespace taskmill::host {

class plugin_set;

// Makes `s` a CURVE client of the broker when --curve-server-key is set
// (needs --curve-key-file). Before connect(). Errors name the file.
result<void> apply_curve(zmq::socket_t& s, const options& o);

// Why `dir`, or `so` in it, may not be loaded under strict modes: a folder
// or file writable by group/others, or owned by someone other than this
// process's user or root. Empty = fine.
std::string strict_mode_problem(const std::filesystem::path& path);

// plugin_set::load_dir with strict modes: refuses the whole folder, or the
// single offending .so, unless o.strict_modes is false (then warns loudly).
// Returns the refusals, like load_dir.
std::vector<std::string> load_plugins_checked(plugin_set& set, const options& o, spdlog::logger& log);

}  // namespace taskmill::host
