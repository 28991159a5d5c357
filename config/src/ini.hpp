// Reading an INI file into its sections and key = value lines, each with
// its line number. Private to the loader.
#pragma once

#include <string>
#include <vector>

namespace taskmill::config::detail {

struct ini_line {
    int number = 0;
    std::string section;     // the section this line is in ("" before any)
    bool is_header = false;  // a "[section]" line; key and value are empty
    std::string key;
    std::string value;  // trimmed, comments kept: sections decide about '#'
};

// The meaningful lines of `path` (blank and comment lines left out).
// Throws config::error "cannot read config file PATH", or "PATH:LINE:
// expected 'key = value'" on a line that is neither.
std::vector<ini_line> read_ini(const std::string& path);

std::string trim(std::string_view s);

}  // namespace taskmill::config::detail
