#include "index/live_index.hpp"

#include <cctype>

namespace taskmill::broker {
namespace {

// The lowest id created at `ms`: every id below it was created before.
task_id first_id_at(int64_t ms) {
    task_id id{};
    for (std::size_t i = 0; i < 6; ++i) {
        id[5 - i] = static_cast<uint8_t>(static_cast<uint64_t>(ms) >> (8 * i));
    }
    return id;
}

bool all_hex(std::string_view text) {
    for (char c : text) {
        if (!std::isxdigit(static_cast<unsigned char>(c))) {
            return false;
        }
    }
    return true;
}

// The id a cursor stands for: a task id, or the hex of a store index key
// (which ends with the id) from a listing begun before these states left
// the store.
std::optional<task_id> cursor_id(std::string_view cursor) {
    constexpr std::size_t id_hex = 32;
    if (cursor.size() < id_hex || cursor.size() % 2 != 0 || !all_hex(cursor)) {
        return std::nullopt;
    }
    auto id = parse_task_id(cursor.substr(cursor.size() - id_hex));
    return id ? std::optional(*id) : std::nullopt;
}

// The handler's name without @version (and without the ready table's
// " alone" mark).
std::string_view bare_handler(std::string_view handler) { return handler.substr(0, handler.find_first_of("@ ")); }

}  // namespace

void live_index::set(const task_id& id, std::string_view queue, std::string_view handler, task_state s) {
    auto [it, fresh] = tasks_.try_emplace(id);
    if (fresh) {  // a task keeps its queue and handler
        it->second.queue = intern(queue);
        it->second.handler = intern(bare_handler(handler)) & max_name_number;
    }
    it->second.running = s == task_state::running ? 1 : 0;
}

void live_index::erase(const task_id& id) { tasks_.erase(id); }

uint32_t live_index::intern(std::string_view name) {
    if (auto n = known(name)) {
        return *n;
    }
    const auto n = static_cast<uint32_t>(numbers_.size());
    numbers_.emplace(std::string(name), n);
    return n;
}

std::optional<uint32_t> live_index::known(std::string_view name) const {
    auto it = numbers_.find(name);
    return it == numbers_.end() ? std::nullopt : std::optional(it->second);
}

bool live_index::matches(const entry& e, const task_filter& f, std::optional<uint32_t> queue,
                         std::optional<uint32_t> handler) const {
    if (f.state && (*f.state == task_state::running) != (e.running != 0)) {
        return false;
    }
    return (!queue || e.queue == *queue) && (!handler || e.handler == *handler);
}

result<std::string> live_index::walk(const task_filter& f, std::string_view cursor, uint32_t budget,
                                     const std::function<task_index::step(const task_id&)>& fn) const {
    std::optional<task_id> below;
    if (!cursor.empty()) {
        below = cursor_id(cursor);
        if (!below) {
            return fail(errc::invalid_argument, "before must be a task id or the `next` of the same listing");
        }
    }
    if (f.until_ms > 0 && (!below || first_id_at(f.until_ms) < *below)) {
        below = first_id_at(f.until_ms);
    }
    std::optional<uint32_t> queue;
    std::optional<uint32_t> handler;
    if ((!f.queue.empty() && !(queue = known(f.queue))) || (!f.handler.empty() && !(handler = known(f.handler)))) {
        return std::string();  // no task ever had that name
    }
    auto it = below ? tasks_.lower_bound(*below) : tasks_.end();
    std::optional<task_id> last;  // the id below which the rest lies
    auto resume = [&] { return last ? to_hex(*last) : std::string(cursor); };
    uint32_t read = 0;
    while (it != tasks_.begin()) {
        --it;
        const auto& [id, e] = *it;
        if (f.since_ms > 0 && created_ms(id) < f.since_ms) {
            return std::string();  // older than the range: nothing further matches
        }
        if (read >= budget) {
            return resume();
        }
        ++read;
        const auto s = matches(e, f, queue, handler) ? fn(id) : task_index::step::next;
        if (s == task_index::step::stop_before) {
            return resume();
        }
        last = id;
        if (s == task_index::step::stop_after) {
            return resume();
        }
    }
    return std::string();
}

}  // namespace taskmill::broker
