// [plugin.NAME] sections of host.ini -> the msgpack map each plugin's init()
// receives, and the file a supervisor hands them to its workers and checks
// in (so they see the config it read, even if host.ini changed since).
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <taskmill/protocol/result.hpp>

namespace taskmill::host::detail {

// key = value lines of one section, as the INI reader gives them (trimmed,
// quotes and comments kept). Integers become msgpack integers, true/false
// booleans, anything else a string; a value in "..." or '...' is always a
// string, taken as written ('#' included); unquoted, '#' starts a comment.
// Refuses a key given twice or an unclosed quote.
result<std::string> encode_plugin_section(const std::vector<std::pair<std::string, std::string>>& entries);

// Plugin name -> msgpack map, to and from a file (mode 0600: it may hold secrets).
result<void> write_plugin_configs(const std::string& path, const std::map<std::string, std::string>& configs);
result<std::map<std::string, std::string>> read_plugin_configs(const std::string& path);

}  // namespace taskmill::host::detail
