// The Rust example plugin (plugins/rust-echo, built by cargo against the C
// ABI) in a real host: it answers, a panic inside it fails only its task,
// and taskmill-host --check accepts the library.
#include "system_fixture.hpp"

#include <sys/wait.h>

#include <cstdlib>

#include <gtest/gtest.h>

using namespace taskmill::testing;

namespace {

class RustPlugin : public system_test {
protected:
    void SetUp() override {
#ifndef TASKMILL_RUST_PLUGIN
        GTEST_SKIP() << "built without the Rust plugin (TASKMILL_BUILD_RUST is OFF: cargo was not found)";
#endif
    }

    static fs::path plugin_file() {
#ifdef TASKMILL_RUST_PLUGIN
        return TASKMILL_RUST_PLUGIN;
#else
        return {};
#endif
    }

    // A broker and one host whose plugins folder holds only rust_echo.so.
    void start() {
        auto dir = tmp.path() / "plugins";
        fs::create_directories(dir);
        fs::copy_file(plugin_file(), dir / "rust_echo.so");
        start_system({}, {.plugins = dir, .processes = 1, .concurrency = 2}, 1);
    }

    taskmill::protocol::task_info run(const nlohmann::json& payload) {
        auto ids = client->submit({task("rust.echo", payload)});
        EXPECT_EQ(ids.size(), 1u);
        return ids.empty() ? taskmill::protocol::task_info{} : final_state(ids[0]);
    }
};

TEST_F(RustPlugin, EchoesThePayloadWithItsSizeAndLogsThroughTheHost) {
    start();
    // A small map, and a string long enough for 32-bit msgpack lengths.
    for (const nlohmann::json& payload :
         {nlohmann::json{{"text", "hello"}, {"n", 3}}, nlohmann::json(std::string(70000, 'x'))}) {
        auto t = run(payload);
        ASSERT_EQ(t.state, "SUCCEEDED") << t.error << host->log_text();
        ASSERT_TRUE(t.result.has_value());
        auto size = nlohmann::json::to_msgpack(payload).size();
        EXPECT_EQ(from_msgpack(*t.result), (nlohmann::json{{"payload", payload}, {"bytes", size}}));
        auto line = "echoing " + std::to_string(size) + " bytes";
        EXPECT_TRUE(wait_until([&] { return host->log_text().find(line) != std::string::npos; }, 10s))
            << host->log_text();
    }
}

TEST_F(RustPlugin, HandlerFlagsAndPayloadVersionReachTheBroker) {
    start();
    auto workers = client->workers();
    ASSERT_FALSE(workers.empty());
    ASSERT_EQ(workers[0].handlers.size(), 1u);
    const auto& h = workers[0].handlers[0];
    EXPECT_EQ(h.name, "rust.echo");
    EXPECT_EQ(h.plugin, "rust-echo");
    EXPECT_EQ(h.version, "1.0.0");
    EXPECT_EQ(h.flags, 2u) << "TM_HANDLER_IDEMPOTENT";
    EXPECT_EQ(h.payload_version, 1u);
}

TEST_F(RustPlugin, PanicFailsOnlyItsTaskWithTheMessageAndTheWorkerLives) {
    start();
    auto before = client->workers();
    ASSERT_EQ(before.size(), 1u);

    auto t = run("panic");
    EXPECT_EQ(t.state, "FAILED") << host->log_text();
    EXPECT_EQ(t.attempts, 1u) << "TM_FAIL is never retried";
    EXPECT_NE(t.error.find("rust.echo was asked to panic"), std::string::npos) << t.error;

    auto after = run("still here");
    EXPECT_EQ(after.state, "SUCCEEDED") << after.error << host->log_text();
    auto workers = client->workers();
    ASSERT_EQ(workers.size(), 1u);
    EXPECT_EQ(workers[0].id, before[0].id) << "the panic must not end the worker";
    EXPECT_EQ(workers[0].pid, before[0].pid);
}

TEST_F(RustPlugin, HostCheckAcceptsTheLibrary) {
    auto out = tmp.path() / "check.out";
    std::string cmd = build_paths::host().string() + " --check " + plugin_file().string() + " --run-dir " +
                      (tmp.path() / "run").string() + " >" + out.string() + " 2>&1";
    int st = std::system(cmd.c_str());
    auto text = read_file(out);
    ASSERT_TRUE(WIFEXITED(st)) << text;
    EXPECT_EQ(WEXITSTATUS(st), 0) << text;
    EXPECT_NE(text.find("plugin rust-echo 1.0.0 abi 1.1"), std::string::npos) << text;
    EXPECT_NE(text.find("handler rust.echo"), std::string::npos) << text;
}

}  // namespace
