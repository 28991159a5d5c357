// The worker runtime end to end: outcomes over the size limit, and long
// tasks over a reload, with a real broker and a real host.
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <string>

#include <gtest/gtest.h>

#include "system_fixture.hpp"

namespace taskmill::testing {
namespace {

constexpr uint64_t buffer_limit = (uint64_t{16} << 20) - 64 * 1024;  // host/src/plugin_limits.hpp

class WorkerRuntime : public system_test {};

// Before: set_result took 20 MB, the broker refused the RESULTS and the
// task stayed RUNNING for good.
TEST_F(WorkerRuntime, AResultOverTheLimitEndsFailedInSeconds) {
    ASSERT_NO_FATAL_FAILURE(start_system({}, {}, 1));
    auto ids = client->submit({task("demo.big", {{"mb", 20}}), task("demo.big", {{"mb", 20}, {"fallback", true}})});
    ASSERT_EQ(ids.size(), 2u);
    auto failed = final_state(ids[0], 30s);
    EXPECT_EQ(failed.state, "FAILED");
    EXPECT_EQ(failed.error,
              "result too large (" + std::to_string(20 << 20) + " bytes, limit " + std::to_string(buffer_limit) + ")");
    auto fell_back = final_state(ids[1], 30s);
    ASSERT_EQ(fell_back.state, "SUCCEEDED") << fell_back.error;
    ASSERT_TRUE(fell_back.result.has_value());
    auto r = from_msgpack(*fell_back.result);
    EXPECT_EQ(r["rc"], -2);  // TM_E_TOO_LARGE
    EXPECT_EQ(r["limit"], buffer_limit);
}

// A broker configured with a smaller body limit refuses the RESULTS with
// ERROR: the worker reports the task failed instead, and it is not stuck.
TEST_F(WorkerRuntime, AnOutcomeTheBrokerRefusesEndsFailedNotRunning) {
    ASSERT_NO_FATAL_FAILURE(start_system({"--max-body-bytes", std::to_string(2u << 20)}, {}, 1));
    auto ids = client->submit({task("demo.big", {{"mb", 2}})});
    ASSERT_EQ(ids.size(), 1u);
    auto t = final_state(ids[0], 30s);
    EXPECT_EQ(t.state, "FAILED");
    EXPECT_NE(t.error.find("the broker refused this outcome"), std::string::npos) << t.error;
}

// A reload while long tasks run: each either finishes on the old generation
// or, cancelled first, is handed back and finishes on the new one. None is
// lost, and none is handed back without its handler seeing a cancellation.
TEST_F(WorkerRuntime, LongTasksOverAReloadFinishOrSeeACancellationFirst) {
    const fs::path plugins = tmp.path() / "plugins";
    fs::create_directories(plugins);
    for (const char* so : {"echo.so", "demo.so"}) fs::copy_file(build_paths::plugins() / so, plugins / so);
    host_options h{.plugins = plugins, .processes = 1, .concurrency = 4, .extra = {"--grace-ms", "300"}};
    ASSERT_NO_FATAL_FAILURE(start_system({}, h, 1));
    const auto generation = client->workers().at(0).generation;
    auto with_deadline = task("demo.sleep", {{"ms", 1500}});
    with_deadline.timeout_ms = 60000;
    auto ids = client->submit({with_deadline, task("demo.sleep", {{"ms", 1500}})});
    ASSERT_EQ(ids.size(), 2u);
    ASSERT_TRUE(wait_until(
        [&] {
            auto w = client->workers();
            return w.size() == 1 && w[0].busy == 2;
        },
        20s));
    // A changed file: the host checks it and starts a new generation.
    fs::copy_file(build_paths::plugins() / "echo.so", tmp.path() / "echo.so.new");
    fs::rename(tmp.path() / "echo.so.new", plugins / "echo.so");
    ASSERT_TRUE(wait_until(
        [&] {
            for (const auto& w : client->workers())
                if (w.generation > generation) return true;
            return false;
        },
        30s))
        << host->log_text();
    // The task without a deadline outlives the grace: it is handed back.
    EXPECT_EQ(final_state(ids[1], 60s).attempts, 2u);
    for (const auto& id : ids) {
        auto t = final_state(id, 60s);
        EXPECT_EQ(t.state, "SUCCEEDED") << t.error;
        if (t.attempts > 1) {
            EXPECT_NE(
                host->log_text().find("task=" + id + " handler=demo.sleep attempt=1 stopped for the worker's exit"),
                std::string::npos)
                << id << " was handed back without a cancellation:\n"
                << host->log_text();
        }
    }
}

}  // namespace
}  // namespace taskmill::testing
