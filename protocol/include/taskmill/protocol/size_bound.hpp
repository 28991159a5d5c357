// taskmill/protocol/size_bound.hpp -- upper bounds of encoded message sizes.
//
// A receiver refuses a body over its limit (default_max_body unless
// configured) and drops it; a dropped DISPATCH or RESULTS strands its tasks.
// So a sender that builds a message from a list (DISPATCH, RESULTS, TASKS,
// DONE) cuts it into pieces that fit, using these bounds: cheap, no encoding
// twice. Header-only.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include <taskmill/protocol/messages.hpp>

namespace taskmill::protocol {

// What a message holds besides its list (req, ok, error, note, next,
// started, ...), counting generously.
inline constexpr std::size_t envelope_bound = 1024;

namespace detail {
// A msgpack str/bin header is at most 5 bytes.
inline std::size_t str_bound(const std::string& s) { return 5 + s.size(); }
inline std::size_t list_bound(const std::vector<std::string>& v) {
    std::size_t n = 5;
    for (const auto& s : v) {
        n += str_bound(s);
    }
    return n;
}
}  // namespace detail

// Keys (at most 13 bytes each), numbers (at most 9) and headers are covered
// by the constant; the variable parts are added.
inline std::size_t size_bound(const work_item& w) {
    return 256 + detail::str_bound(w.id) + detail::str_bound(w.handler) + detail::str_bound(w.payload) +
           detail::str_bound(w.parent) + (w.checkpoint ? detail::str_bound(*w.checkpoint) : 0);
}

inline std::size_t size_bound(const attempt_info& a) {
    return 128 + detail::str_bound(a.worker) + detail::str_bound(a.outcome) + detail::str_bound(a.error) +
           detail::str_bound(a.version);
}

inline std::size_t size_bound(const task_info& t) {
    std::size_t history = 5;
    for (const auto& a : t.history) {
        history += size_bound(a);
    }
    return 512 + detail::str_bound(t.id) + detail::str_bound(t.handler) + detail::str_bound(t.queue) +
           detail::str_bound(t.state) + detail::str_bound(t.error) +
           (t.progress ? detail::str_bound(t.progress->note) : 0) + (t.result ? detail::str_bound(*t.result) : 0) +
           detail::str_bound(t.parent) + detail::list_bound(t.tags) + detail::list_bound(t.children) +
           detail::str_bound(t.worker) + (t.payload ? detail::str_bound(*t.payload) : 0) + history;
}

inline std::size_t size_bound(const outcome& o) {
    return 256 + detail::str_bound(o.id) + detail::str_bound(o.status) + detail::str_bound(o.result) +
           detail::str_bound(o.error) + detail::str_bound(o.version);
}

}  // namespace taskmill::protocol
