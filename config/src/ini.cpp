#include "ini.hpp"

#include <fstream>

#include <taskmill/config/loader.hpp>

namespace taskmill::config::detail {

std::string trim(std::string_view s) {
    auto b = s.find_first_not_of(" \t\r");
    auto e = s.find_last_not_of(" \t\r");
    return b == std::string_view::npos ? std::string() : std::string(s.substr(b, e - b + 1));
}

std::vector<ini_line> read_ini(const std::string& path) {
    std::ifstream in(path);
    if (!in) throw error("cannot read config file " + path);
    std::vector<ini_line> out;
    std::string section;
    std::string raw;
    for (int n = 1; std::getline(in, raw); ++n) {
        auto t = trim(raw);
        if (t.empty() || t[0] == '#' || t[0] == ';') continue;
        if (t.front() == '[' && t.back() == ']') {
            section = trim(std::string_view(t).substr(1, t.size() - 2));
            out.push_back({n, section, true, {}, {}});
            continue;
        }
        auto eq = t.find('=');
        if (eq == std::string::npos) {
            throw error(path + ":" + std::to_string(n) + ": expected 'key = value'");
        }
        out.push_back(
            {n, section, false, trim(std::string_view(t).substr(0, eq)), trim(std::string_view(t).substr(eq + 1))});
    }
    return out;
}

}  // namespace taskmill::config::detail
