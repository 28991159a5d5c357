// The plugin.hpp trampoline: exceptions become statuses, never cross the ABI.
#include <taskmill/plugin.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace tp = taskmill::plugin;

namespace {

// What the plugin set, behind the opaque tm_ctx pointer. (tm_ctx itself is
// the host library's type; defining it here too would break the ODR.)
struct recorder {
    std::string result;
    std::string error;
    int64_t retry_after_ms = -2;
};
recorder& rec(tm_ctx* c) { return *reinterpret_cast<recorder*>(c); }

int32_t set_result(tm_ctx* c, tm_bytes b) {
    rec(c).result.assign(reinterpret_cast<const char*>(b.data), b.size);
    return 0;
}
int32_t set_error(tm_ctx* c, const tm_error* e) {
    rec(c).error.assign(e->message.data, e->message.size);
    rec(c).retry_after_ms = e->retry_after_ms;
    return 0;
}

tm_host_api fake_api() {
    tm_host_api api{};
    api.struct_size = sizeof(tm_host_api);
    api.abi_version = tp::abi_version;
    api.set_result = &set_result;
    api.set_error = &set_error;
    return api;
}

tm_status throws_runtime(tp::context&) { throw std::runtime_error("disk on fire"); }
void throws_retryable(tp::context&) { throw tp::retryable_error("busy", std::chrono::milliseconds(250)); }
void throws_int(tp::context&) { throw 42; }
tp::mp::value returns_value(tp::context& c) { return tp::mp::value::map({{"echo", c.payload()["x"].as_int()}}); }
tm_status returns_cancelled(tp::context&) { return TM_CANCELLED; }

template <auto Fn> tm_status run(recorder& c, std::string payload = {}) {
    tm_host_api api = fake_api();
    tm_task task{};
    task.struct_size = sizeof(tm_task);
    task.attempt = 1;
    task.payload = tp::to_bytes(payload);
    return tp::trampoline<Fn>(nullptr, &task, &api, reinterpret_cast<tm_ctx*>(&c));
}

}  // namespace

TEST(trampoline, exception_becomes_fail_with_what) {
    recorder c;
    EXPECT_EQ(run<throws_runtime>(c), TM_FAIL);
    EXPECT_EQ(c.error, "disk on fire");
}

TEST(trampoline, retryable_error_becomes_retry_with_delay) {
    recorder c;
    EXPECT_EQ(run<throws_retryable>(c), TM_RETRY);
    EXPECT_EQ(c.error, "busy");
    EXPECT_EQ(c.retry_after_ms, 250);
}

TEST(trampoline, non_std_exception_becomes_fail) {
    recorder c;
    EXPECT_EQ(run<throws_int>(c), TM_FAIL);
    EXPECT_EQ(c.error, "unknown exception");
}

TEST(trampoline, value_return_sets_result) {
    recorder c;
    EXPECT_EQ(run<returns_value>(c, tp::mp::pack(tp::mp::value::map({{"x", 7}}))), TM_OK);
    auto v = tp::mp::unpack(c.result);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ((*v)["echo"].as_int(), 7);
}

TEST(trampoline, malformed_payload_fails_cleanly) {
    recorder c;
    EXPECT_EQ(run<returns_value>(c, std::string("\x92\x01", 2)), TM_FAIL);
    EXPECT_NE(c.error.find("not valid msgpack"), std::string::npos) << c.error;
}

TEST(trampoline, status_passes_through_and_is_noexcept) {
    recorder c;
    EXPECT_EQ(run<returns_cancelled>(c), TM_CANCELLED);
    static_assert(noexcept(tp::trampoline<throws_runtime>(nullptr, nullptr, nullptr, nullptr)));
}
