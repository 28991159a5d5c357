// The real supervisor (taskmill-host) against a fake broker: a crashed
// worker is reported DEAD at once and replaced; SIGTERM stops everything.
#include <signal.h>
#include <sys/wait.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
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
using taskmill::test::received;

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
    EXPECT_TRUE(log_contains(dirs.log, "plugin refused: bad.so: ABI 2.0", 1s));
    EXPECT_FALSE(broker.expect(protocol::cmd::hello, 300ms).has_value());

    host.signal(SIGTERM);
    auto status = host.wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

namespace {

std::size_t count_of(const std::string& text, const std::string& what) {
    std::size_t n = 0;
    for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
    return n;
}

// The first half of echo.so: an ELF header and nothing behind it.
void put_truncated_echo(const std::filesystem::path& to) {
    std::string bytes = taskmill::test::read_text(TASKMILL_ECHO_SO);
    std::ofstream(to, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
}

std::vector<std::string> handler_names(const received& hello) {
    std::vector<std::string> names;
    auto h = protocol::decode_hello(hello.body);
    if (!h) return names;
    for (const auto& handler : h->handlers) names.push_back(handler.name);
    std::sort(names.begin(), names.end());
    return names;
}

bool has_prefix(const std::vector<std::string>& names, const std::string& prefix) {
    return std::any_of(names.begin(), names.end(), [&](const auto& n) { return n.rfind(prefix, 0) == 0; });
}

void stop(child& host) {
    host.signal(SIGTERM);
    auto status = host.wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

}  // namespace

// Files that end or crash whatever loads them, or are cut short, are
// refused by name before any worker loads them; the rest is served by
// one worker that starts once.
TEST(supervisor, hostile_files_at_start_are_refused_by_name_and_the_rest_serves) {
    host_dirs dirs;
    std::filesystem::copy_file(TASKMILL_CTOR_EXIT_SO, dirs.plugins / "ctor_exit.so");
    std::filesystem::copy_file(TASKMILL_CTOR_SEGV_SO, dirs.plugins / "ctor_segv.so");
    put_truncated_echo(dirs.plugins / "truncated.so");
    fake_broker broker;
    child host({TASKMILL_HOST_EXE, "--broker", broker.endpoint(), "--plugins", dirs.plugins.string(), "--run-dir",
                dirs.run.string(), "--processes", "1", "--concurrency", "1"},
               dirs.log);
    auto hello = broker.expect(protocol::cmd::hello);
    ASSERT_TRUE(hello.has_value()) << taskmill::test::read_text(dirs.log);
    auto names = handler_names(*hello);
    EXPECT_TRUE(has_prefix(names, "echo.")) << taskmill::test::read_text(dirs.log);
    EXPECT_TRUE(has_prefix(names, "demo."));
    EXPECT_FALSE(has_prefix(names, "ctor."));
    EXPECT_FALSE(broker.expect(protocol::cmd::hello, 500ms).has_value()) << "a second worker started";
    auto log = taskmill::test::read_text(dirs.log);
    EXPECT_NE(log.find("plugin refused: ctor_exit.so: the library ended the process while loading (exit status 0)"),
              std::string::npos)
        << log;
    EXPECT_NE(log.find("plugin refused: ctor_segv.so: "), std::string::npos) << log;
    EXPECT_NE(log.find("plugin refused: truncated.so: "), std::string::npos) << log;
    EXPECT_EQ(count_of(log, "worker started"), 1u) << log;
    // The workers load the judged copies, not the watched folder.
    EXPECT_TRUE(std::filesystem::exists(dirs.run / "generation-0" / "echo.so"));
    EXPECT_FALSE(std::filesystem::exists(dirs.run / "generation-0" / "ctor_exit.so"));
    stop(host);
    EXPECT_FALSE(std::filesystem::exists(dirs.run)) << "the run folder was left behind";
}

// A plugin that passes --check but kills every worker that loads it: each
// death is a failed start, named after that plugin and restarted with
// backoff; after max_failed_starts the host starts without it.
TEST(supervisor, workers_dying_while_loading_a_plugin_name_it_back_off_and_start_without_it) {
    host_dirs dirs;
    std::filesystem::copy_file(TASKMILL_CTOR_SEGV_IN_WORKER_SO, dirs.plugins / "zz_crash.so");
    fake_broker broker;
    child host({TASKMILL_HOST_EXE, "--broker", broker.endpoint(), "--plugins", dirs.plugins.string(), "--run-dir",
                dirs.run.string(), "--processes", "1", "--concurrency", "1"},
               dirs.log);
    auto dead = broker.expect(protocol::cmd::dead);
    ASSERT_TRUE(dead.has_value()) << taskmill::test::read_text(dirs.log);
    auto note = protocol::decode_control(dead->body)->note;
    EXPECT_NE(note.find("while loading plugin zz_crash.so"), std::string::npos) << note;
    auto hello = broker.expect(protocol::cmd::hello);
    ASSERT_TRUE(hello.has_value()) << taskmill::test::read_text(dirs.log);
    auto names = handler_names(*hello);
    EXPECT_TRUE(has_prefix(names, "echo."));
    EXPECT_FALSE(has_prefix(names, "ctor."));
    EXPECT_EQ(protocol::decode_hello(hello->body)->generation, 1u);
    auto log = taskmill::test::read_text(dirs.log);
    EXPECT_EQ(count_of(log, "worker failed to start"), 3u) << log;
    EXPECT_EQ(count_of(log, "while loading plugin zz_crash.so"), 3u) << log;
    EXPECT_NE(log.find("restart in 100 ms"), std::string::npos) << log;
    EXPECT_NE(log.find("restart in 200 ms"), std::string::npos) << log;
    EXPECT_NE(log.find("plugin refused: zz_crash.so: workers died loading it 3 times in a row"), std::string::npos)
        << log;
    EXPECT_EQ(log.find("recycled"), std::string::npos) << log;
    EXPECT_FALSE(broker.expect(protocol::cmd::hello, 500ms).has_value()) << "a second worker started";
    EXPECT_EQ(count_of(taskmill::test::read_text(dirs.log), "worker started"), 4u);
    stop(host);
}

// A worker that exits 0 before it is up is a failed start too, never a
// recycle: no restart storm, and the host starts without the plugin.
TEST(supervisor, workers_exiting_0_while_loading_are_failed_starts_not_recycled) {
    host_dirs dirs;
    std::filesystem::copy_file(TASKMILL_CTOR_EXIT_IN_WORKER_SO, dirs.plugins / "zz_exit.so");
    fake_broker broker;
    child host({TASKMILL_HOST_EXE, "--broker", broker.endpoint(), "--plugins", dirs.plugins.string(), "--run-dir",
                dirs.run.string(), "--processes", "2", "--concurrency", "1"},
               dirs.log);
    ASSERT_TRUE(broker.expect(protocol::cmd::hello).has_value()) << taskmill::test::read_text(dirs.log);
    ASSERT_TRUE(broker.expect(protocol::cmd::hello).has_value()) << taskmill::test::read_text(dirs.log);
    auto log = taskmill::test::read_text(dirs.log);
    EXPECT_EQ(log.find("recycled"), std::string::npos) << log;
    EXPECT_NE(log.find("reason=\"exited with status 0 while loading plugin zz_exit.so\""), std::string::npos) << log;
    EXPECT_NE(log.find("plugin refused: zz_exit.so: workers died loading it"), std::string::npos) << log;
    // 2 slots: 3 failed starts (maybe one more already under way), then 2 good ones.
    EXPECT_LE(count_of(log, "worker started"), 6u) << log;
    EXPECT_FALSE(broker.expect(protocol::cmd::hello, 500ms).has_value()) << "a third worker started";
    stop(host);
}

// A reload retires the old generation's worker with SIGUSR1 ("retire"),
// not SIGTERM.
TEST(supervisor, a_reload_retires_the_old_worker_with_sigusr1) {
    host_dirs dirs;
    fake_broker broker;
    child host({TASKMILL_HOST_EXE, "--broker", broker.endpoint(), "--plugins", dirs.plugins.string(), "--run-dir",
                dirs.run.string(), "--processes", "1", "--concurrency", "1"},
               dirs.log);
    auto first = broker.expect(protocol::cmd::hello);
    ASSERT_TRUE(first.has_value()) << taskmill::test::read_text(dirs.log);
    const auto old_pid = protocol::decode_hello(first->body)->pid;
    ASSERT_TRUE(log_contains(dirs.log, "worker ready pid=" + std::to_string(old_pid), 10s))
        << taskmill::test::read_text(dirs.log);
    std::filesystem::remove(dirs.plugins / "demo.so");
    ASSERT_TRUE(broker.expect(protocol::cmd::hello).has_value()) << taskmill::test::read_text(dirs.log);
    EXPECT_TRUE(
        log_contains(dirs.log, "worker pid=" + std::to_string(old_pid) + " generation=0 retiring (SIGUSR1)", 5s))
        << taskmill::test::read_text(dirs.log);
    // It finishes and leaves on its own, not killed by the signal.
    auto bye = broker.expect(protocol::cmd::bye);
    ASSERT_TRUE(bye.has_value()) << taskmill::test::read_text(dirs.log);
    EXPECT_EQ(bye->peer, first->peer);
    stop(host);
}
