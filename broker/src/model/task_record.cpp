// The record is stored as a msgpack array: a format number, then every field
// of fields() in order. Positional, so a decode reads each value straight
// into its field without building an object tree or comparing key strings
// (the record is read and written at every state change). New fields go at
// the end: a shorter array (an older record) leaves them at their defaults,
// a longer one (a newer broker) has its extra values ignored. Records of the
// first format, msgpack maps keyed by field name, still decode.
#include "model/task_record.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include <msgpack.hpp>

#include <taskmill/protocol/mp_reader.hpp>

namespace taskmill::broker {
namespace {

constexpr uint64_t record_format = 2;

// Every field once, in stored order; one writer and two readers walk it.
template <typename V>
void fields(task_record& r, V&& v) {
    v("id", r.id); v("handler", r.handler); v("payload", r.payload); v("queue", r.queue);
    v("priority", r.priority); v("max_retries", r.max_retries); v("timeout_ms", r.timeout_ms);
    v("ttl_ms", r.ttl_ms); v("eta_ms", r.eta_ms); v("backoff_base_ms", r.backoff_base_ms);
    v("backoff_factor", r.backoff_factor); v("backoff_cap_ms", r.backoff_cap_ms); v("tags", r.tags);
    v("key", r.key); v("parent", r.parent); v("notify", r.notify); v("notify_peer", r.notify_peer);
    v("state", r.state); v("attempts", r.attempts); v("crashes", r.crashes); v("created_ms", r.created_ms);
    v("started_ms", r.started_ms); v("finished_ms", r.finished_ms); v("error", r.error);
    v("result", r.result); v("worker", r.worker); v("children", r.children);
    v("progress_fraction", r.progress_fraction); v("progress_note", r.progress_note);
    v("checkpoint", r.checkpoint); v("cancel_requested", r.cancel_requested); v("seq", r.seq);
    v("version", r.version);
}

constexpr std::array<std::string_view, 8> all_states = {
    state::pending, state::queued,    state::running,   state::retrying,
    state::succeeded, state::failed, state::cancelled, state::expired};

// What msgpack::packer needs of a stream, writing into a std::string sized
// ahead: the packer writes a few bytes at a time, and append() per piece
// cost more than the rest of the encoding.
class string_sink {
public:
    string_sink(std::string& out, std::size_t expect) : out_(out) { out_.resize(expect); }
    ~string_sink() { out_.resize(used_); }
    string_sink(const string_sink&) = delete;
    string_sink& operator=(const string_sink&) = delete;
    void write(const char* p, std::size_t n) {
        if (out_.size() - used_ < n) {
            out_.resize(std::max(out_.size() * 2, used_ + n));
        }
        std::memcpy(out_.data() + used_, p, n);
        used_ += n;
    }

private:
    std::string& out_;
    std::size_t used_ = 0;
};

// Reads one record field of each type (protocol::mp_reader throws
// mp_reader::malformed on a mismatch).
void read(protocol::mp_reader& rd, std::string& s) { s = rd.bytes(); }
void read(protocol::mp_reader& rd, bool& v) { v = rd.boolean(); }
void read(protocol::mp_reader& rd, double& v) { v = rd.number(); }
template <typename T>
    requires std::is_integral_v<T>
void read(protocol::mp_reader& rd, T& v) {
    v = rd.integer<T>();
}
template <typename T>
void read(protocol::mp_reader& rd, std::optional<T>& v) {
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

result<task_record> decode_positional(std::string_view bytes) {
    try {
        protocol::mp_reader rd(bytes);
        uint32_t n = rd.array_size();
        if (n == 0) {
            return fail(errc::corrupt, "task record is an empty array");
        }
        auto format = rd.integer<uint64_t>();
        if (format != record_format) {
            return fail(errc::corrupt, "task record has unknown format " + std::to_string(format));
        }
        task_record r;
        uint32_t left = n - 1;
        fields(r, [&](const char*, auto& f) {
            if (left > 0) {
                read(rd, f);
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
        for (const auto& kv : o.via.map) {
            if (kv.key.type != msgpack::type::STR) {
                continue;
            }
            std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
            fields(r, [&](const char* name, auto&& f) {
                if (key == name) {
                    kv.val.convert(f);
                }
            });
        }
        return r;
    } catch (const std::exception& e) {
        return fail(errc::corrupt, std::string("task record does not decode: ") + e.what());
    }
}

}  // namespace

bool is_final(std::string_view s) {
    return s == state::succeeded || s == state::failed || s == state::cancelled || s == state::expired;
}

bool is_state_name(std::string_view s) {
    for (auto name : all_states) {
        if (name == s) {
            return true;
        }
    }
    return false;
}

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
        fields(m, [&](const char*, auto&& f) { pk.pack(f); });
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
    t.id = r.id;
    t.handler = r.handler;
    t.queue = r.queue;
    t.priority = r.priority;
    t.state = r.state;
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
    t.children = r.children;
    t.worker = r.worker;
    return t;
}

}  // namespace taskmill::broker
