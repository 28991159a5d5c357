// msgpack codecs for the message bodies of messages.hpp.
//
// Each struct lists its fields once, in a fields() function; one packer and
// one converter walk that list. Packing leaves out unset and empty fields;
// converting reads a map, ignores unknown keys and names the field that had
// the wrong type. Everything msgpack may throw stops at decode_*().
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/mp_reader.hpp>
#include <taskmill/protocol/msgpack_out.hpp>
#include <taskmill/protocol/wire.hpp>

#include <stdexcept>
#include <type_traits>

#include <msgpack.hpp>

namespace taskmill::protocol {
namespace {

// ---- field lists ----

// Marks a std::string (or optional) member that travels as msgpack bin.
template <typename T> struct bin_field { T& ref; };

template <typename V> void fields(task_spec& m, V&& v) {
    v("handler", m.handler);
    v("payload", bin_field<std::string>{m.payload});
    v("queue", m.queue);
    v("priority", m.priority);
    v("retries", m.retries);
    v("timeout_ms", m.timeout_ms);
    v("ttl_ms", m.ttl_ms);
    v("delay_ms", m.delay_ms);
    v("eta_ms", m.eta_ms);
    v("backoff_base_ms", m.backoff_base_ms);
    v("backoff_factor", m.backoff_factor);
    v("backoff_cap_ms", m.backoff_cap_ms);
    v("tags", m.tags);
    v("key", m.key);
    v("parent", m.parent);
    v("notify", m.notify);
    v("keep_ms", m.keep_ms);
}
template <typename V> void fields(request& m, V&& v) {
    v("req", m.req);
    v("tasks", m.tasks);
    v("id", m.id);
    v("tag", m.tag);
    v("wait_ms", m.wait_ms);
    v("state", m.state);
    v("queue", m.queue);
    v("limit", m.limit);
    v("data", bin_field<std::string>{m.data});
    v("before", m.before);
    v("handler", m.handler);
    v("since_ms", m.since_ms);
    v("until_ms", m.until_ms);
    v("all", m.all);
    v("strict", m.strict);
    v("ids", m.ids);
    v("rate", m.rate);
    v("burst", m.burst);
    v("max_running", m.max_running);
    v("job", m.job);
    v("name", m.name);
    v("member", m.member);
    v("address", m.address);
}
template <typename V> void fields(progress_info& m, V&& v) {
    v("fraction", m.fraction);
    v("note", m.note);
}
template <typename V> void fields(task_info& m, V&& v) {
    v("id", m.id);
    v("handler", m.handler);
    v("queue", m.queue);
    v("priority", m.priority);
    v("state", m.state);
    v("attempts", m.attempts);
    v("max_retries", m.max_retries);
    v("error", m.error);
    v("progress", m.progress);
    v("result", bin_field<std::optional<std::string>>{m.result});
    v("created_ms", m.created_ms);
    v("started_ms", m.started_ms);
    v("finished_ms", m.finished_ms);
    v("eta_ms", m.eta_ms);
    v("parent", m.parent);
    v("tags", m.tags);
    v("children", m.children);
    v("worker", m.worker);
    v("error_code", m.error_code);
    v("payload", bin_field<std::optional<std::string>>{m.payload});
    v("payload_size", m.payload_size);
    v("history", m.history);
    v("delete_at_ms", m.delete_at_ms);
    v("checkpoint_size", m.checkpoint_size);
}
template <typename V> void fields(attempt_info& m, V&& v) {
    v("attempt", m.attempt);
    v("worker", m.worker);
    v("started_ms", m.started_ms);
    v("finished_ms", m.finished_ms);
    v("outcome", m.outcome);
    v("error", m.error);
    v("error_code", m.error_code);
    v("version", m.version);
}
template <typename V> void fields(handler_info& m, V&& v) {
    v("name", m.name);
    v("version", m.version);
    v("plugin", m.plugin);
    v("default_queue", m.default_queue);
    v("default_timeout_ms", m.default_timeout_ms);
    v("default_retries", m.default_retries);
    v("flags", m.flags);
    v("payload_version", m.payload_version);
}
template <typename V> void fields(worker_info& m, V&& v) {
    v("id", m.id);
    v("host", m.host);
    v("pid", m.pid);
    v("slots", m.slots);
    v("busy", m.busy);
    v("generation", m.generation);
    v("queues", m.queues);
    v("handlers", m.handlers);
    v("last_seen_ms", m.last_seen_ms);
    v("prefetch", m.prefetch);
    v("running", m.running);
    v("rss_bytes", m.rss_bytes);
}
template <typename V> void fields(queue_stats& m, V&& v) {
    v("name", m.name);
    v("ready", m.ready);
    v("delayed", m.delayed);
    v("running", m.running);
    v("paused", m.paused);
    v("limits", m.limits);
}
template <typename V> void fields(flow_limits& m, V&& v) {
    v("rate", m.rate);
    v("burst", m.burst);
    v("max_running", m.max_running);
}
template <typename V> void fields(handler_stats& m, V&& v) {
    v("name", m.name);
    v("running", m.running);
    v("limits", m.limits);
}
template <typename V> void fields(job_info& m, V&& v) {
    v("id", m.id);
    v("kind", m.kind);
    v("filter", m.filter);
    v("state", m.state);
    v("matched", m.matched);
    v("changed", m.changed);
    v("started_ms", m.started_ms);
    v("finished_ms", m.finished_ms);
}
template <typename V> void fields(stats_info& m, V&& v) {
    v("queues", m.queues);
    v("states", m.states);
    v("counters", m.counters);
    v("workers", m.workers);
    v("slots", m.slots);
    v("busy", m.busy);
    v("uptime_ms", m.uptime_ms);
    v("handlers", m.handlers);
    v("prefetch", m.prefetch);
    v("running", m.running);
}
template <typename V> void fields(reply& m, V&& v) {
    v("req", m.req);
    v("ok", m.ok);
    v("error_code", m.error_code);
    v("error", m.error);
    v("note", m.note);
    v("ids", m.ids);
    v("task", m.task);
    v("tasks", m.tasks);
    v("workers", m.workers);
    v("stats", m.stats);
    v("data", bin_field<std::string>{m.data});
    v("next", m.next);
    v("warnings", m.warnings);
    v("queues", m.queues);
    v("job", m.job);
    v("leader", m.leader);
    v("leader_http", m.leader_http);
}
template <typename V> void fields(held_task& m, V&& v) {
    v("id", m.id);
    v("attempt", m.attempt);
}
template <typename V> void fields(hello& m, V&& v) {
    v("worker", m.worker);
    v("host", m.host);
    v("pid", m.pid);
    v("slots", m.slots);
    v("generation", m.generation);
    v("queues", m.queues);
    v("handlers", m.handlers);
    v("prefetch", m.prefetch);
    v("supervisor", m.supervisor);
    v("held", m.held);
}
template <typename V> void fields(welcome& m, V&& v) {
    v("heartbeat_ms", m.heartbeat_ms);
    v("liveness_ms", m.liveness_ms);
}
template <typename V> void fields(work_item& m, V&& v) {
    v("id", m.id);
    v("handler", m.handler);
    v("payload", bin_field<std::string>{m.payload});
    v("attempt", m.attempt);
    v("timeout_ms", m.timeout_ms);
    v("parent", m.parent);
    v("checkpoint", bin_field<std::optional<std::string>>{m.checkpoint});
}
template <typename V> void fields(dispatch& m, V&& v) { v("tasks", m.tasks); }
template <typename V> void fields(outcome& m, V&& v) {
    v("id", m.id);
    v("attempt", m.attempt);
    v("status", m.status);
    v("result", bin_field<std::string>{m.result});
    v("error", m.error);
    v("retry_after_ms", m.retry_after_ms);
    v("version", m.version);
    v("error_code", m.error_code);
    v("run_us", m.run_us);
}
template <typename V> void fields(results& m, V&& v) {
    v("items", m.items);
    v("started", m.started);
    v("seq", m.seq);
}
template <typename V> void fields(control& m, V&& v) {
    v("req", m.req);
    v("ok", m.ok);
    v("id", m.id);
    v("ids", m.ids);
    v("fraction", m.fraction);
    v("note", m.note);
    v("data", bin_field<std::string>{m.data});
    v("slots", m.slots);
    v("tasks", m.tasks);
    v("error", m.error);
    v("running", m.running);
    v("attempt", m.attempt);
    v("error_code", m.error_code);
    v("rss_bytes", m.rss_bytes);
    v("leader", m.leader);
}

// The record types: those with a fields() list.
template <typename T> struct is_record : std::false_type {};
#define TASKMILL_RECORD(T) \
    template <> struct is_record<T> : std::true_type {};
// clang-format off
TASKMILL_RECORD(task_spec) TASKMILL_RECORD(request) TASKMILL_RECORD(progress_info)
TASKMILL_RECORD(task_info) TASKMILL_RECORD(handler_info) TASKMILL_RECORD(worker_info)
TASKMILL_RECORD(queue_stats) TASKMILL_RECORD(stats_info) TASKMILL_RECORD(reply)
TASKMILL_RECORD(hello) TASKMILL_RECORD(welcome) TASKMILL_RECORD(work_item)
TASKMILL_RECORD(dispatch) TASKMILL_RECORD(outcome) TASKMILL_RECORD(results) TASKMILL_RECORD(control)
TASKMILL_RECORD(attempt_info) TASKMILL_RECORD(held_task) TASKMILL_RECORD(flow_limits) TASKMILL_RECORD(handler_stats) TASKMILL_RECORD(job_info)
// clang-format on
#undef TASKMILL_RECORD

    // ---- presence: what packing leaves out ----

    template <typename T>
    bool present(const T&) {
    return true;
}
inline bool present(const std::string& s) { return !s.empty(); }
template <typename T> bool present(const std::vector<T>& v) { return !v.empty(); }
template <typename K, typename T> bool present(const std::map<K, T>& m) { return !m.empty(); }
template <typename T> bool present(const std::optional<T>& o) { return o.has_value(); }
template <typename T> bool present(const bin_field<T>& b) { return present(b.ref); }

}  // namespace
}  // namespace taskmill::protocol

// ---- msgpack adaptors for every record type ----

namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
    namespace adaptor {

    template <typename T> struct pack<T, std::enable_if_t<taskmill::protocol::is_record<T>::value>> {
        template <typename Stream> packer<Stream>& operator()(packer<Stream>& o, const T& value) const {
            using namespace taskmill::protocol;
            auto& m = const_cast<T&>(value);  // fields() is shared with convert; packing only reads
            uint32_t n = 0;
            taskmill::protocol::fields(m, [&](const char*, auto&& f) { n += present(f) ? 1 : 0; });
            o.pack_map(n);
            taskmill::protocol::fields(m, [&](const char* name, auto&& f) {
                if (!present(f)) {
                    return;
                }
                o.pack(std::string_view(name));
                using F = std::decay_t<decltype(f)>;
                if constexpr (std::is_same_v<F, bin_field<std::string>>) {
                    o.pack_bin(static_cast<uint32_t>(f.ref.size()));
                    o.pack_bin_body(f.ref.data(), static_cast<uint32_t>(f.ref.size()));
                } else if constexpr (std::is_same_v<F, bin_field<std::optional<std::string>>>) {
                    o.pack_bin(static_cast<uint32_t>(f.ref->size()));
                    o.pack_bin_body(f.ref->data(), static_cast<uint32_t>(f.ref->size()));
                } else {
                    o.pack(f);
                }
            });
            return o;
        }
    };

    template <typename T> struct convert<T, std::enable_if_t<taskmill::protocol::is_record<T>::value>> {
        const msgpack::object& operator()(const msgpack::object& o, T& value) const {
            using namespace taskmill::protocol;
            if (o.type != msgpack::type::MAP) {
                throw std::runtime_error("expected a map");
            }
            for (const auto& kv : o.via.map) {
                if (kv.key.type != msgpack::type::STR) {
                    throw std::runtime_error("map key is not a string");
                }
                std::string_view key(kv.key.via.str.ptr, kv.key.via.str.size);
                taskmill::protocol::fields(value, [&](const char* name, auto&& f) {
                    if (key == name) {
                        read_field(kv.val, f, name);
                    }
                });
            }
            return o;
        }

    private:
        static void read_bytes(const msgpack::object& v, std::string& out) {
            if (v.type == msgpack::type::BIN) {
                out.assign(v.via.bin.ptr, v.via.bin.size);
            } else if (v.type == msgpack::type::NIL) {
                out.clear();
            } else {
                throw msgpack::type_error();
            }
        }

        template <typename F> static void read_field(const msgpack::object& v, F&& f, const char* name) {
            using namespace taskmill::protocol;
            using D = std::decay_t<F>;
            try {
                if constexpr (std::is_same_v<D, bin_field<std::string>>) {
                    read_bytes(v, f.ref);
                } else if constexpr (std::is_same_v<D, bin_field<std::optional<std::string>>>) {
                    if (v.type == msgpack::type::NIL) {
                        f.ref.reset();
                    } else {
                        f.ref.emplace();
                        read_bytes(v, *f.ref);
                    }
                } else {
                    v.convert(f);
                }
            } catch (const std::runtime_error& e) {
                // Nested record errors already carry their path; prefix ours.
                throw std::runtime_error(std::string(name) + ": " + e.what());
            } catch (const std::exception&) {
                throw std::runtime_error(std::string("field '") + name + "' has the wrong type");
            }
        }
    };

    }  // namespace adaptor
}  // MSGPACK_API_VERSION_NAMESPACE
}  // namespace msgpack

namespace taskmill::protocol {
namespace {

// Limits on what a decoder materializes, so a small hostile frame cannot
// describe a huge structure.
msgpack::unpack_limit decode_limits() {
    return msgpack::unpack_limit(1u << 20, 1u << 16, 64u << 20, 64u << 20, 1u << 16, 32);
}

template <typename T> std::string encode_record(const T& m) { return pack_value(m); }

template <typename T> result<T> decode_record(std::string_view body, std::string_view what) {
    try {
        std::size_t off = 0;
        auto handle = msgpack::unpack(body.data(), body.size(), off, nullptr, nullptr, decode_limits());
        if (off != body.size()) {
            return fail(errc::invalid_argument, std::string(what) + ": trailing bytes after the body");
        }
        T out{};
        handle.get().convert(out);
        return out;
    } catch (const std::exception& e) {
        return fail(errc::invalid_argument, std::string(what) + ": " + e.what());
    }
}

}  // namespace

std::string encode(const request& m) { return encode_record(m); }
std::string encode(const reply& m) { return encode_record(m); }
std::string encode(const hello& m) { return encode_record(m); }
std::string encode(const welcome& m) { return encode_record(m); }
std::string encode(const dispatch& m) { return encode_record(m); }
std::string encode(const results& m) { return encode_record(m); }
std::string encode(const control& m) { return encode_record(m); }

result<request> decode_request(std::string_view b) { return decode_record<request>(b, "request"); }
result<reply> decode_reply(std::string_view b) { return decode_record<reply>(b, "reply"); }
result<hello> decode_hello(std::string_view b) { return decode_record<hello>(b, cmd::hello); }
result<welcome> decode_welcome(std::string_view b) { return decode_record<welcome>(b, cmd::welcome); }
result<dispatch> decode_dispatch(std::string_view b) { return decode_record<dispatch>(b, cmd::dispatch); }
result<results> decode_results(std::string_view b) { return decode_record<results>(b, cmd::results); }
result<control> decode_control(std::string_view b) { return decode_record<control>(b, "control"); }

std::optional<uint64_t> peek_req(std::string_view body) noexcept {
    try {
        mp_reader r(body);
        for (uint32_t n = r.map_size(); n > 0; --n) {
            const uint8_t t = r.peek();
            const bool str_key = (t & 0xe0) == 0xa0 || (t >= 0xd9 && t <= 0xdb);
            if (str_key && r.str() == "req") {
                return r.integer<uint64_t>();
            }
            if (!str_key) {
                r.skip();
            }
            r.skip();  // the value
        }
    } catch (const mp_reader::malformed&) {
    }
    return std::nullopt;
}

}  // namespace taskmill::protocol
