#include "index/task_index.hpp"

#include <algorithm>
#include <array>
#include <cctype>

#include "store/keys.hpp"

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

namespace {

// The kinds of entry (first byte of an index key). Layouts:
//   's' state(1) time(8) id(16)               every task, by state
//   'q' queue \0 state(1) time(8) id(16)      by queue and state
//   'h' handler \0 state(1) time(8) id(16)    by handler (no @version) and state
//   'Q' queue \0 id(16)                       by queue, any state
//   'H' handler \0 id(16)                     by handler, any state
// time is the finish time in a final state, the creation time otherwise;
// ids begin with the creation time, so 'Q' and 'H' run in creation order.
constexpr char by_state = 's';
constexpr char by_queue_state = 'q';
constexpr char by_handler_state = 'h';
constexpr char by_queue = 'Q';
constexpr char by_handler = 'H';
constexpr std::size_t id_size = 16;

// The store keeps a running task QUEUED (engine::save), so does the index.
task_state stored_state(task_state s) { return s == task_state::running ? task_state::queued : s; }

// QUEUED and RUNNING are listed from memory (live_index.hpp), the other
// states from here.
bool has_state_entries(task_state s) { return stored_state(s) != task_state::queued; }

int64_t time_in(task_state s, const task_record& r) { return is_final(s) ? r.finished_ms : r.created_ms; }

std::string handler_name(const task_record& r) { return r.handler.substr(0, r.handler.find('@')); }

std::string named_prefix(char kind, std::string_view name) {
    std::string k(1, kind);
    k.append(name);
    k.push_back('\0');
    return k;
}

void append_timed(std::string& k, task_state s, int64_t time) {
    k.push_back(static_cast<char>(static_cast<uint8_t>(s)));
    keys::put_u64(k, static_cast<uint64_t>(std::max<int64_t>(time, 0)));
}

std::string timed_key(std::string prefix, task_state s, int64_t time, const task_id& id) {
    append_timed(prefix, s, time);
    prefix.append(id_bytes(id));
    return prefix;
}

// The entries that depend on the state (and so on the time).
std::array<std::string, 3> state_keys(const task_record& r, task_state s, int64_t time) {
    s = stored_state(s);
    return {timed_key(std::string(1, by_state), s, time, r.id),
            timed_key(named_prefix(by_queue_state, r.queue), s, time, r.id),
            timed_key(named_prefix(by_handler_state, handler_name(r)), s, time, r.id)};
}

std::array<std::string, 2> fixed_keys(const task_record& r) {
    return {named_prefix(by_queue, r.queue) + std::string(id_bytes(r.id)),
            named_prefix(by_handler, handler_name(r)) + std::string(id_bytes(r.id))};
}

result<void> put_all(transaction& t, table tb, const auto& ks) {
    for (const auto& k : ks) {
        if (auto rc = t.put(tb, k, ""); !rc) {
            return rc;
        }
    }
    return {};
}

result<void> erase_all(transaction& t, table tb, const auto& ks) {
    for (const auto& k : ks) {
        if (auto rc = t.erase(tb, k); !rc) {
            return rc;
        }
    }
    return {};
}

// Where a scan reads: one table, the keys under `prefix` whose rest is
// `rest` bytes long and ends with the id. `timed`: the rest starts with a
// state and the time the filter compares (so since/until bound the scan).
struct plan {
    table tb = table::index;
    std::string prefix;
    std::size_t rest = id_size;
    bool timed = false;
    // The rest begins with the creation ms (6 bytes of the id): since/until
    // bound the scan when the filter compares the creation time.
    bool by_creation = false;
};

plan choose(const task_filter& f) {
    const auto state = f.state ? std::optional(stored_state(*f.state)) : std::nullopt;
    plan p;
    auto timed = [&](std::string prefix) {
        p.prefix = std::move(prefix);
        p.prefix.push_back(static_cast<char>(static_cast<uint8_t>(*state)));
        p.rest = 8 + id_size;
        p.timed = true;
    };
    // Most selective first: a tag is usually small; a handler or a queue
    // with a state narrows two ways at once.
    if (!f.tag.empty()) {
        p.tb = table::tags;
        p.prefix = keys::tag_prefix(f.tag);
        p.by_creation = !state || !is_final(*state);
    } else if (state && !f.handler.empty()) {
        timed(named_prefix(by_handler_state, f.handler));
    } else if (state && !f.queue.empty()) {
        timed(named_prefix(by_queue_state, f.queue));
    } else if (state) {
        timed(std::string(1, by_state));
    } else if (!f.handler.empty()) {
        p.prefix = named_prefix(by_handler, f.handler);
        p.by_creation = true;
    } else if (!f.queue.empty()) {
        p.prefix = named_prefix(by_queue, f.queue);
        p.by_creation = true;
    } else {
        p.tb = table::tasks;
        p.by_creation = true;
    }
    return p;
}

std::string to_hex_text(std::string_view raw) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(raw.size() * 2);
    for (unsigned char c : raw) {
        out.push_back(digits[c >> 4]);
        out.push_back(digits[c & 15]);
    }
    return out;
}

std::optional<std::string> from_hex_text(std::string_view hex) {
    if (hex.size() % 2 != 0) {
        return std::nullopt;
    }
    auto nibble = [](char c) -> int {
        if (c >= '0' && c <= '9') {
            return c - '0';
        }
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    };
    std::string out;
    out.reserve(hex.size() / 2);
    for (std::size_t i = 0; i < hex.size(); i += 2) {
        int hi = nibble(hex[i]);
        int lo = nibble(hex[i + 1]);
        if (hi < 0 || lo < 0) {
            return std::nullopt;
        }
        out.push_back(static_cast<char>(hi * 16 + lo));
    }
    return out;
}

// The key of the plan where a task given by id (an old client's `before`)
// sits: entries strictly below it are older than the task.
result<std::string> position_of_id(transaction& t, const plan& p, const task_filter& f, const task_id& id) {
    if (!p.timed) {
        return p.prefix + std::string(id_bytes(id));
    }
    int64_t time = created_ms(id_bytes(id));
    if (f.state && is_final(*f.state)) {
        auto raw = t.get(table::tasks, id_bytes(id));
        if (raw) {
            if (auto r = decode_record(*raw)) {
                time = r->finished_ms;
            }
        } else if (raw.error().code != errc::not_found) {
            return fail(raw.error().code, raw.error().message);
        }
    }
    std::string k = p.prefix;
    keys::put_u64(k, static_cast<uint64_t>(std::max<int64_t>(time, 0)));
    return k + std::string(id_bytes(id));
}

// Where a scan starts: the key it starts below ("" = the newest), or an
// error for a cursor that is not one of this listing's.
result<std::string> start_of(transaction& t, const plan& p, const task_filter& f, std::string_view cursor) {
    if (cursor.empty()) {
        return std::string();
    }
    auto raw = from_hex_text(cursor);
    if (raw && raw->size() == id_size && !(p.tb == table::tasks)) {
        // A task id, as clients before cursors sent it.
        return position_of_id(t, p, f, *id_from_bytes(*raw));
    }
    if (!raw || raw->size() != p.prefix.size() + p.rest || raw->compare(0, p.prefix.size(), p.prefix) != 0) {
        return fail(errc::invalid_argument, "before must be a task id or the `next` of the same listing");
    }
    return *raw;
}

// The key just above every entry the time range lets in (reverse scans
// start at the last key <= it), or "" for the newest.
std::string upper_bound(const plan& p, const task_filter& f) {
    if (f.until_ms <= 0 || !(p.timed || p.by_creation)) {
        return p.prefix.empty() ? std::string() : p.prefix + std::string(p.rest, '\xff');
    }
    std::string k = p.prefix;
    if (p.timed) {
        keys::put_u64(k, static_cast<uint64_t>(f.until_ms));  // entries at until_ms are longer, so above
        return k;
    }
    std::string ms;
    keys::put_u64(ms, static_cast<uint64_t>(f.until_ms));
    return k + ms.substr(2);  // the id's first 6 bytes
}

// The time the filter compares, read from an entry's rest, if the order of
// the plan is that time.
std::optional<int64_t> entry_time(const plan& p, std::string_view rest) {
    if (p.timed) {
        return static_cast<int64_t>(keys::get_u64(rest));
    }
    if (p.by_creation) {
        return created_ms(rest.substr(rest.size() - id_size));
    }
    return std::nullopt;
}

}  // namespace

result<void> add(transaction& t, const task_record& r) {
    if (has_state_entries(r.state)) {
        if (auto rc = put_all(t, table::index, state_keys(r, r.state, time_in(r.state, r))); !rc) {
            return rc;
        }
    }
    return put_all(t, table::index, fixed_keys(r));
}

result<void> remove(transaction& t, const task_record& r) {
    if (has_state_entries(r.state)) {
        if (auto rc = erase_all(t, table::index, state_keys(r, r.state, time_in(r.state, r))); !rc) {
            return rc;
        }
    }
    return erase_all(t, table::index, fixed_keys(r));
}

result<void> remove(transaction& t, const std::vector<task_record>& rs) {
    // One kind of entry after another, each kind's newest first: a batch's
    // entries of a kind lie near each other, so the store's erase finds most
    // on the page it looked at last; and a page holds its newest entries
    // lowest, so LMDB moves little of it to close the gap.
    std::vector<std::array<std::string, 5>> keys(rs.size());
    for (std::size_t i = 0; i < rs.size(); ++i) {
        const auto& r = rs[i];
        if (has_state_entries(r.state)) {
            auto timed = state_keys(r, r.state, time_in(r.state, r));
            std::move(timed.begin(), timed.end(), keys[i].begin());
        }
        auto fixed = fixed_keys(r);
        std::move(fixed.begin(), fixed.end(), keys[i].begin() + 3);
    }
    for (std::size_t kind = 0; kind < 5; ++kind) {
        for (auto it = keys.rbegin(); it != keys.rend(); ++it) {
            if (const auto& key = (*it)[kind]; !key.empty()) {
                if (auto rc = t.erase(table::index, key); !rc) {
                    return rc;
                }
            }
        }
    }
    return {};
}

result<void> remove_queued_entries(transaction& t, const task_record& r) {
    return erase_all(t, table::index, state_keys(r, task_state::queued, r.created_ms));
}

result<void> moved(transaction& t, const task_record& r, task_state from, int64_t from_time) {
    const int64_t to_time = time_in(r.state, r);
    if (stored_state(from) == stored_state(r.state) && from_time == to_time) {
        return {};
    }
    if (has_state_entries(from)) {
        if (auto rc = erase_all(t, table::index, state_keys(r, from, from_time)); !rc) {
            return rc;
        }
    }
    return has_state_entries(r.state) ? put_all(t, table::index, state_keys(r, r.state, to_time)) : result<void>();
}

int64_t time_in_state(const task_record& r, task_state s) { return time_in(s, r); }

std::string state_key(const task_record& r, task_state s) {
    return timed_key(std::string(1, by_state), stored_state(s), time_in(s, r), r.id);
}

result<std::vector<finished_entry>> oldest_finished(transaction& t, task_state s, std::string_view from,
                                                    std::size_t max) {
    std::string prefix(1, by_state);
    prefix.push_back(static_cast<char>(static_cast<uint8_t>(s)));
    std::vector<finished_entry> out;
    auto rc = t.scan(
        table::index, std::max<std::string_view>(from, prefix), false, [&](std::string_view k, std::string_view) {
            if (k.substr(0, prefix.size()) != prefix) {
                return false;
            }
            if (k.size() != prefix.size() + 8 + id_size) {
                return true;  // not of this layout: passed over
            }
            if (auto id = id_from_bytes(k.substr(k.size() - id_size))) {
                out.push_back({std::string(k), *id, static_cast<int64_t>(keys::get_u64(k.substr(prefix.size())))});
            }
            return out.size() < max;
        });
    if (!rc) {
        return fail(rc.error().code, rc.error().message);
    }
    return out;
}

result<std::string> walk(transaction& t, const task_filter& f, std::string_view cursor, uint32_t budget,
                         const std::function<step(const task_id&)>& fn, scan_stats* stats) {
    const plan p = choose(f);
    auto start = start_of(t, p, f, cursor);
    if (!start) {
        return fail(start.error().code, start.error().message);
    }
    const std::string from = start->empty() ? upper_bound(p, f) : *start;
    std::string next;  // the key below which the rest lies
    uint32_t read = 0;
    bool more = false;
    auto rc = t.scan(p.tb, from, true, [&](std::string_view k, std::string_view) {
        if (k.substr(0, p.prefix.size()) != p.prefix) {
            return false;  // past the entries of the plan
        }
        if (k == *start || k.size() != p.prefix.size() + p.rest) {
            return true;  // the cursor itself, or another name's entry (a name holding \0)
        }
        const auto rest = k.substr(p.prefix.size());
        if (auto time = entry_time(p, rest); time && f.since_ms > 0 && *time < f.since_ms) {
            return false;  // older than the range: nothing further matches
        }
        if (read >= budget) {
            more = true;
            return false;
        }
        ++read;
        auto id = id_from_bytes(rest.substr(rest.size() - id_size));
        const step s = id ? fn(*id) : step::next;
        if (s == step::stop_before) {
            more = true;
            return false;
        }
        next = std::string(k);
        if (s == step::stop_after) {
            more = true;
            return false;
        }
        return true;
    });
    if (stats) {
        stats->entries_read = read;
    }
    if (!rc) {
        return fail(rc.error().code, rc.error().message);
    }
    if (!more) {
        return std::string();
    }
    // Stopped before anything was taken: resume where this began.
    return next.empty() ? std::string(cursor) : to_hex_text(next);
}

result<std::string> scan(transaction& t, const task_filter& f, std::string_view cursor, uint32_t budget,
                         const std::function<bool(const task_id&)>& fn) {
    return walk(t, f, cursor, budget, [&](const task_id& id) { return fn(id) ? step::next : step::stop_after; });
}

}  // namespace task_index
}  // namespace taskmill::broker
