// The plugin loader: good plugins load from private copies, bad ones are
// refused with the right reason and change nothing.
#include <taskmill/host/plugin_loader.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <random>

namespace fs = std::filesystem;
using taskmill::host::plugin_set;

namespace {

class loader : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("taskmill-loader-" + std::to_string(rd()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    std::string refusal(const char* so) {
        plugin_set set(dir_ / "run");
        auto r = set.load(so);
        EXPECT_FALSE(r.has_value()) << so << " was accepted";
        EXPECT_TRUE(set.plugins().empty());
        return r ? std::string() : r.error().message;
    }

    fs::path dir_;
};

}  // namespace

TEST_F(loader, loads_echo_and_demo_from_private_copies) {
    plugin_set set(dir_ / "run");
    auto echo = set.load(TASKMILL_ECHO_SO);
    ASSERT_TRUE(echo.has_value()) << echo.error().message;
    auto demo = set.load(TASKMILL_DEMO_SO);
    ASSERT_TRUE(demo.has_value()) << demo.error().message;
    EXPECT_EQ((*echo)->name, "echo");
    EXPECT_EQ((*demo)->version, "1.0.0");
    EXPECT_EQ((*demo)->handlers.size(), 10u);
    // The loaded file is a copy in the run folder, never the original.
    EXPECT_NE(fs::canonical((*echo)->copy), fs::canonical(TASKMILL_ECHO_SO));
    EXPECT_EQ((*echo)->copy.parent_path(), dir_ / "run");
    EXPECT_TRUE(fs::exists((*echo)->copy));
    ASSERT_NE(set.resolve("echo.echo"), nullptr);
    EXPECT_EQ(set.resolve("echo.echo")->plugin_name, "echo");
    EXPECT_NE(set.resolve("demo.sleep@1"), nullptr);
    EXPECT_NE(set.resolve("demo.sleep@1.0.0"), nullptr);
    EXPECT_EQ(set.resolve("demo.sleep@2"), nullptr);
    EXPECT_EQ(set.resolve("demo.nope"), nullptr);
    EXPECT_EQ(set.handler_infos().size(), 11u);
}

TEST_F(loader, the_same_file_twice_is_a_duplicate) {
    plugin_set set(dir_ / "run");
    ASSERT_TRUE(set.load(TASKMILL_ECHO_SO).has_value());
    auto again = set.load(TASKMILL_ECHO_SO);
    ASSERT_FALSE(again.has_value());
    EXPECT_NE(again.error().message.find("already loaded"), std::string::npos) << again.error().message;
}

TEST_F(loader, copies_are_removed_with_the_set) {
    fs::path copy;
    {
        plugin_set set(dir_ / "run");
        auto echo = set.load(TASKMILL_ECHO_SO);
        ASSERT_TRUE(echo.has_value());
        copy = (*echo)->copy;
    }
    EXPECT_FALSE(fs::exists(copy));
}

TEST_F(loader, refuses_wrong_abi_major) {
    EXPECT_NE(refusal(TASKMILL_BAD_ABI_SO).find("ABI 2.0 is not supported"), std::string::npos);
}

TEST_F(loader, refuses_library_without_entry_point) {
    EXPECT_NE(refusal(TASKMILL_NO_ENTRY_SO).find("no entry point taskmill_plugin_v1"), std::string::npos);
}

TEST_F(loader, refuses_a_text_file) {
    EXPECT_NE(refusal(TASKMILL_NOT_A_LIBRARY_SO).find("not a shared library"), std::string::npos);
}

TEST_F(loader, refuses_null_handler_name) {
    EXPECT_NE(refusal(TASKMILL_MALFORMED_SO).find("NULL name"), std::string::npos);
}

TEST_F(loader, refuses_small_struct_size) {
    EXPECT_NE(refusal(TASKMILL_BAD_STRUCT_SIZE_SO).find("struct_size 8 is too small"), std::string::npos);
}

TEST_F(loader, refuses_malformed_handler_name) {
    EXPECT_NE(refusal(TASKMILL_BAD_NAME_SO).find("malformed name 'Run'"), std::string::npos);
}

TEST_F(loader, refuses_missing_file) {
    EXPECT_NE(refusal("/nonexistent/x.so").find("no such file"), std::string::npos);
}

TEST_F(loader, refuses_a_handler_another_plugin_owns_and_keeps_the_first) {
    plugin_set set(dir_ / "run");
    ASSERT_TRUE(set.load(TASKMILL_ECHO_SO).has_value());
    auto dup = set.load(TASKMILL_DUP_HANDLER_SO);
    ASSERT_FALSE(dup.has_value());
    EXPECT_NE(dup.error().message.find("already provided by plugin echo"), std::string::npos) << dup.error().message;
    ASSERT_EQ(set.plugins().size(), 1u);
    EXPECT_EQ(set.resolve("echo.echo")->plugin_name, "echo");
}

TEST_F(loader, load_dir_keeps_the_good_and_reports_the_bad) {
    fs::create_directories(dir_ / "plugins");
    for (const char* so : {TASKMILL_ECHO_SO, TASKMILL_BAD_ABI_SO, TASKMILL_NOT_A_LIBRARY_SO, TASKMILL_NO_ENTRY_SO}) {
        fs::copy_file(so, dir_ / "plugins" / fs::path(so).filename());
    }
    plugin_set set(dir_ / "run");
    auto refusals = set.load_dir(dir_ / "plugins");
    EXPECT_EQ(refusals.size(), 3u);
    for (const auto& r : refusals) EXPECT_NE(r.find(".so: "), std::string::npos) << r;
    ASSERT_EQ(set.plugins().size(), 1u);
    EXPECT_NE(set.resolve("echo.echo"), nullptr);
}

TEST(handler_names, syntax) {
    using taskmill::host::valid_handler_name;
    EXPECT_TRUE(valid_handler_name("image.resize"));
    EXPECT_TRUE(valid_handler_name("a.b-c_d.e9"));
    EXPECT_FALSE(valid_handler_name("resize"));
    EXPECT_FALSE(valid_handler_name("Image.resize"));
    EXPECT_FALSE(valid_handler_name("a..b"));
    EXPECT_FALSE(valid_handler_name(".a"));
    EXPECT_FALSE(valid_handler_name("a.b@2"));
}

TEST(semver, parses_and_orders) {
    using taskmill::host::parse_semver;
    ASSERT_TRUE(parse_semver("2.10.3").has_value());
    EXPECT_EQ(parse_semver("2.10.3")->minor, 10u);
    EXPECT_LT(*parse_semver("2.9.0"), *parse_semver("2.10.0"));
    // X[.Y[.Z]] exactly: a pre-release or build suffix is refused.
    EXPECT_FALSE(parse_semver("1.0.0-beta").has_value());
    EXPECT_FALSE(parse_semver("1.0.0-rc1").has_value());
    EXPECT_FALSE(parse_semver("1.0.0+build5").has_value());
    EXPECT_TRUE(parse_semver("7").has_value());
    EXPECT_TRUE(parse_semver("7.1").has_value());
    EXPECT_FALSE(parse_semver("x.y").has_value());
    EXPECT_FALSE(parse_semver("").has_value());
    EXPECT_FALSE(parse_semver("1.2.3.4").has_value());
}
