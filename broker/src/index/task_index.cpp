#include "index/task_index.hpp"

#include <algorithm>

namespace taskmill::broker {

int64_t task_filter::time_of(const task_record& r) const {
    return state && is_final(*state) ? r.finished_ms : r.created_ms;
}

bool task_filter::matches(const task_record& r) const {
    if (state && r.state != *state) {
        return false;
    }
    if (!queue.empty() && r.queue != queue) {
        return false;
    }
    if (!handler.empty() && r.handler.substr(0, r.handler.find('@')) != handler) {
        return false;
    }
    if (!tag.empty() && std::find(r.tags.begin(), r.tags.end(), tag) == r.tags.end()) {
        return false;
    }
    const int64_t t = time_of(r);
    return (since_ms == 0 || t >= since_ms) && (until_ms == 0 || t < until_ms);
}

std::string task_filter::text() const {
    std::string out;
    auto add = [&](std::string_view k, const std::string& v) {
        if (!v.empty()) {
            out += (out.empty() ? "" : " ") + std::string(k) + "=" + v;
        }
    };
    add("state", state ? std::string(to_string(*state)) : "");
    add("queue", queue);
    add("handler", handler);
    add("tag", tag);
    add("since_ms", since_ms ? std::to_string(since_ms) : "");
    add("until_ms", until_ms ? std::to_string(until_ms) : "");
    return out.empty() ? "all tasks" : out;
}

namespace task_index {

// Placeholder layout: no entries; scan walks the tasks table by id.
result<void> add(transaction&, const task_record&) { return {}; }
result<void> remove(transaction&, const task_record&) { return {}; }

result<std::string> scan(transaction& t, const task_filter&, std::string_view cursor, uint32_t budget,
                         const std::function<bool(const task_id&)>& fn) {
    std::string next;
    uint32_t read = 0;
    bool stopped = false;
    auto rc = t.scan(table::tasks, cursor, true, [&](std::string_view k, std::string_view) {
        if (!cursor.empty() && k == cursor) {
            return true;
        }
        if (read >= budget) {
            return false;
        }
        ++read;
        next = std::string(k);
        auto id = id_from_bytes(k);
        stopped = id && !fn(*id);
        return !stopped;
    });
    if (!rc) {
        return fail(rc.error().code, rc.error().message);
    }
    return read >= budget || stopped ? next : std::string();
}

}  // namespace task_index
}  // namespace taskmill::broker
