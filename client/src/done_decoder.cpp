#include "done_decoder.hpp"

#include <cstdint>

#include <taskmill/protocol/mp_reader.hpp>

namespace taskmill::client::detail {

namespace {

// Thrown (internally only) when the fast path meets what it leaves to the
// reference decoder.
struct give_up {};

using reader = protocol::mp_reader;

void read_strings(reader& r, std::vector<std::string>& out) {
    const auto n = r.array_size();
    out.clear();
    out.reserve(n);
    for (uint32_t i = 0; i < n; ++i) {
        out.emplace_back(r.str());
    }
}

void read_task(reader& r, protocol::task_info& t) {
    const auto n = r.map_size();
    for (uint32_t i = 0; i < n; ++i) {
        const auto key = r.str();
        if (key == "id") {
            t.id = r.str();
        } else if (key == "handler") {
            t.handler = r.str();
        } else if (key == "queue") {
            t.queue = r.str();
        } else if (key == "priority") {
            t.priority = r.integer<int32_t>();
        } else if (key == "state") {
            t.state = r.str();
        } else if (key == "attempts") {
            t.attempts = r.integer<uint32_t>();
        } else if (key == "max_retries") {
            t.max_retries = r.integer<int32_t>();
        } else if (key == "error") {
            t.error = r.str();
        } else if (key == "progress") {
            if (r.peek() == 0xc0) {
                throw give_up{};  // leave the nil corner to the reference decoder
            }
            protocol::progress_info p;
            const auto m = r.map_size();
            for (uint32_t j = 0; j < m; ++j) {
                const auto k = r.str();
                if (k == "fraction") {
                    p.fraction = r.number();
                } else if (k == "note") {
                    p.note = r.str();
                } else {
                    throw give_up{};
                }
            }
            t.progress = std::move(p);
        } else if (key == "result") {
            if (auto b = r.bin_or_nil()) {
                t.result.emplace(*b);
            } else {
                t.result.reset();
            }
        } else if (key == "created_ms") {
            t.created_ms = r.integer<int64_t>();
        } else if (key == "started_ms") {
            t.started_ms = r.integer<int64_t>();
        } else if (key == "finished_ms") {
            t.finished_ms = r.integer<int64_t>();
        } else if (key == "eta_ms") {
            t.eta_ms = r.integer<int64_t>();
        } else if (key == "parent") {
            t.parent = r.str();
        } else if (key == "tags") {
            read_strings(r, t.tags);
        } else if (key == "children") {
            read_strings(r, t.children);
        } else if (key == "worker") {
            t.worker = r.str();
        } else if (key == "error_code") {
            if (r.nil()) {
                t.error_code.reset();
            } else {
                t.error_code = r.integer<int64_t>();
            }
        } else if (key == "payload_size") {
            t.payload_size = r.integer<uint64_t>();
        } else if (key == "delete_at_ms") {
            t.delete_at_ms = r.integer<int64_t>();
        } else if (key == "checkpoint_size") {
            t.checkpoint_size = r.integer<uint64_t>();
        } else {
            throw give_up{};
        }
    }
}

}  // namespace

std::optional<protocol::reply> decode_done(std::string_view body) {
    try {
        reader r(body);
        protocol::reply out;
        const auto n = r.map_size();
        for (uint32_t i = 0; i < n; ++i) {
            const auto key = r.str();
            if (key == "req") {
                out.req = r.integer<uint64_t>();
            } else if (key == "ok") {
                out.ok = r.boolean();
            } else if (key == "task") {
                if (r.peek() == 0xc0) {
                    throw give_up{};
                }
                read_task(r, out.task.emplace());
            } else if (key == "tasks") {
                const auto m = r.array_size();
                out.tasks.clear();
                out.tasks.resize(m);
                for (auto& t : out.tasks) {
                    read_task(r, t);
                }
            } else {
                throw give_up{};
            }
        }
        if (!r.at_end()) {
            return std::nullopt;
        }
        return out;
    } catch (const give_up&) {
        return std::nullopt;
    } catch (const protocol::mp_reader::malformed&) {
        return std::nullopt;
    } catch (const std::exception&) {
        return std::nullopt;  // e.g. bad_alloc from a hostile array size
    }
}

}  // namespace taskmill::client::detail
