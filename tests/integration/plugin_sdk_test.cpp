// The C++ SDK's plugin state in a real host: a worker loads
// tests/plugins/stateful.cpp (TASKMILL_PLUGIN_WITH_STATE), its init builds
// the state, and every task the worker runs reaches that one state.
#include "harness.hpp"

#include <gtest/gtest.h>

using namespace taskmill::testing;

TEST(PluginSdk, StateBuiltAtInitServesEveryTaskOfTheWorker) {
    temp_dir tmp;
    fs::path plugins = tmp.path() / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(build_paths::test_plugins() / "stateful.so", plugins / "stateful.so");
    broker_process broker(tmp.path() / "data");
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .plugins = plugins, .concurrency = 1});
    wire_client c(broker.ep().frontend);
    std::vector<int64_t> calls;
    for (int i = 0; i < 3; ++i) {
        auto ids = c.submit({task("stateful.greet")}, 30s);
        ASSERT_EQ(ids.size(), 1u) << host->log_text();
        auto t = c.wait_final(ids[0], 30s);
        ASSERT_TRUE(t.has_value()) << host->log_text();
        ASSERT_EQ(t->state, "SUCCEEDED") << t->error;
        auto result = from_msgpack(*t->result);
        EXPECT_EQ(result["greeting"], "hello");
        calls.push_back(result["calls"].get<int64_t>());
    }
    // One worker process, one state: its call counter went 1, 2, 3.
    EXPECT_EQ(calls, (std::vector<int64_t>{1, 2, 3}));
    EXPECT_TRUE(host->running());
}
