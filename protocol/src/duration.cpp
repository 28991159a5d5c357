#include <taskmill/protocol/duration.hpp>

#include <array>
#include <cctype>
#include <charconv>

namespace taskmill::protocol {
namespace {

struct unit {
    std::string_view name;
    int64_t ms;
};
// Longest names first where one is the prefix of another ("ms" before "m").
constexpr std::array<unit, 5> units{{{"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}}};

result<int64_t> bad(std::string_view text, std::string_view why) {
    return fail(errc::invalid_argument, "duration '" + std::string(text) + "': " + std::string(why) +
                                            " (e.g. 0, 500ms, 30s, 5m, 24h, 7d, 1h30m)");
}

}  // namespace

result<int64_t> parse_duration_ms(std::string_view text) {
    if (text == "0") {
        return 0;
    }
    if (text.empty()) {
        return bad(text, "empty");
    }
    int64_t total = 0;
    std::size_t i = 0;
    while (i < text.size()) {
        std::size_t digits = i;
        while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits])) != 0) {
            ++digits;
        }
        int64_t n = 0;
        auto [p, ec] = std::from_chars(text.data() + i, text.data() + digits, n);
        if (digits == i || ec != std::errc{}) {
            return bad(text, "expected a whole number before each unit");
        }
        const unit* u = nullptr;
        for (const auto& candidate : units) {
            if (text.substr(digits, candidate.name.size()) == candidate.name) {
                u = &candidate;
                break;
            }
        }
        if (u == nullptr) {
            return bad(text, "each number needs a unit: ms, s, m, h or d");
        }
        if (n > (max_duration_ms - total) / u->ms) {
            return bad(text, "longer than 100 years");
        }
        total += n * u->ms;
        i = digits + u->name.size();
    }
    return total;
}

std::string format_duration_ms(int64_t ms) {
    if (ms <= 0) {
        return "0";
    }
    std::string out;
    for (auto it = units.rbegin(); it != units.rend(); ++it) {
        if (ms >= it->ms) {
            out += std::to_string(ms / it->ms);
            out += it->name;
            ms %= it->ms;
        }
    }
    return out;
}

}  // namespace taskmill::protocol
