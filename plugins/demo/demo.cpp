// demo -- the C++ example plugin: one handler per behaviour the host and
// the broker must cope with (sleeping, spinning, failing, progress,
// checkpoints, subtasks, crashing, leaking). Written over plugin.hpp, so
// every exception is turned into a status by the trampoline. Its state
// (demo_state) is built from its config, host.ini [plugin.demo]:
//   max_leak_mb   the most demo.leak may keep in one call (default 65536)
#include <taskmill/plugin.hpp>

#include <chrono>
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
        ids.push_back(c.spawn("echo.echo", value::map({{"i", i}}), key));
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

TASKMILL_HANDLER(sleep_handler, "demo.sleep", do_sleep);
TASKMILL_HANDLER(spin_handler, "demo.spin", do_spin);
TASKMILL_HANDLER(fail_handler, "demo.fail", do_fail);
TASKMILL_HANDLER(progress_handler, "demo.progress", do_progress);
TASKMILL_HANDLER(checkpoint_handler, "demo.checkpoint", do_checkpoint);
TASKMILL_HANDLER(spawn_handler, "demo.spawn", do_spawn);
TASKMILL_HANDLER(crash_handler, "demo.crash", do_crash);
TASKMILL_HANDLER(leak_handler, "demo.leak", do_leak);

}  // namespace

TASKMILL_PLUGIN_WITH_STATE("demo", "1.0.0", demo_state, &sleep_handler, &spin_handler, &fail_handler, &progress_handler,
                           &checkpoint_handler, &spawn_handler, &crash_handler, &leak_handler);
