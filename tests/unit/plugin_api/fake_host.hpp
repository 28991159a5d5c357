// A host function table for SDK tests: records what the plugin hands the
// host and answers with the return codes a test sets. The recorder sits
// behind the opaque tm_ctx pointer (tm_ctx itself is the host library's
// type; defining it here too would break the ODR).
#pragma once

#include <taskmill/plugin.h>

#include <cstdint>
#include <string>
#include <vector>

namespace fake_host {

struct recorder {
    // What the host answers.
    int32_t set_result_rc = 0;
    int32_t checkpoint_save_rc = 0;
    int32_t checkpoint_load_rc = TM_E_NOT_FOUND;
    int32_t spawn_rc = 0;
    int32_t cancelled = 0;
    uint64_t result_limit = 0;
    std::string stored_checkpoint;
    std::string spawned_id = "sub-1";
    // What the plugin handed over.
    std::string result;
    std::string error;
    int32_t error_code = 0;
    int64_t retry_after_ms = -2;
    int errors_set = 0;
    std::vector<std::string> logs;
    std::string spawned_handler;
};

inline recorder& rec(tm_ctx* c) { return *reinterpret_cast<recorder*>(c); }
inline tm_ctx* as_ctx(recorder& r) { return reinterpret_cast<tm_ctx*>(&r); }

inline int32_t set_result(tm_ctx* c, tm_bytes b) {
    if (rec(c).set_result_rc != 0) return rec(c).set_result_rc;
    rec(c).result.assign(reinterpret_cast<const char*>(b.data), b.size);
    return 0;
}
inline int32_t set_error(tm_ctx* c, const tm_error* e) {
    rec(c).error.assign(e->message.data, e->message.size);
    rec(c).error_code = e->code;
    rec(c).retry_after_ms = e->retry_after_ms;
    rec(c).errors_set += 1;
    return 0;
}
inline void log(tm_ctx* c, int32_t /*level*/, tm_str m) { rec(c).logs.emplace_back(m.data, m.size); }
inline int32_t is_cancelled(tm_ctx* c) { return rec(c).cancelled; }
inline int32_t checkpoint_save(tm_ctx* c, tm_bytes /*state*/) { return rec(c).checkpoint_save_rc; }
inline int32_t checkpoint_load(tm_ctx* c, tm_bytes* out) {
    if (rec(c).checkpoint_load_rc != 0) return rec(c).checkpoint_load_rc;
    const std::string& s = rec(c).stored_checkpoint;
    *out = tm_bytes{reinterpret_cast<const uint8_t*>(s.data()), s.size()};
    return 0;
}
inline int32_t spawn(tm_ctx* c, const tm_spawn_request* req, tm_str* out) {
    rec(c).spawned_handler.assign(req->handler.data, req->handler.size);
    if (rec(c).spawn_rc != 0) return rec(c).spawn_rc;
    if (out != nullptr) *out = tm_str{rec(c).spawned_id.data(), rec(c).spawned_id.size()};
    return 0;
}
inline uint64_t limit(tm_ctx* c, int32_t what) { return what == TM_LIMIT_RESULT ? rec(c).result_limit : 0; }

// A 1.1 table with every function.
inline tm_host_api api() {
    tm_host_api a{};
    a.struct_size = sizeof(tm_host_api);
    a.abi_version = (uint32_t{TM_ABI_MAJOR} << 16) | TM_ABI_MINOR;
    a.log = &log;
    a.is_cancelled = &is_cancelled;
    a.checkpoint_save = &checkpoint_save;
    a.checkpoint_load = &checkpoint_load;
    a.spawn = &spawn;
    a.set_result = &set_result;
    a.set_error = &set_error;
    a.limit = &limit;
    return a;
}

// A 1.0 table: struct_size stops before `limit`.
inline tm_host_api api_1_0() {
    tm_host_api a = api();
    a.struct_size = static_cast<uint32_t>(offsetof(tm_host_api, limit));
    a.abi_version = uint32_t{1} << 16;
    return a;
}

}  // namespace fake_host
