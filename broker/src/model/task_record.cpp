// The record is stored as a msgpack array: a format number, then every field
// of fields() in order. Positional, so a decode reads each value straight
// into its field without building an object tree or comparing key strings
// (the record is read and written at every state change). New fields go at
// the end: a shorter array (an older record) leaves them at their defaults,
// a longer one (a newer broker) has its extra values ignored.
//
// Format 3 (written now) stores the id and the children as 16-byte bins and
// the state as its task_state number. Older records still decode: format 2
// (the same array with the ids as hex strings and the state by name) and
// format 1 (a msgpack map keyed by field name, same value encodings as 2).
#include "model/task_record.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <msgpack.hpp>

#include <taskmill/protocol/mp_reader.hpp>
#include <taskmill/protocol/msgpack_out.hpp>

namespace taskmill::broker {
namespace {

constexpr uint64_t record_format = 3;
// The last format that spelled ids in hex and states by name.
constexpr uint64_t text_format = 2;

// Every field once, in stored order; one writer and two readers walk it.
template <typename V> void fields(task_record& r, V&& v) {
    v("id", r.id);
    v("handler", r.handler);
    v("payload", r.payload);
    v("queue", r.queue);
    v("priority", r.priority);
    v("max_retries", r.max_retries);
    v("timeout_ms", r.timeout_ms);
    v("ttl_ms", r.ttl_ms);
    v("eta_ms", r.eta_ms);
    v("backoff_base_ms", r.backoff_base_ms);
    v("backoff_factor", r.backoff_factor);
    v("backoff_cap_ms", r.backoff_cap_ms);
    v("tags", r.tags);
    v("key", r.key);
    v("parent", r.parent);
    v("notify", r.notify);
    v("notify_peer", r.notify_peer);
    v("state", r.state);
    v("attempts", r.attempts);
    v("crashes", r.crashes);
    v("created_ms", r.created_ms);
    v("started_ms", r.started_ms);
    v("finished_ms", r.finished_ms);
    v("error", r.error);
    v("result", r.result);
    v("worker", r.worker);
    v("children", r.children);
    v("progress_fraction", r.progress_fraction);
    v("progress_note", r.progress_note);
    v("checkpoint", r.checkpoint);
    v("cancel_requested", r.cancel_requested);
    v("seq", r.seq);
    v("version", r.version);
    v("error_code", r.error_code);
    v("suspect_crashes", r.suspect_crashes);
    v("keep_ms", r.keep_ms);
    v("history", r.history);
    v("delete_at_ms", r.delete_at_ms);
    v("expiry_implied", r.expiry_implied);
}

// An attempt is an array of its fields, in this order.
template <typename A, typename V> void attempt_fields(A& a, V&& v) {
    v(a.attempt);
    v(a.worker);
    v(a.started_ms);
    v(a.finished_ms);
    v(a.outcome);
    v(a.error);
    v(a.error_code);
    v(a.version);
}
constexpr uint32_t attempt_field_count = 8;

// The record is written the one way msgpack is written (msgpack_out.hpp);
// encode() sizes the string ahead from the record's big fields.
using protocol::string_sink;

// Reads one record field of each type (protocol::mp_reader throws
// mp_reader::malformed on a mismatch).
void read(protocol::mp_reader& rd, std::string& s) { s = rd.bytes(); }
void read(protocol::mp_reader& rd, bool& v) { v = rd.boolean(); }
void read(protocol::mp_reader& rd, double& v) { v = rd.number(); }
template <typename T>
requires std::is_integral_v<T>
void read(protocol::mp_reader& rd, T& v) { v = rd.integer<T>(); }
template <typename T> void read(protocol::mp_reader& rd, std::optional<T>& v) {
    if (rd.nil()) {
        v.reset();
        return;
    }
    read(rd, v.emplace());
}
void read(protocol::mp_reader& rd, std::vector<std::string>& v) {
    auto n = rd.array_size();
    v.clear();
    for (uint32_t i = 0; i < n; ++i) {
        v.emplace_back(rd.bytes());
    }
}

void read(protocol::mp_reader& rd, attempt_record& a) {
    uint32_t left = rd.array_size();
    attempt_fields(a, [&](auto& f) {
        if (left > 0) {
            read(rd, f);
            --left;
        }
    });
    for (; left > 0; --left) {
        rd.skip();  // fields of a newer broker
    }
}
void read(protocol::mp_reader& rd, std::vector<attempt_record>& v) {
    auto n = rd.array_size();
    v.clear();
    for (uint32_t i = 0; i < n; ++i) {
        read(rd, v.emplace_back());
    }
}

// The values whose encoding changed with format 3: each reader is told the
// record's format. A value that is neither encoding fails the whole record.
task_id id_of(std::string_view stored, uint64_t format) {
    if (format <= text_format) {
        if (auto id = parse_task_id(stored)) {
            return *id;
        }
    } else if (auto id = id_from_bytes(stored)) {
        return *id;
    }
    throw protocol::mp_reader::malformed();
}
template <typename T> void read(protocol::mp_reader& rd, T& v, uint64_t) { read(rd, v); }
void read(protocol::mp_reader& rd, task_id& v, uint64_t format) { v = id_of(rd.bytes(), format); }
void read(protocol::mp_reader& rd, std::vector<task_id>& v, uint64_t format) {
    auto n = rd.array_size();
    v.clear();
    for (uint32_t i = 0; i < n; ++i) {
        v.push_back(id_of(rd.bytes(), format));
    }
}
void read(protocol::mp_reader& rd, task_state& v, uint64_t format) {
    auto s = format <= text_format ? parse_task_state(rd.bytes()) : task_state_from_number(rd.integer<uint64_t>());
    if (!s) {
        throw protocol::mp_reader::malformed();
    }
    v = *s;
}

// Writes one record field; ids as 16-byte bins, the state as its number.
template <typename P, typename T> void write(P& pk, const T& v) { pk.pack(v); }
template <typename P> void write(P& pk, const task_id& id) {
    pk.pack_bin(static_cast<uint32_t>(id.size()));
    pk.pack_bin_body(reinterpret_cast<const char*>(id.data()), static_cast<uint32_t>(id.size()));
}
template <typename P> void write(P& pk, const std::vector<task_id>& ids) {
    pk.pack_array(static_cast<uint32_t>(ids.size()));
    for (const auto& id : ids) {
        write(pk, id);
    }
}
template <typename P> void write(P& pk, task_state s) { pk.pack(static_cast<uint8_t>(s)); }
template <typename P> void write(P& pk, const std::vector<attempt_record>& history) {
    pk.pack_array(static_cast<uint32_t>(history.size()));
    for (const auto& a : history) {
        pk.pack_array(attempt_field_count);
        attempt_fields(a, [&](const auto& f) { pk.pack(f); });
    }
}

// Format 1 maps hold text ids and state names, like format 2.
template <typename T> void convert(const msgpack::object& o, T& v) { o.convert(v); }
void convert(const msgpack::object& o, task_id& v) { v = id_of(o.as<std::string>(), text_format); }
void convert(const msgpack::object& o, std::vector<task_id>& v) {
    v.clear();
    for (const auto& hex : o.as<std::vector<std::string>>()) {
        v.push_back(id_of(hex, text_format));
    }
}
void convert(const msgpack::object&, std::vector<attempt_record>&) {}  // format 1 had no history
void convert(const msgpack::object& o, task_state& v) {
    auto s = parse_task_state(o.as<std::string>());
    if (!s) {
        throw protocol::mp_reader::malformed();
    }
    v = *s;
}

result<task_record> decode_positional(std::string_view bytes) {
    try {
        protocol::mp_reader rd(bytes);
        uint32_t n = rd.array_size();
        if (n == 0) {
            return fail(errc::corrupt, "task record is an empty array");
        }
        auto format = rd.integer<uint64_t>();
        if (format == 0 || format == 1 || format > record_format) {
            return fail(errc::corrupt, "task record has unknown format " + std::to_string(format));
        }
        task_record r;
        r.has_state = true;
        uint32_t left = n - 1;
        fields(r, [&](const char*, auto& f) {
            if (left > 0) {
                read(rd, f, format);
                --left;
            }
        });
        return r;
    } catch (const protocol::mp_reader::malformed&) {
        return fail(errc::corrupt, "task record does not decode");
    }
}

// The first format: a map keyed by field name.
result<task_record> decode_map(std::string_view bytes) {
    try {
        auto handle = msgpack::unpack(bytes.data(), bytes.size());
        const msgpack::object& o = handle.get();
        if (o.type != msgpack::type::MAP) {
            return fail(errc::corrupt, "task record is not a map");
        }
        task_record r;
        r.has_state = true;
        for (const auto& kv : o.via.map) {
            if (kv.key.type != msgpack::type::STR) {
                continue;
            }
            std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
            fields(r, [&](const char* name, auto&& f) {
                if (key == name) {
                    convert(kv.val, f);
                }
            });
        }
        return r;
    } catch (const std::exception& e) {
        return fail(errc::corrupt, std::string("task record does not decode: ") + e.what());
    }
}

}  // namespace

std::string encode(const task_record& r) {
    std::string out;
    {
        string_sink sink(out, 256 + r.payload.size() + (r.result ? r.result->size() : 0) +
                                  (r.checkpoint ? r.checkpoint->size() : 0) + r.error.size());
        msgpack::packer<string_sink> pk(sink);
        auto& m = const_cast<task_record&>(r);  // fields() is shared with decoding; packing only reads
        uint32_t n = 0;
        fields(m, [&](const char*, auto&&) { ++n; });
        pk.pack_array(n + 1);
        pk.pack(record_format);
        fields(m, [&](const char*, auto&& f) { write(pk, f); });
    }
    return out;
}

result<task_record> decode_record(std::string_view bytes) {
    if (bytes.empty()) {
        return fail(errc::corrupt, "task record is empty");
    }
    auto first = static_cast<uint8_t>(bytes[0]);
    if ((first & 0xf0) == 0x80 || first == 0xde || first == 0xdf) {
        return decode_map(bytes);
    }
    return decode_positional(bytes);
}

protocol::task_info to_info(const task_record& r) {
    protocol::task_info t;
    t.id = to_hex(r.id);
    t.handler = r.handler;
    t.queue = r.queue;
    t.priority = r.priority;
    t.state = std::string(to_string(r.state));
    t.attempts = r.attempts;
    t.max_retries = r.max_retries;
    t.error = r.error;
    if (r.progress_fraction) {
        t.progress = protocol::progress_info{*r.progress_fraction, r.progress_note};
    }
    if (r.result && !r.result->empty()) {
        t.result = r.result;  // present only as msgpack bytes (older records may hold an empty one)
    }
    t.created_ms = r.created_ms;
    t.started_ms = r.started_ms;
    t.finished_ms = r.finished_ms;
    t.eta_ms = r.eta_ms;
    t.parent = r.parent;
    t.tags = r.tags;
    t.children.reserve(r.children.size());
    for (const auto& child : r.children) {
        t.children.push_back(to_hex(child));
    }
    t.worker = r.worker;
    t.error_code = r.error_code;
    t.delete_at_ms = r.delete_at_ms;
    return t;
}

protocol::task_info to_status_info(const task_record& r) {
    auto t = to_info(r);
    t.payload = r.payload;
    t.payload_size = r.payload.size();
    t.checkpoint_size = r.checkpoint ? r.checkpoint->size() : 0;
    t.history.reserve(r.history.size());
    for (const auto& a : r.history) {
        t.history.push_back(
            {a.attempt, a.worker, a.started_ms, a.finished_ms, a.outcome, a.error, a.error_code, a.version});
    }
    return t;
}

}  // namespace taskmill::broker
