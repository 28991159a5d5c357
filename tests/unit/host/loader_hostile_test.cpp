// The loader against hostile and unusual libraries: each refusal is decided
// before or while loading, with the real reason (dlerror()'s own text, the
// ELF fault, init()'s own message); init() gets the whole host table and a
// configuration map; versions and version pins follow X[.Y[.Z]].
#include <taskmill/host/plugin_loader.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <taskmill/plugin.hpp>

#include "loader/elf_check.hpp"

namespace fs = std::filesystem;
namespace mp = taskmill::plugin::mp;
using taskmill::host::load_settings;
using taskmill::host::plugin_set;

namespace {

class hostile : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("taskmill-hostile-" + std::to_string(rd()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string refusal(const fs::path& so, load_settings settings = {}) {
        plugin_set set(dir_ / "run", std::move(settings));
        auto r = set.load(so);
        EXPECT_FALSE(r.has_value()) << so << " was accepted";
        EXPECT_TRUE(set.plugins().empty());
        return r ? std::string() : r.error().message;
    }

    // A copy of `so` cut to half its size.
    fs::path truncated(const fs::path& so) {
        auto out = dir_ / "truncated.so";
        fs::copy_file(so, out);
        fs::resize_file(out, fs::file_size(so) / 2);
        return out;
    }

    fs::path dir_;
};

// Runs handler `name` of `set` with a host table that keeps the result.
std::string run_for_result(const plugin_set& set, const std::string& name) {
    static std::string result;
    result.clear();
    tm_host_api api{};
    api.struct_size = sizeof api;
    api.abi_version = (static_cast<uint32_t>(TM_ABI_MAJOR) << 16) | TM_ABI_MINOR;
    api.set_result = [](tm_ctx*, tm_bytes r) -> int32_t {
        result.assign(reinterpret_cast<const char*>(r.data), r.size);
        return 0;
    };
    const auto* h = set.resolve(name);
    if (h == nullptr) return "(no handler)";
    tm_task task{};
    task.struct_size = sizeof task;
    EXPECT_EQ(h->handler->execute(h->plugin_state, &task, &api, nullptr), TM_OK);
    return result;
}

}  // namespace

TEST_F(hostile, an_undefined_symbol_is_named) {
    auto why = refusal(TASKMILL_HOSTILE_UNDEFINED_SO);
    EXPECT_NE(why.find("undefined symbol: taskmill_no_such_function"), std::string::npos) << why;
}

TEST_F(hostile, a_missing_dependency_is_named) {
    auto why = refusal(TASKMILL_HOSTILE_NEEDS_GONE_SO);
    EXPECT_NE(why.find("libhostile_gone.so: cannot open shared object file"), std::string::npos) << why;
}

TEST_F(hostile, a_truncated_file_is_refused_before_it_is_mapped) {
    auto cut = truncated(TASKMILL_ECHO_SO);
    auto why = refusal(cut);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(why, m,
                                  std::regex("truncated or corrupt ELF file: segment ([0-9]+) ends at byte ([0-9]+), "
                                             "the file has ([0-9]+) bytes")))
        << why;
    EXPECT_EQ(std::stoull(m[3].str()), fs::file_size(cut));
    EXPECT_GT(std::stoull(m[2].str()), fs::file_size(cut));
}

TEST_F(hostile, gnu_unique_exports_are_refused) {
    auto elf = taskmill::host::detail::inspect_elf(TASKMILL_HOSTILE_UNIQUE_SO);
    ASSERT_TRUE(elf.has_value()) << elf.error().message;
    if (elf->gnu_unique.empty()) GTEST_SKIP() << "this compiler emits no STB_GNU_UNIQUE symbols";
    auto why = refusal(TASKMILL_HOSTILE_UNIQUE_SO);
    EXPECT_NE(why.find("exports STB_GNU_UNIQUE symbols"), std::string::npos) << why;
    EXPECT_NE(why.find("-fno-gnu-unique"), std::string::npos) << why;
}

TEST_F(hostile, other_exports_are_a_warning) {
    plugin_set set(dir_ / "run");
    auto p = set.load(TASKMILL_HOSTILE_MANY_EXPORTS_SO);
    ASSERT_TRUE(p.has_value()) << p.error().message;
    ASSERT_EQ((*p)->warnings.size(), 1u);
    const auto& w = (*p)->warnings[0];
    EXPECT_NE(w.find("exports 3 symbols ("), std::string::npos) << w;
    EXPECT_NE(w.find("hostile_extra_b"), std::string::npos) << w;
    EXPECT_NE(w.find("besides the entry point taskmill_plugin_v1"), std::string::npos) << w;
    // A plugin built by the rules has none.
    auto echo = set.load(TASKMILL_ECHO_SO);
    ASSERT_TRUE(echo.has_value());
    EXPECT_TRUE((*echo)->warnings.empty());
}

TEST_F(hostile, init_failure_keeps_the_plugins_message) {
    EXPECT_EQ(refusal(TASKMILL_HOSTILE_INIT_FAIL_SO),
              "init() failed with status 2: the licence file /nonexistent/licence is missing");
}

TEST_F(hostile, init_sees_every_host_function_and_logs_with_its_tag) {
    std::ostringstream lines;
    auto log = std::make_shared<spdlog::logger>("probe", std::make_shared<spdlog::sinks::ostream_sink_st>(lines));
    plugin_set set(dir_ / "run", load_settings{{}, log.get(), {}});
    auto p = set.load(TASKMILL_HOSTILE_INIT_PROBE_SO);
    ASSERT_TRUE(p.has_value()) << "init() found a host function wrong: " << p.error().message;
    log->flush();
    EXPECT_NE(lines.str().find("plugin=hostile init: probe ran every host function"), std::string::npos) << lines.str();
}

TEST_F(hostile, a_prerelease_version_is_refused) {
    auto why = refusal(TASKMILL_HOSTILE_RC_VERSION_SO);
    EXPECT_NE(why.find("malformed version '1.0.0-rc1'"), std::string::npos) << why;
}

TEST_F(hostile, stages_are_reported_in_order) {
    std::vector<taskmill::host::load_stage> seen;
    plugin_set set(dir_ / "run", load_settings{{}, nullptr, [&](auto s) { seen.push_back(s); }});
    ASSERT_TRUE(set.load(TASKMILL_CONFIG_ECHO_SO).has_value());
    using taskmill::host::load_stage;
    EXPECT_EQ(seen, (std::vector<load_stage>{load_stage::opening, load_stage::entry_point, load_stage::init}));
}

TEST_F(hostile, init_gets_its_config_or_an_empty_map) {
    std::string config = mp::pack(mp::value::map({{"region", mp::value("eu-1")}, {"threads", mp::value(4)}}));
    {
        plugin_set set(dir_ / "run", load_settings{{{"config_echo", config}}, nullptr, {}});
        ASSERT_TRUE(set.load(TASKMILL_CONFIG_ECHO_SO).has_value());
        EXPECT_EQ(run_for_result(set, "config.echo"), config);
    }
    {
        plugin_set set(dir_ / "run", load_settings{{{"another", config}}, nullptr, {}});
        auto p = set.load(TASKMILL_CONFIG_ECHO_SO);
        ASSERT_TRUE(p.has_value()) << p.error().message;
        EXPECT_EQ(run_for_result(set, "config.echo"), mp::pack(mp::value::map()));
    }
}

TEST_F(hostile, a_version_pin_matches_its_leading_numbers) {
    plugin_set set(dir_ / "run");
    for (const char* so : {TASKMILL_VERSIONED_V1_SO, TASKMILL_VERSIONED_V2_SO, TASKMILL_VERSIONED_V2_1_3_SO}) {
        ASSERT_TRUE(set.load(so).has_value()) << so;
    }
    auto version_of = [&](const char* spec) {
        const auto* h = set.resolve(spec);
        return h == nullptr ? std::string("none") : h->version;
    };
    EXPECT_EQ(version_of("ver.which"), "2.1.3");
    EXPECT_EQ(version_of("ver.which@1"), "1.0.0");
    EXPECT_EQ(version_of("ver.which@2"), "2.1.3");
    EXPECT_EQ(version_of("ver.which@2.0"), "2.0.0");
    EXPECT_EQ(version_of("ver.which@2.1"), "2.1.3");
    EXPECT_EQ(version_of("ver.which@2.1.3"), "2.1.3");
    EXPECT_EQ(version_of("ver.which@2.1.4"), "none");
    EXPECT_EQ(version_of("ver.which@2.2"), "none");
    EXPECT_EQ(version_of("ver.which@2.1.3-rc1"), "none");
}
