#include <taskmill/protocol/rate.hpp>

#include <charconv>
#include <cmath>
#include <string>

namespace taskmill::protocol {

namespace {

// The number and the seconds its unit stands for; 0 seconds = a bad unit.
std::pair<std::string_view, double> split_rate(std::string_view text) {
    auto slash = text.find('/');
    if (slash == std::string_view::npos) {
        return {text, 1};
    }
    auto unit = text.substr(slash + 1);
    return {text.substr(0, slash), unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : 0};
}

}  // namespace

result<double> parse_rate(std::string_view text) {
    auto [number, per] = split_rate(text);
    if (per == 0) {
        return fail(errc::invalid_argument, "rate '" + std::string(text) + "': the unit after / must be s, m or h");
    }
    double n = 0;
    auto [p, ec] = std::from_chars(number.data(), number.data() + number.size(), n);
    if (number.empty() || ec != std::errc{} || p != number.data() + number.size() || !std::isfinite(n) || n <= 0 ||
        n / per > max_rate) {
        return fail(errc::invalid_argument,
                    "rate '" + std::string(text) + "': expected a positive number of tasks per s, m or h (100/s)");
    }
    return n / per;
}

result<double> parse_rate_or_zero(std::string_view text) {
    auto [number, per] = split_rate(text);
    if (per != 0 && number == "0") {
        return 0.0;
    }
    auto r = parse_rate(text);
    if (!r) {
        return fail(errc::invalid_argument, r.error().message + ", or 0 for no limit");
    }
    return r;
}

}  // namespace taskmill::protocol
