#include <taskmill/protocol/time_text.hpp>

#include <chrono>
#include <optional>
#include <string>

#include <taskmill/protocol/duration.hpp>

namespace taskmill::protocol {

namespace {

// Reads exactly `digits` decimal digits at `pos`.
std::optional<int> number_at(std::string_view s, std::size_t pos, std::size_t digits) {
    if (pos + digits > s.size()) {
        return std::nullopt;
    }
    int v = 0;
    for (std::size_t i = pos; i < pos + digits; ++i) {
        if (s[i] < '0' || s[i] > '9') {
            return std::nullopt;
        }
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

std::optional<int64_t> days_of(std::string_view s) {
    auto y = number_at(s, 0, 4);
    auto m = number_at(s, 5, 2);
    auto d = number_at(s, 8, 2);
    if (!y || !m || !d || s[4] != '-' || s[7] != '-') {
        return std::nullopt;
    }
    using namespace std::chrono;
    const year_month_day ymd{year{*y}, month{static_cast<unsigned>(*m)}, day{static_cast<unsigned>(*d)}};
    if (!ymd.ok()) {
        return std::nullopt;
    }
    return sys_days(ymd).time_since_epoch().count();
}

// "HH:MM:SS[.fff]Z" from `pos`: ms into the day.
std::optional<int64_t> time_of_day(std::string_view s, std::size_t pos) {
    auto h = number_at(s, pos, 2);
    auto mi = number_at(s, pos + 3, 2);
    auto se = number_at(s, pos + 6, 2);
    if (!h || !mi || !se || s[pos + 2] != ':' || s[pos + 5] != ':' || *h > 23 || *mi > 59 || *se > 59) {
        return std::nullopt;
    }
    int64_t ms = ((*h * 60LL + *mi) * 60 + *se) * 1000;
    std::size_t i = pos + 8;
    if (i < s.size() && s[i] == '.') {
        int64_t scale = 100;
        std::size_t digits = 0;
        for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++digits) {
            ms += (s[i] - '0') * scale;
            scale /= 10;
        }
        if (digits == 0) {
            return std::nullopt;
        }
    }
    if (i + 1 != s.size() || (s[i] != 'Z' && s[i] != 'z')) {
        return std::nullopt;  // UTC only: a time without a zone is ambiguous
    }
    return ms;
}

std::optional<int64_t> iso8601_ms(std::string_view s) {
    if (s.size() < 10) {
        return std::nullopt;
    }
    auto days = days_of(s);
    if (!days) {
        return std::nullopt;
    }
    if (s.size() == 10) {
        return *days * 86'400'000;
    }
    if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') {
        return std::nullopt;
    }
    auto ms = time_of_day(s, 11);
    if (!ms) {
        return std::nullopt;
    }
    return *days * 86'400'000 + *ms;
}

}  // namespace

result<int64_t> parse_time_ms(std::string_view text, int64_t now_ms) {
    if (auto t = iso8601_ms(text); t && *t > 0) {
        return *t;
    }
    if (auto ago = parse_duration_ms(text); ago && *ago <= now_ms) {
        return now_ms - *ago;
    }
    return fail(errc::invalid_argument, "time '" + std::string(text) +
                                            "': expected an ISO 8601 UTC time (2026-12-01T10:00:00Z or "
                                            "2026-12-01) or a duration ago (90s, 1h, 7d)");
}

result<int64_t> parse_time_ms(std::string_view text) {
    using namespace std::chrono;
    return parse_time_ms(text, duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count());
}

}  // namespace taskmill::protocol
