// Cron parsing and next-fire search (see cron.hpp).
#include "schedule/cron.hpp"

#include <array>
#include <cctype>
#include <charconv>
#include <chrono>
#include <sstream>
#include <vector>

#include <cctz/civil_time.h>

#include "model/validate.hpp"

namespace taskmill::broker {
namespace {

struct field_spec {
    const char* name;
    int lo;
    int hi;
    const char* const* names;  // lower-case, indexed from `names_base`; nullptr = numbers only
    int names_count;
    int names_base;
};

constexpr std::array<const char*, 12> month_names = {"jan", "feb", "mar", "apr", "may", "jun",
                                                     "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 7> day_names = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

const std::array<field_spec, 5> specs = {{
    {"minute", 0, 59, nullptr, 0, 0},
    {"hour", 0, 23, nullptr, 0, 0},
    {"day of month", 1, 31, nullptr, 0, 0},
    {"month", 1, 12, month_names.data(), 12, 1},
    {"day of week", 0, 7, day_names.data(), 7, 0},  // 7 = Sunday too
}};

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& c : out) {
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
    return out;
}

failure field_error(const field_spec& f, const std::string& why) {
    return fail(errc::invalid_argument, std::string(f.name) + " field: " + why);
}

result<int> parse_value(const field_spec& f, std::string_view s) {
    if (f.names != nullptr) {
        auto l = lower(s);
        for (int i = 0; i < f.names_count; ++i) {
            if (l == f.names[i]) {
                return i + f.names_base;
            }
        }
    }
    int v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc{} || p != s.data() + s.size()) {
        return field_error(f, "'" + std::string(s) + "' is not a number" + (f.names ? " or a name" : ""));
    }
    if (v < f.lo || v > f.hi) {
        return field_error(f,
                           std::to_string(v) + " is out of range " + std::to_string(f.lo) + "-" + std::to_string(f.hi));
    }
    return v;
}

// One comma-separated item: "*", "a", "a-b", each with an optional "/step".
result<void> parse_item(const field_spec& f, std::string_view item, std::vector<bool>& out) {
    int step = 1;
    if (auto slash = item.find('/'); slash != std::string_view::npos) {
        auto st = item.substr(slash + 1);
        auto [p, ec] = std::from_chars(st.data(), st.data() + st.size(), step);
        if (st.empty() || ec != std::errc{} || p != st.data() + st.size() || step <= 0) {
            return field_error(f, "step '" + std::string(st) + "' must be a positive number");
        }
        item = item.substr(0, slash);
    }
    int a = f.lo;
    int b = f.hi;
    if (item == "*") {
        if (f.hi == 7) {
            b = 6;  // 7 is an alias of 0, not a day of its own
        }
    } else if (auto dash = item.find('-'); dash != std::string_view::npos) {
        auto x = parse_value(f, item.substr(0, dash));
        auto y = parse_value(f, item.substr(dash + 1));
        if (!x) return failure{x.error()};
        if (!y) return failure{y.error()};
        a = *x;
        b = *y;
        if (a > b) {
            return field_error(f, "range " + std::string(item) + " runs backwards");
        }
    } else {
        auto x = parse_value(f, item);
        if (!x) return failure{x.error()};
        a = *x;
        b = step > 1 ? f.hi : *x;  // "5/15" = from 5 to the end, every 15
    }
    for (int v = a; v <= b; v += step) {
        out[static_cast<std::size_t>(v)] = true;
    }
    return {};
}

result<std::vector<bool>> parse_field(const field_spec& f, std::string_view text) {
    std::vector<bool> bits(static_cast<std::size_t>(f.hi + 1), false);
    std::size_t start = 0;
    while (true) {
        auto comma = text.find(',', start);
        auto item = text.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start);
        if (item.empty()) {
            return field_error(f, "empty list item in '" + std::string(text) + "'");
        }
        if (auto ok = parse_item(f, item, bits); !ok) {
            return failure{ok.error()};
        }
        if (comma == std::string_view::npos) {
            break;
        }
        start = comma + 1;
    }
    return bits;
}

std::string expand_macro(std::string_view t) {
    auto l = lower(t);
    if (l == "@yearly" || l == "@annually") return "0 0 1 1 *";
    if (l == "@monthly") return "0 0 1 * *";
    if (l == "@weekly") return "0 0 * * 0";
    if (l == "@daily" || l == "@midnight") return "0 0 * * *";
    if (l == "@hourly") return "0 * * * *";
    return std::string(t);
}

template <std::size_t N> void copy_bits(const std::vector<bool>& from, std::bitset<N>& to) {
    for (std::size_t i = 0; i < from.size() && i < N; ++i) {
        to[i] = from[i];
    }
}

bool day_matches(const cron_expr& e, const cctz::civil_day& d) {
    int wd = 0;
    switch (cctz::get_weekday(d)) {
        case cctz::weekday::sunday: wd = 0; break;
        case cctz::weekday::monday: wd = 1; break;
        case cctz::weekday::tuesday: wd = 2; break;
        case cctz::weekday::wednesday: wd = 3; break;
        case cctz::weekday::thursday: wd = 4; break;
        case cctz::weekday::friday: wd = 5; break;
        case cctz::weekday::saturday: wd = 6; break;
    }
    bool dom = e.days[static_cast<std::size_t>(d.day())];
    bool dow = e.weekdays[static_cast<std::size_t>(wd)];
    // Vixie cron: when both fields are restricted, either one may match.
    if (e.dom_star || e.dow_star) {
        return dom && dow;
    }
    return dom || dow;
}

}  // namespace

result<cron_expr> parse_cron(std::string_view text, std::string_view tz_name) {
    cron_expr e;
    e.text = std::string(text);
    std::istringstream in(expand_macro(text));
    std::vector<std::string> parts;
    for (std::string p; in >> p;) {
        parts.push_back(p);
    }
    if (parts.size() != 5) {
        return fail(errc::invalid_argument, "cron needs 5 fields (minute hour day-of-month month day-of-week), got " +
                                                std::to_string(parts.size()) + " in '" + std::string(text) + "'");
    }
    std::array<std::vector<bool>, 5> bits;
    for (std::size_t i = 0; i < 5; ++i) {
        auto b = parse_field(specs[i], parts[i]);
        if (!b) {
            return failure{b.error()};
        }
        bits[i] = std::move(*b);
    }
    if (bits[4][7]) {
        bits[4][0] = true;
    }
    copy_bits(bits[0], e.minutes);
    copy_bits(bits[1], e.hours);
    copy_bits(bits[2], e.days);
    copy_bits(bits[3], e.months);
    copy_bits(bits[4], e.weekdays);
    e.dom_star = parts[2][0] == '*';
    e.dow_star = parts[4][0] == '*';
    e.tz_name = tz_name.empty() ? "UTC" : std::string(tz_name);
    if (tz_name.empty() || tz_name == "UTC") {
        e.tz = cctz::utc_time_zone();
    } else if (!cctz::load_time_zone(std::string(tz_name), &e.tz)) {
        return fail(errc::invalid_argument, "unknown time zone '" + std::string(tz_name) +
                                                "' (an IANA name such as Europe/Paris; is tzdata installed?)");
    }
    if (!next_fire(e, 0)) {
        return fail(errc::invalid_argument, "'" + std::string(text) + "' never matches a date");
    }
    return e;
}

std::optional<int64_t> next_fire(const cron_expr& e, int64_t after_ms) {
    using namespace std::chrono;
    auto after_s = after_ms >= 0 ? after_ms / 1000 : -((-after_ms + 999) / 1000);
    auto local = cctz::convert(cctz::time_point<cctz::seconds>(seconds(after_s)), e.tz);
    auto cm = cctz::civil_minute(local) + 1;
    const auto last_year = cm.year() + 10;
    while (cm.year() <= last_year) {
        if (!e.months[static_cast<std::size_t>(cm.month())]) {
            cm = cctz::civil_minute(cctz::civil_month(cm) + 1);
            continue;
        }
        if (!day_matches(e, cctz::civil_day(cm))) {
            cm = cctz::civil_minute(cctz::civil_day(cm) + 1);
            continue;
        }
        if (!e.hours[static_cast<std::size_t>(cm.hour())]) {
            cm = cctz::civil_minute(cctz::civil_hour(cm) + 1);
            continue;
        }
        if (!e.minutes[static_cast<std::size_t>(cm.minute())]) {
            cm += 1;
            continue;
        }
        auto look = e.tz.lookup(cctz::civil_second(cm));
        auto tp = look.kind == cctz::time_zone::civil_lookup::SKIPPED ? look.trans : look.pre;
        int64_t ms = static_cast<int64_t>(tp.time_since_epoch().count()) * 1000;
        if (ms > after_ms) {
            return ms;
        }
        cm += 1;  // the first occurrence of a repeated time is already past
    }
    return std::nullopt;
}

result<int64_t> parse_every(std::string_view text) {
    std::size_t i = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])) != 0) {
        ++i;
    }
    int64_t n = 0;
    auto [p, ec] = std::from_chars(text.data(), text.data() + i, n);
    auto unit = text.substr(i);
    if (i == 0 || ec != std::errc{} || n <= 0) {
        return fail(errc::invalid_argument,
                    "every = '" + std::string(text) + "': expected a positive number and a unit (30s, 5m, 2h, 1d)");
    }
    int64_t mult = 0;
    if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60'000;
    else if (unit == "h") mult = 3'600'000;
    else if (unit == "d") mult = 86'400'000;
    if (mult == 0) {
        return fail(errc::invalid_argument, "every = '" + std::string(text) + "': unit must be s, m, h or d");
    }
    if (n > max_duration_ms / mult) {
        return fail(errc::invalid_argument, "every = '" + std::string(text) + "': longer than 10 years");
    }
    return n * mult;
}

}  // namespace taskmill::broker
