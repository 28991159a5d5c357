// taskmill/protocol/curve_keys.hpp -- CURVE key files shared by broker, host
// and client.
//
// `taskmill keygen PREFIX` writes PREFIX.key (both halves, mode 0600):
//     public-key = <40 Z85 characters>
//     secret-key = <40 Z85 characters>
// and PREFIX.pub (the public half alone, on one line). Wherever a public key
// is expected, either the 40-character Z85 text or the path of a file
// holding it (a .pub or a .key file) may be given.
// Header-only so that no component's library has to depend on another's.
#pragma once

#include <fstream>
#include <string>
#include <string_view>

#include <taskmill/protocol/result.hpp>

namespace taskmill::curve {

struct key_pair {
    std::string public_key;  // Z85, 40 characters
    std::string secret_key;  // Z85, 40 characters
};

inline bool is_z85_key(std::string_view s) {
    static constexpr std::string_view alphabet =
        "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";
    if (s.size() != 40) return false;
    for (char c : s) {
        if (alphabet.find(c) == std::string_view::npos) return false;
    }
    return true;
}

namespace detail {
inline std::string trim(const std::string& s) {
    auto b = s.find_first_not_of(" \t\r\n");
    auto e = s.find_last_not_of(" \t\r\n");
    return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}
}  // namespace detail

// Reads PREFIX.key. Errors name the file and what is missing.
inline result<key_pair> load_key_pair(const std::string& path) {
    std::ifstream in(path);
    if (!in) return fail(errc::invalid_argument, "cannot read key file " + path);
    key_pair kp;
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
        auto t = detail::trim(line);
        if (t.empty() || t[0] == '#') continue;
        auto eq = t.find('=');
        if (eq == std::string::npos) {
            return fail(errc::invalid_argument, path + ":" + std::to_string(n) + ": expected 'key = value'");
        }
        auto key = detail::trim(t.substr(0, eq));
        // Z85 itself contains '=', so the value is everything after the first one.
        auto value = detail::trim(t.substr(eq + 1));
        if (key == "public-key") {
            kp.public_key = value;
        } else if (key == "secret-key") {
            kp.secret_key = value;
        } else {
            return fail(errc::invalid_argument, path + ":" + std::to_string(n) + ": unknown key '" + key + "'");
        }
    }
    if (!is_z85_key(kp.public_key) || !is_z85_key(kp.secret_key)) {
        return fail(errc::invalid_argument, path + ": needs public-key and secret-key, 40 Z85 characters each");
    }
    return kp;
}

// A public key given as Z85 text, or as the path of a .pub or .key file.
inline result<std::string> load_public_key(const std::string& text_or_path) {
    if (is_z85_key(text_or_path)) return text_or_path;
    std::ifstream in(text_or_path);
    if (!in) {
        return fail(errc::invalid_argument,
                    "'" + text_or_path + "' is neither a 40-character Z85 key nor a readable key file");
    }
    std::string line;
    while (std::getline(in, line)) {
        auto t = detail::trim(line);
        if (is_z85_key(t)) return t;  // before the comment test: a key may start with '#'
        if (t.empty() || t[0] == '#') continue;
        if (t.rfind("public-key", 0) == 0) {
            if (auto eq = t.find('='); eq != std::string::npos) {
                auto v = detail::trim(t.substr(eq + 1));
                if (is_z85_key(v)) return v;
            }
        }
    }
    return fail(errc::invalid_argument, text_or_path + ": no public key found");
}

}  // namespace taskmill::curve
