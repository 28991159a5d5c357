// `taskmill-host --check` (the real binary) on hostile plugins: each is
// refused with exit 2 and its own reason on stderr, in bounded time; the
// check process itself never crashes or hangs. A good plugin gives the
// report and a last line "ok" (the supervisor's contract).
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <random>
#include <regex>
#include <thread>

#include <taskmill/host/options.hpp>

#include "fake_broker.hpp"

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using taskmill::test::read_text;

namespace {

struct check_run {
    std::optional<int> status;  // nullopt: still running at the deadline (then killed)
    std::string out, err;
    std::chrono::milliseconds took{};
    int exit_code() const { return status && WIFEXITED(*status) ? WEXITSTATUS(*status) : -1; }
    std::string last_line() const {
        auto text = out;
        while (!text.empty() && text.back() == '\n') text.pop_back();
        auto nl = text.rfind('\n');
        return nl == std::string::npos ? text : text.substr(nl + 1);
    }
};

class check_binary : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("taskmill-check-" + std::to_string(rd()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    // Runs argv (argv[0] = the binary) to its end, stdout and stderr apart.
    check_run run(const std::vector<std::string>& argv, std::chrono::milliseconds limit = 30s) {
        auto out = dir_ / "out", err = dir_ / "err";
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<char*> args;
        for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
        args.push_back(nullptr);
        pid_t pid = -1;
        auto start = std::chrono::steady_clock::now();
        check_run r;
        if (posix_spawn(&pid, args[0], &fa, nullptr, args.data(), environ) != 0) pid = -1;
        posix_spawn_file_actions_destroy(&fa);
        if (pid <= 0) return r;
        while (std::chrono::steady_clock::now() - start < limit) {
            int st = 0;
            if (::waitpid(pid, &st, WNOHANG) == pid) {
                r.status = st;
                break;
            }
            std::this_thread::sleep_for(5ms);  // polling the exit, with a deadline
        }
        if (!r.status) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, nullptr, 0);
        }
        r.took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
        r.out = read_text(out);
        r.err = read_text(err);
        return r;
    }

    check_run check_file(const fs::path& so, std::vector<std::string> extra = {}) {
        std::vector<std::string> argv{TASKMILL_HOST_EXE, "--check", so.string(), "--run-dir", (dir_ / "run").string()};
        argv.insert(argv.end(), extra.begin(), extra.end());
        return run(argv);
    }

    // Expects exit 2 and exactly "refused: <why>" as the last line of stderr.
    void expect_refused(const check_run& r, const std::string& why) {
        ASSERT_TRUE(r.status.has_value()) << "the check did not end; stderr: " << r.err;
        ASSERT_TRUE(WIFEXITED(*r.status)) << "the check itself was killed by signal " << WTERMSIG(*r.status);
        EXPECT_EQ(r.exit_code(), 2) << r.err;
        EXPECT_NE(r.err.find("refused: " + why + "\n"), std::string::npos) << r.err;
        EXPECT_EQ(r.out.find("ok"), std::string::npos) << r.out;
    }

    fs::path dir_;
};

}  // namespace

TEST_F(check_binary, a_good_plugin_prints_its_report_then_ok) {
    auto r = check_file(TASKMILL_DEMO_SO);
    EXPECT_EQ(r.exit_code(), 0) << r.err;
    EXPECT_EQ(r.out.rfind("plugin demo 1.0.0 abi 1.1 file ", 0), 0u) << r.out;
    EXPECT_NE(r.out.find("  handler demo.sleep"), std::string::npos) << r.out;
    EXPECT_EQ(r.last_line(), "ok");
    EXPECT_FALSE(fs::exists(dir_ / "run")) << "the check leaves its run folder behind";
}

TEST_F(check_binary, a_constructor_that_exits_is_refused) {
    expect_refused(check_file(TASKMILL_HOSTILE_CTOR_EXIT_SO),
                   "the library ended the process while loading (exit status 0)");
}

TEST_F(check_binary, a_crashing_constructor_is_refused) {
#if defined(__SANITIZE_ADDRESS__)
    // ASan turns the SIGSEGV into its report and exit(1).
    expect_refused(check_file(TASKMILL_HOSTILE_CTOR_SEGV_SO),
                   "the library ended the process while loading (exit status 1)");
#else
    expect_refused(check_file(TASKMILL_HOSTILE_CTOR_SEGV_SO),
                   "the library crashed the process while loading (constructor): signal 11 (Segmentation fault)");
#endif
}

TEST_F(check_binary, a_process_forked_by_the_library_does_not_delay_the_verdict) {
    // The forked process keeps the check's pipe open for 3 s; the crash is
    // reported as soon as the loading process is gone.
    auto r = check_file(TASKMILL_HOSTILE_FORK_SEGV_SO, {"--init-timeout-ms", "8000"});
#if defined(__SANITIZE_ADDRESS__)
    expect_refused(r, "the library ended the process while loading (exit status 1)");
#else
    expect_refused(r, "the library crashed the process while loading (constructor): signal 11 (Segmentation fault)");
#endif
    EXPECT_LT(r.took, 2500ms);
}

TEST_F(check_binary, a_throwing_constructor_is_a_crash) {
    expect_refused(check_file(TASKMILL_HOSTILE_THROW_SO),
                   "the library crashed the process while loading (constructor): signal 6 (Aborted)");
}

TEST_F(check_binary, an_init_that_never_returns_is_refused_at_the_timeout) {
    auto r = check_file(TASKMILL_HOSTILE_INIT_HANG_SO, {"--init-timeout-ms", "300"});
    expect_refused(r, "init() did not return within 300 ms");
    EXPECT_LT(r.took, 10s);
}

TEST_F(check_binary, the_default_init_timeout_is_the_hosts) {
    taskmill::host::options o;
    EXPECT_EQ(o.init_timeout_ms, 10000);
    auto argv = taskmill::host::check_argv(o, "taskmill-host", "x.so");
    auto at = std::find(argv.begin(), argv.end(), "--init-timeout-ms");
    ASSERT_NE(at, argv.end());
    EXPECT_EQ(*(at + 1), "10000");
}

TEST_F(check_binary, a_failing_init_gives_its_message) {
    expect_refused(check_file(TASKMILL_HOSTILE_INIT_FAIL_SO),
                   "init() failed with status 2: the licence file /nonexistent/licence is missing");
}

TEST_F(check_binary, an_undefined_symbol_is_named) {
    auto r = check_file(TASKMILL_HOSTILE_UNDEFINED_SO);
    EXPECT_EQ(r.exit_code(), 2);
    EXPECT_NE(r.err.find("refused: cannot load the library: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("undefined symbol: taskmill_no_such_function"), std::string::npos) << r.err;
}

TEST_F(check_binary, a_missing_dependency_is_named) {
    auto r = check_file(TASKMILL_HOSTILE_NEEDS_GONE_SO);
    EXPECT_EQ(r.exit_code(), 2);
    EXPECT_NE(r.err.find("libhostile_gone.so: cannot open shared object file: No such file or directory"),
              std::string::npos)
        << r.err;
}

TEST_F(check_binary, a_truncated_file_is_refused_without_a_bus_error) {
    auto cut = dir_ / "cut.so";
    fs::copy_file(TASKMILL_ECHO_SO, cut);
    fs::resize_file(cut, fs::file_size(cut) / 2);
    auto r = check_file(cut);
    EXPECT_EQ(r.exit_code(), 2) << r.err;
    EXPECT_TRUE(std::regex_search(r.err, std::regex("refused: truncated or corrupt ELF file: segment [0-9]+ ends at "
                                                    "byte [0-9]+, the file has [0-9]+ bytes\n")))
        << r.err;
}

TEST_F(check_binary, extra_exports_are_a_warning_in_the_report) {
    auto r = check_file(TASKMILL_HOSTILE_MANY_EXPORTS_SO);
    EXPECT_EQ(r.exit_code(), 0) << r.err;
    EXPECT_NE(r.out.find("  warning: exports 3 symbols ("), std::string::npos) << r.out;
    EXPECT_EQ(r.last_line(), "ok");
}

TEST_F(check_binary, strict_modes_refuse_a_world_writable_file) {
    auto so = dir_ / "open.so";
    fs::copy_file(TASKMILL_ECHO_SO, so);
    fs::permissions(so, fs::perms::others_write, fs::perm_options::add);
    auto r = check_file(so);
    EXPECT_EQ(r.exit_code(), 2);
    EXPECT_NE(r.err.find("refused: strict modes: " + so.string() + " is writable by group or others"),
              std::string::npos)
        << r.err;
    auto off = check_file(so, {"--strict-modes", "false"});
    EXPECT_EQ(off.exit_code(), 0) << off.err;
    EXPECT_EQ(off.last_line(), "ok");
}

TEST_F(check_binary, a_usage_error_exits_1) {
    auto r = run({TASKMILL_HOST_EXE, "--check", TASKMILL_ECHO_SO, "--no-such-flag"});
    EXPECT_EQ(r.exit_code(), 1) << r.err;
}

TEST_F(check_binary, plugin_sections_reach_init_directly_and_through_check_argv) {
    auto ini = dir_ / "host.ini";
    std::ofstream(ini) << "log-level = warn\n[plugin.config_echo]\nfail = \"region 'mars' is not served # really\"\n";
    expect_refused(check_file(TASKMILL_CONFIG_ECHO_SO, {"--config", ini.string()}),
                   "init() failed with status 2: region 'mars' is not served # really");
    // A supervisor hands the sections it read to its checks.
    std::vector<std::string> args{"taskmill-host", "--config", ini.string(), "--run-dir", (dir_ / "run").string()};
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    auto o = taskmill::host::parse_options(static_cast<int>(argv.size()), argv.data(), {});
    ASSERT_TRUE(o.has_value()) << o.error().message;
    ASSERT_TRUE(taskmill::host::save_plugin_configs(*o).has_value());
    EXPECT_EQ(fs::status(o->plugin_config_file).permissions() & fs::perms::all,
              fs::perms::owner_read | fs::perms::owner_write);
    expect_refused(run(taskmill::host::check_argv(*o, TASKMILL_HOST_EXE, TASKMILL_CONFIG_ECHO_SO)),
                   "init() failed with status 2: region 'mars' is not served # really");
    // No section: init() gets an empty map and accepts.
    auto plain = check_file(TASKMILL_CONFIG_ECHO_SO);
    EXPECT_EQ(plain.exit_code(), 0) << plain.err;
}
