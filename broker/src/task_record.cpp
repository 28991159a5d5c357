// The record travels as a msgpack map with the field names below, so that a
// record written by an older broker still decodes (missing keys keep their
// defaults, unknown ones are ignored).
#include "task_record.hpp"

#include <array>

#include <msgpack.hpp>

namespace taskmill::broker {
namespace {

// Every field once, by its stored name; one packer and one reader walk it.
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
    msgpack::sbuffer buf;
    msgpack::packer<msgpack::sbuffer> pk(buf);
    auto& m = const_cast<task_record&>(r);  // fields() is shared with decoding; packing only reads
    uint32_t n = 0;
    fields(m, [&](const char*, auto&&) { ++n; });
    pk.pack_map(n);
    fields(m, [&](const char* name, auto&& f) {
        pk.pack(std::string_view(name));
        pk.pack(f);
    });
    return std::string(buf.data(), buf.size());
}

result<task_record> decode_record(std::string_view bytes) {
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
    t.result = r.result;
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
