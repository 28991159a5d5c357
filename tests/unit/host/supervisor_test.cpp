// The real supervisor (taskmill-host) against a fake broker: a crashed
// worker is reported DEAD at once and replaced; SIGTERM stops everything.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <thread>

#include <taskmill/plugin.hpp>
#include <taskmill/protocol/messages.hpp>

#include "fake_broker.hpp"

namespace mp = taskmill::plugin::mp;
namespace protocol = taskmill::protocol;
using namespace std::chrono_literals;
using taskmill::test::child;
using taskmill::test::fake_broker;
using taskmill::test::host_dirs;

TEST(supervisor, crash_is_reported_dead_and_the_worker_restarts) {
    host_dirs dirs;
    fake_broker broker;
    child host({TASKMILL_HOST_EXE, "--broker", broker.endpoint(), "--plugins", dirs.plugins.string(), "--run-dir",
                dirs.run.string(), "--processes", "1", "--concurrency", "1", "--grace-ms", "2000"},
               dirs.log);
    auto hello = broker.expect(protocol::cmd::hello);
    ASSERT_TRUE(hello.has_value()) << taskmill::test::read_text(dirs.log);
    protocol::dispatch d;
    protocol::work_item w;
    w.id = "boom";
    w.handler = "demo.crash";
    w.payload = mp::pack(mp::value::map());
    d.tasks.push_back(w);
    broker.send(hello->peer, protocol::cmd::dispatch, protocol::encode(d));

    auto dead = broker.expect(protocol::cmd::dead);
    ASSERT_TRUE(dead.has_value()) << taskmill::test::read_text(dirs.log);
    auto c = protocol::decode_control(dead->body);
    ASSERT_TRUE(c.has_value());
    EXPECT_EQ(c->ids, std::vector<std::string>{hello->peer});
    // The worker named this supervisor in its HELLO: the broker takes DEAD
    // for it from that peer only.
    EXPECT_EQ(protocol::decode_hello(hello->body)->supervisor, dead->peer);
#if defined(__SANITIZE_ADDRESS__)
    // ASan turns the SIGSEGV into its report and exit(1).
    EXPECT_NE(c->note.find("exited with status"), std::string::npos) << c->note;
#else
    EXPECT_NE(c->note.find("killed by signal 11"), std::string::npos) << c->note;
#endif

    auto again = broker.expect(protocol::cmd::hello);
    ASSERT_TRUE(again.has_value());
    EXPECT_NE(again->peer, hello->peer);  // a new process

    host.signal(SIGTERM);
    EXPECT_TRUE(broker.expect(protocol::cmd::bye).has_value());
    auto status = host.wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
    auto log = taskmill::test::read_text(dirs.log);
    EXPECT_NE(log.find("host ready workers=1"), std::string::npos);
    EXPECT_NE(log.find("worker exited pid="), std::string::npos);
}

TEST(check, prints_handlers_or_refuses) {
    host_dirs dirs;
    auto out = dirs.root / "check.out";
    {
        child ok({TASKMILL_HOST_EXE, "--check", TASKMILL_DEMO_SO, "--run-dir", dirs.run.string()}, out);
        auto st = ok.wait(10s);
        ASSERT_TRUE(st.has_value());
        EXPECT_EQ(WEXITSTATUS(*st), 0);
    }
    auto text = taskmill::test::read_text(out);
    EXPECT_NE(text.find("plugin demo 1.0.0 abi 1.1"), std::string::npos) << text;
    EXPECT_NE(text.find("handler demo.sleep"), std::string::npos) << text;
    auto bad = dirs.root / "bad.out";
    {
        child refused({TASKMILL_HOST_EXE, "--check", TASKMILL_BAD_ABI_SO, "--run-dir", dirs.run.string()}, bad);
        auto st = refused.wait(10s);
        ASSERT_TRUE(st.has_value());
        EXPECT_EQ(WEXITSTATUS(*st), 2);
    }
    EXPECT_NE(taskmill::test::read_text(bad).find("refused: ABI 2.0"), std::string::npos);
}

namespace {
bool log_contains(const std::filesystem::path& log, const std::string& text, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        if (taskmill::test::read_text(log).find(text) != std::string::npos) return true;
        std::this_thread::sleep_for(10ms);  // polling a condition, with a deadline
    }
    return false;
}
}  // namespace

TEST(supervisor, plugin_folder_change_starts_a_new_generation_and_a_bad_library_changes_nothing) {
    host_dirs dirs;
    fake_broker broker;
    child host({TASKMILL_HOST_EXE, "--broker", broker.endpoint(), "--plugins", dirs.plugins.string(), "--run-dir",
                dirs.run.string(), "--processes", "1", "--concurrency", "1"},
               dirs.log);
    auto first = broker.expect(protocol::cmd::hello);
    ASSERT_TRUE(first.has_value()) << taskmill::test::read_text(dirs.log);
    EXPECT_EQ(protocol::decode_hello(first->body)->generation, 0u);

    // A removed plugin: generation 1 without its handlers; generation 0 drains and says BYE.
    std::filesystem::remove(dirs.plugins / "demo.so");
    auto second = broker.expect(protocol::cmd::hello);
    ASSERT_TRUE(second.has_value()) << taskmill::test::read_text(dirs.log);
    auto h = protocol::decode_hello(second->body);
    EXPECT_EQ(h->generation, 1u);
    ASSERT_EQ(h->handlers.size(), 1u);
    EXPECT_EQ(h->handlers[0].name, "echo.echo");
    auto bye = broker.expect(protocol::cmd::bye);
    ASSERT_TRUE(bye.has_value());
    EXPECT_EQ(bye->peer, first->peer);

    // A broken library: refused in a child, nothing restarts.
    std::filesystem::copy_file(TASKMILL_BAD_ABI_SO, dirs.plugins / "tmp.part");
    std::filesystem::rename(dirs.plugins / "tmp.part", dirs.plugins / "bad.so");
    EXPECT_TRUE(log_contains(dirs.log, "reload skipped", 10s)) << taskmill::test::read_text(dirs.log);
    EXPECT_TRUE(log_contains(dirs.log, "refused: ABI 2.0", 1s));
    EXPECT_FALSE(broker.expect(protocol::cmd::hello, 300ms).has_value());

    host.signal(SIGTERM);
    auto status = host.wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}
