// taskmill-host options: --prefetch (flag, environment, file), its default
// and its limits, and that the supervisor passes it on to worker processes.
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include <taskmill/host/options.hpp>

namespace th = taskmill::host;

namespace {

taskmill::result<th::options> parse(std::vector<std::string> args) {
    args.insert(args.begin(), "taskmill-host");
    std::vector<const char*> argv;
    for (const auto& a : args) argv.push_back(a.c_str());
    return th::parse_options(static_cast<int>(argv.size()), argv.data());
}

// Sets an environment variable for the lifetime of the object.
class scoped_env {
public:
    scoped_env(const char* name, const char* value) : name_(name) { ::setenv(name, value, 1); }
    ~scoped_env() { ::unsetenv(name_); }

private:
    const char* name_;
};

class config_file {
public:
    explicit config_file(const std::string& text)
        : path_(std::filesystem::temp_directory_path() / ("taskmill-options-" + std::to_string(::getpid()) + ".ini")) {
        std::ofstream(path_) << text;
    }
    ~config_file() { std::filesystem::remove(path_); }
    std::string path() const { return path_.string(); }

private:
    std::filesystem::path path_;
};

}  // namespace

TEST(HostOptions, PrefetchDefaultsToAutoFromFourTimesConcurrency) {
    auto o = parse({"--concurrency", "8"});
    ASSERT_TRUE(o.has_value()) << o.error().message;
    EXPECT_TRUE(o->prefetch_auto);
    EXPECT_EQ(o->prefetch, 32u);  // where auto starts
    EXPECT_EQ(o->prefetch_max, 1024u);
    EXPECT_EQ(th::prefetch_text(*o), "auto");
    auto d = parse({});
    ASSERT_TRUE(d.has_value()) << d.error().message;
    EXPECT_EQ(d->prefetch, 4 * d->concurrency);
    // The start never passes the ceiling, nor the ceiling the slot limit.
    auto low = parse({"--concurrency", "8", "--prefetch-max", "10"});
    ASSERT_TRUE(low.has_value()) << low.error().message;
    EXPECT_EQ(low->prefetch, 10u);
    auto big = parse({"--concurrency", "99990", "--prefetch", "auto"});
    ASSERT_TRUE(big.has_value()) << big.error().message;
    EXPECT_EQ(big->concurrency + big->prefetch_max, th::max_worker_slots);
    EXPECT_LE(big->concurrency + big->prefetch, th::max_worker_slots);
    auto full = parse({"--concurrency", "100000"});  // no room for a queue: none
    ASSERT_TRUE(full.has_value()) << full.error().message;
    EXPECT_EQ(full->prefetch, 0u);
    EXPECT_FALSE(full->prefetch_auto);
    auto zero = parse({"--prefetch-max", "0"});
    ASSERT_FALSE(zero.has_value());
    EXPECT_NE(zero.error().message.find("--prefetch-max"), std::string::npos) << zero.error().message;
}

TEST(HostOptions, PrefetchFlagZeroAndLimits) {
    auto o = parse({"--concurrency", "2", "--prefetch", "5"});
    ASSERT_TRUE(o.has_value()) << o.error().message;
    EXPECT_EQ(o->prefetch, 5u);
    EXPECT_FALSE(o->prefetch_auto);
    auto zero = parse({"--prefetch", "0"});
    ASSERT_TRUE(zero.has_value()) << zero.error().message;
    EXPECT_EQ(zero->prefetch, 0u);
    EXPECT_FALSE(zero->prefetch_auto);

    auto over = parse({"--concurrency", "10", "--prefetch", "99991"});
    ASSERT_FALSE(over.has_value());
    EXPECT_NE(over.error().message.find("--prefetch"), std::string::npos) << over.error().message;
    auto at = parse({"--concurrency", "10", "--prefetch", "99990"});
    EXPECT_TRUE(at.has_value());
    auto negative = parse({"--prefetch", "-1"});
    ASSERT_FALSE(negative.has_value());
    EXPECT_NE(negative.error().message.find("prefetch"), std::string::npos) << negative.error().message;
    auto lots = parse({"--prefetch", "lots"});
    ASSERT_FALSE(lots.has_value());
    EXPECT_NE(lots.error().message.find("auto or a number"), std::string::npos) << lots.error().message;
    EXPECT_FALSE(parse({"--prefetch", "5x"}).has_value());
    EXPECT_FALSE(parse({"--concurrency", "100001", "--prefetch", "0"}).has_value());
    EXPECT_FALSE(parse({"--concurrency", "-1"}).has_value());  // would wrap to 2^32 - 1
}

TEST(HostOptions, PrefetchFlagBeatsEnvironmentBeatsFile) {
    config_file file("concurrency = 2\nprefetch = 3\n");
    auto f = parse({"--config", file.path()});
    ASSERT_TRUE(f.has_value()) << f.error().message;
    EXPECT_EQ(f->prefetch, 3u);
    scoped_env env("TASKMILL_PREFETCH", "7");
    auto e = parse({"--config", file.path()});
    ASSERT_TRUE(e.has_value()) << e.error().message;
    EXPECT_EQ(e->prefetch, 7u);
    auto c = parse({"--config", file.path(), "--prefetch", "0"});
    ASSERT_TRUE(c.has_value()) << c.error().message;
    EXPECT_EQ(c->prefetch, 0u);
    EXPECT_NE(c->config_text.find("\nprefetch = 0\n"), std::string::npos) << c->config_text;
}

TEST(HostOptions, WorkersGetTheEffectivePrefetch) {
    auto o = parse({"--concurrency", "3", "--prefetch", "12"});
    ASSERT_TRUE(o.has_value()) << o.error().message;
    auto argv = th::worker_argv(*o, "/bin/taskmill-host", 1);
    auto it = std::find(argv.begin(), argv.end(), "--prefetch");
    ASSERT_NE(it, argv.end());
    ASSERT_NE(it + 1, argv.end());
    EXPECT_EQ(*(it + 1), "12");
    // What the worker parses back is the same.
    std::vector<std::string> back(argv.begin() + 1, argv.end());
    auto w = parse(back);
    ASSERT_TRUE(w.has_value()) << w.error().message;
    EXPECT_EQ(w->run_mode, th::mode::worker);
    EXPECT_EQ(w->concurrency, 3u);
    EXPECT_EQ(w->prefetch, 12u);
    EXPECT_FALSE(w->prefetch_auto);
}

TEST(HostOptions, WorkersGetAutoPrefetchAndItsCeiling) {
    auto o = parse({"--concurrency", "3", "--prefetch-max", "200"});
    ASSERT_TRUE(o.has_value()) << o.error().message;
    EXPECT_NE(o->config_text.find("\nprefetch = auto\n"), std::string::npos) << o->config_text;
    EXPECT_NE(o->config_text.find("# from --prefetch-max\nprefetch-max = 200\n"), std::string::npos) << o->config_text;
    auto argv = th::worker_argv(*o, "/bin/taskmill-host", 1);
    std::vector<std::string> back(argv.begin() + 1, argv.end());
    auto w = parse(back);
    ASSERT_TRUE(w.has_value()) << w.error().message;
    EXPECT_TRUE(w->prefetch_auto);
    EXPECT_EQ(w->prefetch, 12u);
    EXPECT_EQ(w->prefetch_max, 200u);
}
