// demo -- the C++ example plugin: one handler per behaviour the host and
// the broker must cope with (sleeping, spinning, failing, progress,
// checkpoints, subtasks, crashing, leaking, buffers over the size limit,
// what the host answers). Written over plugin.hpp, so every exception is
// turned into a status by the trampoline. Its state (demo_state) is built
// from its config, host.ini [plugin.demo]:
//   max_leak_mb   the most demo.leak may keep in one call (default 65536)
#include <taskmill/plugin.hpp>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

namespace tp = taskmill::plugin;
using tp::mp::value;
using clock_type = std::chrono::steady_clock;

constexpr auto step = std::chrono::milliseconds(5);

int64_t unix_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
}

// Why the context says stop: a passed deadline is a timeout (retryable),
// anything else a cancellation.
tm_status stop_status(const tp::context& c) {
    if (c.deadline_unix_ms() > 0 && unix_ms() >= c.deadline_unix_ms()) {
        c.set_error("timeout");
        return TM_RETRY;
    }
    return TM_CANCELLED;
}

// Sleeps `ms` in small steps; false if the task was told to stop meanwhile.
bool sleep_checking(const tp::context& c, int64_t ms) {
    auto until = clock_type::now() + std::chrono::milliseconds(ms);
    while (clock_type::now() < until) {
        if (c.cancelled()) return false;
        std::this_thread::sleep_for(std::min<clock_type::duration>(step, until - clock_type::now()));
    }
    return !c.cancelled();
}

tm_status do_sleep(tp::context& c) {
    int64_t ms = c.payload()["ms"].as_int(0);
    if (!sleep_checking(c, ms)) return stop_status(c);
    c.set_result(value::map({{"slept_ms", ms}}));
    return TM_OK;
}

value do_spin(tp::context& c) {
    int64_t ms = c.payload()["ms"].as_int(0);
    auto until = clock_type::now() + std::chrono::milliseconds(ms);
    volatile uint64_t spins = 0;
    while (clock_type::now() < until) spins = spins + 1;  // deliberately ignores cancellation
    return value::map({{"spun_ms", ms}});
}

value do_fail(tp::context& c) {
    value p = c.payload();
    std::string mode = p["mode"].as_string("retryable");
    int64_t times = p["times"].as_int(1);
    if (mode == "permanent") throw tp::permanent_error("permanent failure (demo.fail)");
    if (static_cast<int64_t>(c.attempt()) <= times) {
        throw tp::retryable_error("planned failure " + std::to_string(c.attempt()) + " of " + std::to_string(times));
    }
    return value::map({{"attempt", static_cast<int64_t>(c.attempt())}});
}

tm_status do_progress(tp::context& c) {
    value p = c.payload();
    int64_t steps = p["steps"].as_int(1);
    int64_t ms = p["ms"].as_int(0);
    for (int64_t i = 0; i < steps; ++i) {
        if (!sleep_checking(c, ms)) return stop_status(c);
        c.progress(static_cast<double>(i + 1) / static_cast<double>(steps), "step " + std::to_string(i + 1));
    }
    c.set_result(value::map({{"steps", steps}}));
    return TM_OK;
}

// Checkpoint = {"next": first step not yet done}.
tm_status do_checkpoint(tp::context& c) {
    value p = c.payload();
    int64_t steps = p["steps"].as_int(1);
    int64_t ms = p["ms"].as_int(0);
    int64_t from = 0;
    if (auto saved = c.checkpoint_load()) {
        if (auto state = tp::mp::unpack(*saved)) from = (*state)["next"].as_int(0);
    }
    value ran = value::array();
    for (int64_t i = from; i < steps; ++i) {
        if (!sleep_checking(c, ms)) return stop_status(c);
        ran.push_back(i);
        c.checkpoint_save(value::map({{"next", i + 1}}));
    }
    c.set_result(value::map({{"ran", ran}, {"resumed_from", from}}));
    return TM_OK;
}

value do_spawn(tp::context& c) {
    int64_t n = c.payload()["n"].as_int(1);
    value ids = value::array();
    for (int64_t i = 0; i < n; ++i) {
        std::string key = "child-" + std::to_string(i);
        ids.push_back(c.spawn(c.payload()["handler"].as_string("echo.echo"), value::map({{"i", i}}), key));
    }
    // A retry spawns with the same keys: the subtasks are not made twice.
    if (c.payload()["retry_first"].as_bool(false) && c.attempt() == 1) {
        throw tp::retryable_error("retrying after spawning (demo.spawn)");
    }
    return value::map({{"ids", ids}});
}

// Reads through a pointer the optimiser cannot prove null, so the fault
// really happens at run time.
volatile int* volatile null_target = nullptr;

value do_crash(tp::context& c) {
    c.warn("about to dereference a null pointer");
    *null_target = 42;
    return value::map({{"crashed", false}});
}

// The plugin's state: its config, and the memory demo.leak keeps
// (reachable, so leak checkers stay quiet, but freed only at shutdown).
class demo_state {
public:
    explicit demo_state(tp::init_context& c) : max_leak_mb_(c.config()["max_leak_mb"].as_int(65536)) {
        if (max_leak_mb_ < 0) c.fail("max_leak_mb must not be negative");
    }

    int64_t max_leak_mb() const { return max_leak_mb_; }
    void keep(std::unique_ptr<char[]> block) {
        std::lock_guard lock(mu_);
        leaked_.push_back(std::move(block));
    }

private:
    int64_t max_leak_mb_;
    std::mutex mu_;
    std::vector<std::unique_ptr<char[]>> leaked_;
};

value do_leak(tp::context& c) {
    auto& state = c.state<demo_state>();
    int64_t mb = c.payload()["mb"].as_int(1);
    if (mb < 0 || mb > state.max_leak_mb()) throw tp::permanent_error("mb out of range");
    auto bytes = static_cast<std::size_t>(mb) << 20;
    auto block = std::make_unique<char[]>(bytes);
    std::memset(block.get(), 1, bytes);  // touch every page so it counts in RSS
    state.keep(std::move(block));
    return value::map({{"leaked_mb", mb}});
}

// Hands the host a buffer of payload "mb" MiB (over the size limit for
// 16 and more) as `what`: "result" (the default), "checkpoint" or "spawn".
// With "fallback", a refused buffer is replaced by a small result saying so
// (with the host's limit); without it the handler returns TM_OK regardless.
tm_status do_big(tp::context& c) {
    value p = c.payload();
    const std::string what = p["what"].as_string("result");
    const std::string big(static_cast<std::size_t>(p["mb"].as_int(1)) << 20, 'x');
    const tm_bytes bytes{reinterpret_cast<const uint8_t*>(big.data()), big.size()};
    const tm_host_api& host = *c.host();
    int32_t rc = 0;
    int32_t limit_of = TM_LIMIT_RESULT;
    if (what == "checkpoint") {
        rc = host.checkpoint_save(c.raw(), bytes);
        limit_of = TM_LIMIT_CHECKPOINT;
    } else if (what == "spawn") {
        tm_spawn_request r{};
        r.struct_size = sizeof r;
        r.handler = tm_str{"echo.echo", 9};
        r.payload = bytes;
        tm_str id{};
        rc = host.spawn(c.raw(), &r, &id);
        limit_of = TM_LIMIT_SPAWN;
    } else {
        rc = host.set_result(c.raw(), bytes);
    }
    if (rc != 0 && p["fallback"].as_bool(false)) {
        // TM_HOST_HAS(&host, limit), spelled without its C casts.
        const bool has_limit =
            host.struct_size >= offsetof(tm_host_api, limit) + sizeof host.limit && host.limit != nullptr;
        const uint64_t limit = has_limit ? host.limit(c.raw(), limit_of) : 0;
        c.set_result(value::map({{"rc", rc}, {"limit", static_cast<int64_t>(limit)}}));
    }
    return TM_OK;
}

// Reports what the host shows a handler and what it answers: the handler
// name, report_progress's return for a few fractions, a multi-line log
// message; with payload "code", fails with set_error's code set.
tm_status do_probe(tp::context& c) {
    value p = c.payload();
    const tm_host_api& host = *c.host();
    auto progress = [&](double f) { return static_cast<int64_t>(host.report_progress(c.raw(), f, tm_str{})); };
    c.info("first line\nforged line\tand a tab, \"quoted\"");
    c.info(std::string(20000, 'y'));
    if (int64_t code = p["code"].as_int(0); code != 0) {
        c.set_error("probe failed on purpose", -1, static_cast<int32_t>(code));
        return TM_FAIL;
    }
    c.set_result(value::map({{"handler", std::string(c.handler())},
                             {"nan", progress(std::nan(""))},
                             {"inf", progress(HUGE_VAL)},
                             {"over", progress(1.5)},
                             {"unknown", progress(-1.0)},
                             {"half", progress(0.5)}}));
    return TM_OK;
}

TASKMILL_HANDLER(sleep_handler, "demo.sleep", do_sleep);
TASKMILL_HANDLER(spin_handler, "demo.spin", do_spin);
TASKMILL_HANDLER(fail_handler, "demo.fail", do_fail);
TASKMILL_HANDLER(progress_handler, "demo.progress", do_progress);
TASKMILL_HANDLER(checkpoint_handler, "demo.checkpoint", do_checkpoint);
TASKMILL_HANDLER(spawn_handler, "demo.spawn", do_spawn);
// Crashing again will not help: no retries, and a bound on its attempt.
TASKMILL_HANDLER(crash_handler, "demo.crash", do_crash, {.default_timeout_ms = 30000, .default_retries = 0});
TASKMILL_HANDLER(leak_handler, "demo.leak", do_leak);
TASKMILL_HANDLER(big_handler, "demo.big", do_big);
TASKMILL_HANDLER(probe_handler, "demo.probe", do_probe);

}  // namespace

TASKMILL_PLUGIN_WITH_STATE("demo", "1.0.0", demo_state, &sleep_handler, &spin_handler, &fail_handler, &progress_handler,
                           &checkpoint_handler, &spawn_handler, &crash_handler, &leak_handler, &big_handler,
                           &probe_handler);
