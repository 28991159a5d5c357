// The typed values of taskmill/config/loader.hpp: parsing and printing.
#include <taskmill/config/loader.hpp>

#include <charconv>
#include <cmath>
#include <system_error>

namespace taskmill::config {
namespace {

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

std::optional<bool> parse_bool(std::string_view s) {
    auto l = lower(s);
    if (l == "true" || l == "yes" || l == "on" || l == "1") return true;
    if (l == "false" || l == "no" || l == "off" || l == "0") return false;
    return std::nullopt;
}

std::string bool_text(bool b) { return b ? "true" : "false"; }

// A whole number of type T in [min, max], or why not.
template <typename T> std::optional<std::string> parse_whole(std::string_view s, T& target, T min, T max) {
    T n{};
    auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec == std::errc::invalid_argument || end != s.data() + s.size()) {
        return "'" + std::string(s) + "' is not a whole number";
    }
    if (ec == std::errc::result_out_of_range || n < min || n > max) {
        return "'" + std::string(s) + "' is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    }
    target = n;
    return std::nullopt;
}

template <typename T> value whole(T& target, T min, T max) {
    return {[&target, min, max](std::string_view s) { return parse_whole(s, target, min, max); },
            [&target] { return std::vector<std::string>{std::to_string(target)}; }};
}

}  // namespace

value text(std::string& target) {
    return {[&target](std::string_view s) -> std::optional<std::string> {
                target = std::string(s);
                return std::nullopt;
            },
            [&target] { return std::vector<std::string>{target}; }};
}

value boolean(bool& target) {
    return {[&target](std::string_view s) -> std::optional<std::string> {
                auto b = parse_bool(s);
                if (!b) return "'" + std::string(s) + "' is not one of true false (yes no on off 1 0)";
                target = *b;
                return std::nullopt;
            },
            [&target] { return std::vector<std::string>{bool_text(target)}; }};
}

value switch_flag(bool& target) {
    auto v = boolean(target);
    v.takes_argument = false;
    return v;
}

value choice(std::string& target, std::vector<std::string> allowed) {
    return {[&target, allowed](std::string_view s) -> std::optional<std::string> {
                for (const auto& a : allowed) {
                    if (a == s) {
                        target = a;
                        return std::nullopt;
                    }
                }
                std::string names;
                for (const auto& a : allowed) names += (names.empty() ? "" : " ") + a;
                return "'" + std::string(s) + "' is not one of " + names;
            },
            [&target] { return std::vector<std::string>{target}; }};
}

value list(std::vector<std::string>& target) {
    value v{[&target](std::string_view s) -> std::optional<std::string> {
                target.emplace_back(s);
                return std::nullopt;
            },
            [&target] { return target; }};
    v.repeatable = true;
    return v;
}

value real(double& target, double min, double max) {
    return {[&target, min, max](std::string_view s) -> std::optional<std::string> {
                double d = 0;
                auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
                if (s.empty() || ec != std::errc() || end != s.data() + s.size() || !std::isfinite(d)) {
                    return "'" + std::string(s) + "' is not a number";
                }
                if (d < min || d > max) {
                    char lo[32];
                    char hi[32];
                    auto l = std::to_chars(lo, lo + sizeof lo, min).ptr;
                    auto h = std::to_chars(hi, hi + sizeof hi, max).ptr;
                    return "'" + std::string(s) + "' is out of range [" + std::string(lo, l) + ", " +
                           std::string(hi, h) + "]";
                }
                target = d;
                return std::nullopt;
            },
            [&target] {
                char buf[32];
                auto end = std::to_chars(buf, buf + sizeof buf, target).ptr;
                return std::vector<std::string>{std::string(buf, end)};
            }};
}

value number(int64_t& target, int64_t min, int64_t max) { return whole(target, min, max); }
value number(int32_t& target, int32_t min, int32_t max) { return whole(target, min, max); }
value number(uint64_t& target, uint64_t min, uint64_t max) { return whole(target, min, max); }
value number(uint32_t& target, uint32_t min, uint32_t max) { return whole(target, min, max); }

}  // namespace taskmill::config
