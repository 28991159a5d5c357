#include "model/validate.hpp"

#include <algorithm>
#include <cctype>

#include <taskmill/protocol/nesting.hpp>

namespace taskmill::broker {
namespace {

bool is_word_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '_' || c == '-'; }

bool is_word(std::string_view s) {
    if (s.empty() || s.size() > 64) {
        return false;
    }
    for (char c : s) {
        if (!is_word_char(c)) {
            return false;
        }
    }
    return true;
}

bool is_number(std::string_view s) {
    if (s.empty() || s.size() > 9) {
        return false;
    }
    for (char c : s) {
        if (std::isdigit(static_cast<unsigned char>(c)) == 0) {
            return false;
        }
    }
    return true;
}

// "2", "2.1" or "2.1.0".
bool is_version(std::string_view v) {
    int parts = 0;
    for (;;) {
        auto dot = v.find('.');
        if (!is_number(v.substr(0, dot)) || ++parts > 3) {
            return false;
        }
        if (dot == std::string_view::npos) {
            return true;
        }
        v.remove_prefix(dot + 1);
    }
}

// The first `parts` dot-separated parts of `version` ("2.1" of "2.1.0").
std::string_view leading_parts(std::string_view version, std::size_t parts) {
    std::size_t end = 0;
    for (std::size_t i = 0; i < parts; ++i) {
        end = version.find('.', i == 0 ? 0 : end + 1);
        if (end == std::string_view::npos) {
            return version;
        }
    }
    return version.substr(0, end);
}

std::string field_error(std::size_t i, const char* field, const std::string& why) {
    return "task " + std::to_string(i) + ": field '" + field + "' " + why;
}

std::string check_durations(std::size_t i, const protocol::task_spec& t, int64_t now_ms) {
    static const std::string range = "must be 0.." + std::to_string(max_duration_ms) + " (10 years)";
    for (auto [name, v] : {std::pair{"timeout_ms", t.timeout_ms},
                           {"ttl_ms", t.ttl_ms},
                           {"delay_ms", t.delay_ms},
                           {"backoff_base_ms", t.backoff_base_ms},
                           {"backoff_cap_ms", t.backoff_cap_ms},
                           {"keep_ms", t.keep_ms}}) {
        if (v && (*v < 0 || *v > max_duration_ms)) {
            return field_error(i, name, range);
        }
    }
    if (t.eta_ms && (*t.eta_ms < 0 || *t.eta_ms > now_ms + max_duration_ms)) {
        return field_error(i, "eta_ms", "must be a time (ms since 1970) at most 10 years from now");
    }
    return {};
}

// Checks one task; returns the error text or "" if fine.
std::string check_task(std::size_t i, const protocol::task_spec& t, const limits& lim, int64_t now_ms) {
    if (!parse_handler(t.handler)) {
        return field_error(i, "handler", "must look like ns.name, ns.name@X, ns.name@X.Y or ns.name@X.Y.Z");
    }
    if (!t.queue.empty() && !valid_queue_name(t.queue)) {
        return field_error(i, "queue", "must be 1-64 chars of [A-Za-z0-9_.-]");
    }
    if (t.priority && (*t.priority < 0 || *t.priority > 9)) {
        return field_error(i, "priority", "must be 0..9");
    }
    if (t.retries && (*t.retries < 0 || *t.retries > 1000)) {
        return field_error(i, "retries", "must be 0..1000");
    }
    if (auto why = check_durations(i, t, now_ms); !why.empty()) {
        return why;
    }
    if (t.backoff_factor && !(*t.backoff_factor >= 1.0 && *t.backoff_factor <= 100.0)) {
        return field_error(i, "backoff_factor", "must be 1..100");
    }
    if (t.payload.size() > lim.max_payload) {
        return field_error(i, "payload", "is over " + std::to_string(lim.max_payload) + " bytes");
    }
    // Rendering a payload (HTTP, workflow inputs) decodes it: refuse what
    // could not be decoded safely rather than store it.
    if (!protocol::msgpack_within_nesting(t.payload)) {
        return field_error(i, "payload", "nests deeper than " + std::to_string(protocol::max_nesting) + " levels");
    }
    if (t.tags.size() > lim.max_tags) {
        return field_error(i, "tags", "has more than " + std::to_string(lim.max_tags) + " tags");
    }
    for (const auto& tag : t.tags) {
        if (tag.empty() || tag.size() > lim.max_tag) {
            return field_error(i, "tags", "holds an empty tag or one over " + std::to_string(lim.max_tag) + " chars");
        }
    }
    if (t.key.size() > lim.max_key) {
        return field_error(i, "key", "is over " + std::to_string(lim.max_key) + " chars");
    }
    if (!t.key.empty() && t.key.front() == '\0') {
        return field_error(i, "key", "must not start with a NUL byte (reserved for subtask keys)");
    }
    return {};
}

}  // namespace

std::optional<handler_ref> parse_handler(std::string_view spec) {
    if (spec.size() > 160) {
        return std::nullopt;
    }
    handler_ref out;
    auto at = spec.find('@');
    std::string_view name = spec.substr(0, at);
    if (at != std::string_view::npos) {
        auto version = spec.substr(at + 1);
        if (!is_version(version)) {
            return std::nullopt;
        }
        out.version = std::string(version);
    }
    auto dot = name.find('.');
    if (dot == std::string_view::npos || !is_word(name.substr(0, dot)) || !is_word(name.substr(dot + 1))) {
        return std::nullopt;
    }
    out.name = std::string(name);
    return out;
}

bool handler_matches(const handler_ref& want, std::string_view name, std::string_view version) {
    if (want.name != name) {
        return false;
    }
    if (want.version.empty()) {
        return true;
    }
    // "2" matches 2.*, "2.1" matches 2.1.*, "2.1.0" only itself.
    auto parts = static_cast<std::size_t>(std::count(want.version.begin(), want.version.end(), '.')) + 1;
    return leading_parts(version, parts) == want.version;
}

bool valid_queue_name(std::string_view q) {
    if (q.empty() || q.size() > 64) {
        return false;
    }
    for (char c : q) {
        if (!is_word_char(c) && c != '.') {
            return false;
        }
    }
    return true;
}

result<void> validate_batch(const std::vector<protocol::task_spec>& tasks, const limits& lim, int64_t now_ms) {
    if (tasks.empty()) {
        return fail(errc::invalid_argument, "SUBMIT carries no tasks");
    }
    if (tasks.size() > lim.max_batch) {
        return fail(errc::invalid_argument, "SUBMIT batch of " + std::to_string(tasks.size()) +
                                                " tasks is over the limit of " + std::to_string(lim.max_batch));
    }
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        if (auto why = check_task(i, tasks[i], lim, now_ms); !why.empty()) {
            return fail(errc::invalid_argument, why);
        }
    }
    return {};
}

}  // namespace taskmill::broker
