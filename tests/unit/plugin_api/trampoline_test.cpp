// The plugin.hpp trampoline and context: every way a handler can end, and
// every host return code, maps to the status and error the C API expects;
// no exception crosses the ABI.
#include "fake_host.hpp"

#include <taskmill/plugin.hpp>

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace tp = taskmill::plugin;
using fake_host::recorder;

namespace {

tm_status throws_runtime(tp::context&) { throw std::runtime_error("disk on fire"); }
void throws_retryable(tp::context&) { throw tp::retryable_error("busy", std::chrono::milliseconds(250)); }
void throws_retryable_code(tp::context&) { throw tp::retryable_error(17, "busy"); }
void throws_permanent_code(tp::context&) { throw tp::permanent_error(42, "bad input"); }
void throws_int(tp::context&) { throw 42; }
tp::mp::value returns_value(tp::context& c) { return tp::mp::value::map({{"echo", c.payload()["x"].as_int()}}); }
tm_status returns_cancelled(tp::context&) { return TM_CANCELLED; }
tp::mp::value throws_cancelled(tp::context&) { throw tp::cancelled{}; }
tp::mp::value checks_cancelled(tp::context& c) {
    c.throw_if_cancelled();
    return tp::mp::value(1);
}
// A handler that catches std::exception must not swallow a cancellation.
tp::mp::value catches_std_exceptions(tp::context& c) {
    try {
        c.throw_if_cancelled();
    } catch (const std::exception&) {
        return tp::mp::value("swallowed");
    }
    return tp::mp::value("ran");
}
void sets_error_code(tp::context& c) { c.set_error(7, "seven"); }

void sets_result(tp::context& c) { c.set_result(std::string(100, 'x')); }
std::string fallback_seen;
void sets_result_with_fallback(tp::context& c) {
    try {
        c.set_result(std::string(100, 'x'));
    } catch (const tp::too_large_error& e) {
        fallback_seen = e.what();
        c.set_result(tp::mp::value("stored elsewhere"));
    }
}
void saves_checkpoint(tp::context& c) { c.checkpoint_save(std::string("state")); }
tp::mp::value loads_checkpoint(tp::context& c) {
    auto s = c.checkpoint_load();
    return s ? tp::mp::value(*s) : tp::mp::value();
}
tp::mp::value spawns(tp::context& c) { return tp::mp::value(c.spawn("x.y", std::string("\xc0", 1))); }
tp::mp::value reads_limit(tp::context& c) { return tp::mp::value(static_cast<int64_t>(c.limit(tp::limit::result))); }
tp::mp::value reads_state(tp::context& c) { return tp::mp::value(c.state<int>()); }

template <auto Fn> tm_status run(recorder& r, std::string payload = {}, tm_host_api api = fake_host::api()) {
    tm_task task{};
    task.struct_size = sizeof(tm_task);
    task.attempt = 1;
    task.payload = tp::to_bytes(payload);
    return tp::trampoline<Fn>(nullptr, &task, &api, fake_host::as_ctx(r));
}

tp::mp::value result_of(const recorder& r) { return tp::mp::unpack(r.result).value_or(tp::mp::value("<bad>")); }

}  // namespace

TEST(trampoline, exception_becomes_fail_with_what) {
    recorder r;
    EXPECT_EQ(run<throws_runtime>(r), TM_FAIL);
    EXPECT_EQ(r.error, "disk on fire");
}

TEST(trampoline, retryable_error_becomes_retry_with_delay) {
    recorder r;
    EXPECT_EQ(run<throws_retryable>(r), TM_RETRY);
    EXPECT_EQ(r.error, "busy");
    EXPECT_EQ(r.retry_after_ms, 250);
}

TEST(trampoline, error_codes_reach_set_error) {
    recorder r;
    EXPECT_EQ(run<throws_retryable_code>(r), TM_RETRY);
    EXPECT_EQ(r.error_code, 17);
    EXPECT_EQ(r.retry_after_ms, -1);
    recorder p;
    EXPECT_EQ(run<throws_permanent_code>(p), TM_FAIL);
    EXPECT_EQ(p.error_code, 42);
    EXPECT_EQ(p.error, "bad input");
    recorder s;
    EXPECT_EQ(run<sets_error_code>(s), TM_OK);
    EXPECT_EQ(s.error_code, 7);
    EXPECT_EQ(s.error, "seven");
}

TEST(trampoline, non_std_exception_becomes_fail) {
    recorder r;
    EXPECT_EQ(run<throws_int>(r), TM_FAIL);
    EXPECT_EQ(r.error, "unknown exception");
}

TEST(trampoline, value_return_sets_result) {
    recorder r;
    EXPECT_EQ(run<returns_value>(r, tp::mp::pack(tp::mp::value::map({{"x", 7}}))), TM_OK);
    EXPECT_EQ(result_of(r)["echo"].as_int(), 7);
}

TEST(trampoline, malformed_payload_fails_cleanly) {
    recorder r;
    EXPECT_EQ(run<returns_value>(r, std::string("\x92\x01", 2)), TM_FAIL);
    EXPECT_NE(r.error.find("not valid msgpack"), std::string::npos) << r.error;
}

TEST(trampoline, status_passes_through_and_is_noexcept) {
    recorder r;
    EXPECT_EQ(run<returns_cancelled>(r), TM_CANCELLED);
    static_assert(noexcept(tp::trampoline<throws_runtime>(nullptr, nullptr, nullptr, nullptr)));
}

TEST(trampoline, value_returning_handler_reports_cancellation) {
    recorder r;
    EXPECT_EQ(run<throws_cancelled>(r), TM_CANCELLED);
    recorder live;
    EXPECT_EQ(run<checks_cancelled>(live), TM_OK);
    recorder gone;
    gone.cancelled = 1;
    EXPECT_EQ(run<checks_cancelled>(gone), TM_CANCELLED);
    EXPECT_TRUE(gone.result.empty());
    recorder catching;
    catching.cancelled = 1;
    EXPECT_EQ(run<catches_std_exceptions>(catching), TM_CANCELLED);
}

TEST(context, set_result_over_the_limit_fails_the_task_clearly) {
    recorder r;
    r.set_result_rc = TM_E_TOO_LARGE;
    r.result_limit = 64;
    EXPECT_EQ(run<sets_result>(r), TM_FAIL);
    EXPECT_NE(r.error.find("set_result"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("100 bytes"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("limit of 64 bytes"), std::string::npos) << r.error;
    recorder v;
    v.set_result_rc = TM_E_TOO_LARGE;
    EXPECT_EQ(run<returns_value>(v, tp::mp::pack(tp::mp::value::map({{"x", 7}}))), TM_FAIL);
    EXPECT_NE(v.error.find("TM_E_TOO_LARGE"), std::string::npos) << v.error;
}

TEST(context, too_large_error_can_be_caught_to_fall_back) {
    recorder r;
    r.set_result_rc = TM_E_TOO_LARGE;
    fallback_seen.clear();
    // The host refuses every result here, so the fallback fails too; what
    // matters is that the handler saw a too_large_error it could catch.
    EXPECT_EQ(run<sets_result_with_fallback>(r), TM_FAIL);
    EXPECT_NE(fallback_seen.find("over the host's limit"), std::string::npos) << fallback_seen;
}

TEST(context, set_result_failures_map_to_statuses) {
    recorder unavailable;
    unavailable.set_result_rc = TM_E_UNAVAILABLE;
    EXPECT_EQ(run<sets_result>(unavailable), TM_RETRY);
    recorder state;
    state.set_result_rc = TM_E_STATE;
    EXPECT_EQ(run<sets_result>(state), TM_FAIL);
    recorder internal;
    internal.set_result_rc = TM_E_INTERNAL;
    EXPECT_EQ(run<sets_result>(internal), TM_RETRY);
    EXPECT_NE(internal.error.find("TM_E_INTERNAL"), std::string::npos) << internal.error;
}

TEST(context, checkpoint_save_too_large_is_permanent) {
    recorder r;
    r.checkpoint_save_rc = TM_E_TOO_LARGE;
    EXPECT_EQ(run<saves_checkpoint>(r), TM_FAIL);
    EXPECT_NE(r.error.find("checkpoint_save"), std::string::npos) << r.error;
    recorder u;
    u.checkpoint_save_rc = TM_E_UNAVAILABLE;
    EXPECT_EQ(run<saves_checkpoint>(u), TM_RETRY);
}

TEST(context, checkpoint_load_tells_none_from_unavailable) {
    recorder none;
    EXPECT_EQ(run<loads_checkpoint>(none), TM_OK);
    EXPECT_TRUE(result_of(none).is_nil());
    recorder stored;
    stored.checkpoint_load_rc = 0;
    stored.stored_checkpoint = "saved";
    EXPECT_EQ(run<loads_checkpoint>(stored), TM_OK);
    EXPECT_EQ(result_of(stored).as_string(), "saved");
    recorder down;
    down.checkpoint_load_rc = TM_E_UNAVAILABLE;
    EXPECT_EQ(run<loads_checkpoint>(down), TM_RETRY);
    EXPECT_NE(down.error.find("unavailable"), std::string::npos) << down.error;
}

TEST(context, spawn_returns_the_id_and_maps_errors) {
    recorder ok;
    EXPECT_EQ(run<spawns>(ok), TM_OK);
    EXPECT_EQ(result_of(ok).as_string(), "sub-1");
    EXPECT_EQ(ok.spawned_handler, "x.y");
    recorder unknown;
    unknown.spawn_rc = TM_E_INVALID;
    EXPECT_EQ(run<spawns>(unknown), TM_FAIL);
    EXPECT_NE(unknown.error.find("spawn of x.y"), std::string::npos) << unknown.error;
    recorder down;
    down.spawn_rc = TM_E_UNAVAILABLE;
    EXPECT_EQ(run<spawns>(down), TM_RETRY);
    recorder big;
    big.spawn_rc = TM_E_TOO_LARGE;
    EXPECT_EQ(run<spawns>(big), TM_FAIL);
    EXPECT_NE(big.error.find("TM_E_TOO_LARGE"), std::string::npos) << big.error;
}

TEST(context, limit_is_zero_on_a_1_0_host) {
    recorder r;
    r.result_limit = 1234;
    EXPECT_EQ(run<reads_limit>(r), TM_OK);
    EXPECT_EQ(result_of(r).as_int(), 1234);
    recorder old;
    old.result_limit = 1234;
    EXPECT_EQ(run<reads_limit>(old, {}, fake_host::api_1_0()), TM_OK);
    EXPECT_EQ(result_of(old).as_int(), 0);
}

TEST(context, state_without_a_declared_state_fails_clearly) {
    recorder r;
    EXPECT_EQ(run<reads_state>(r), TM_FAIL);
    EXPECT_NE(r.error.find("TASKMILL_PLUGIN_WITH_STATE"), std::string::npos) << r.error;
}
