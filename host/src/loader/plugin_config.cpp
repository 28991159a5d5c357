// Plugin configuration: typing INI values into msgpack, and the hand-over
// file (see plugin_config.hpp).
#include "loader/plugin_config.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <fstream>
#include <iterator>
#include <set>
#include <variant>

#include <taskmill/protocol/msgpack_out.hpp>

namespace taskmill::host::detail {
namespace {

using typed = std::variant<std::string, int64_t, uint64_t, bool>;

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

template <typename T> bool whole_number(std::string_view s, T& out) {
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size();
}

result<typed> type_value(const std::string& key, std::string_view raw) {
    if (!raw.empty() && (raw.front() == '"' || raw.front() == '\'')) {
        auto close = raw.find(raw.front(), 1);
        if (close == std::string_view::npos) return fail(errc::invalid_argument, key + ": unclosed quote");
        auto rest = trimmed(raw.substr(close + 1));
        if (!rest.empty() && rest.front() != '#') {
            return fail(errc::invalid_argument, key + ": text after the closing quote");
        }
        return typed(std::string(raw.substr(1, close - 1)));
    }
    auto text = trimmed(raw.substr(0, raw.find('#')));
    if (text == "true") return typed(true);
    if (text == "false") return typed(false);
    if (int64_t i = 0; whole_number(text, i)) return typed(i);
    if (uint64_t u = 0; whole_number(text, u)) return typed(u);
    return typed(std::string(text));
}

}  // namespace

result<std::string> encode_plugin_section(const std::vector<std::pair<std::string, std::string>>& entries) {
    std::vector<std::pair<std::string, typed>> values;
    std::set<std::string> seen;
    for (const auto& [key, raw] : entries) {
        if (!seen.insert(key).second) return fail(errc::invalid_argument, "key '" + key + "' is given twice");
        auto v = type_value(key, raw);
        if (!v) return fail(v.error().code, v.error().message);
        values.emplace_back(key, std::move(*v));
    }
    return protocol::pack_with([&](protocol::string_packer& pk) {
        pk.pack_map(static_cast<uint32_t>(values.size()));
        for (const auto& [key, v] : values) {
            pk.pack(key);
            std::visit([&](const auto& x) { pk.pack(x); }, v);
        }
    });
}

result<void> write_plugin_configs(const std::string& path, const std::map<std::string, std::string>& configs) {
    std::string bytes = protocol::pack_value(configs);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return fail(errc::unavailable, "cannot write " + path + ": " + std::strerror(errno));
    std::size_t done = 0;
    while (done < bytes.size()) {
        ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            std::string why = std::strerror(errno);
            ::close(fd);
            return fail(errc::unavailable, "cannot write " + path + ": " + why);
        }
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    return {};
}

result<std::map<std::string, std::string>> read_plugin_configs(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail(errc::not_found, "cannot read plugin configuration " + path);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    try {
        auto handle = msgpack::unpack(bytes.data(), bytes.size());
        return handle.get().as<std::map<std::string, std::string>>();
    } catch (const std::exception& e) {
        return fail(errc::invalid_argument, "plugin configuration " + path + " is malformed: " + e.what());
    }
}

}  // namespace taskmill::host::detail
