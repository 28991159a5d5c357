// [plugin.NAME] sections: how values are typed into the msgpack map init()
// receives, what is refused (with file and line), and the hand-over file
// from the supervisor to its workers and checks.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>

#include <taskmill/host/options.hpp>
#include <taskmill/plugin.hpp>

#include "loader/plugin_config.hpp"

namespace fs = std::filesystem;
namespace mp = taskmill::plugin::mp;
using taskmill::host::detail::encode_plugin_section;

namespace {

class plugin_config : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = fs::temp_directory_path() / ("taskmill-plugin-config-" + std::to_string(rd()));
        fs::create_directories(dir_);
    }
    void TearDown() override { fs::remove_all(dir_); }

    taskmill::result<taskmill::host::options> parse_ini(const std::string& text) {
        auto ini = dir_ / "host.ini";
        std::ofstream(ini) << text;
        std::vector<std::string> args{"taskmill-host", "--config", ini.string(), "--run-dir", (dir_ / "run").string()};
        std::vector<const char*> argv;
        for (const auto& a : args) argv.push_back(a.c_str());
        return taskmill::host::parse_options(static_cast<int>(argv.size()), argv.data(), {});
    }

    fs::path dir_;
};

}  // namespace

TEST_F(plugin_config, values_are_typed) {
    auto bytes = encode_plugin_section({{"n", "42"},
                                        {"neg", "-7"},
                                        {"on", "true"},
                                        {"off", "false  # no"},
                                        {"ratio", "1.5"},
                                        {"word", "eu-1 # comment"},
                                        {"quoted", "\"4\""},
                                        {"hash", "'a # b'   # and a comment"}});
    ASSERT_TRUE(bytes.has_value()) << bytes.error().message;
    auto v = mp::unpack(*bytes);
    ASSERT_TRUE(v.has_value() && v->is_map());
    EXPECT_EQ(v->find("n")->as_int(), 42);
    EXPECT_EQ(v->find("neg")->as_int(), -7);
    EXPECT_EQ(v->find("on")->type(), mp::kind::boolean);
    EXPECT_TRUE(v->find("on")->as_bool());
    EXPECT_FALSE(v->find("off")->as_bool(true));
    EXPECT_EQ(v->find("ratio")->as_string(), "1.5");
    EXPECT_EQ(v->find("word")->as_string(), "eu-1");
    EXPECT_EQ(v->find("quoted")->type(), mp::kind::string);
    EXPECT_EQ(v->find("quoted")->as_string(), "4");
    EXPECT_EQ(v->find("hash")->as_string(), "a # b");
}

TEST_F(plugin_config, an_empty_section_is_an_empty_map) {
    auto bytes = encode_plugin_section({});
    ASSERT_TRUE(bytes.has_value());
    EXPECT_EQ(*bytes, std::string(1, '\x80'));
}

TEST_F(plugin_config, bad_sections_stop_the_host_naming_file_and_line) {
    auto twice = parse_ini("[plugin.imaging]\nregion = a\nregion = b\n");
    ASSERT_FALSE(twice.has_value());
    EXPECT_NE(twice.error().message.find("host.ini:1: [plugin.imaging]: key 'region' is given twice"),
              std::string::npos)
        << twice.error().message;
    auto open = parse_ini("[plugin.imaging]\nnote = \"unclosed\n");
    ASSERT_FALSE(open.has_value());
    EXPECT_NE(open.error().message.find("note: unclosed quote"), std::string::npos) << open.error().message;
    auto nameless = parse_ini("[plugin.]\nx = 1\n");
    ASSERT_FALSE(nameless.has_value());
    EXPECT_NE(nameless.error().message.find("needs the plugin's name"), std::string::npos) << nameless.error().message;
}

TEST_F(plugin_config, the_supervisor_hands_its_sections_to_workers) {
    auto o = parse_ini("[plugin.imaging]\nregion = eu-1\n[plugin.other]\nsecret = s3cr3t\n");
    ASSERT_TRUE(o.has_value()) << o.error().message;
    ASSERT_EQ(o->plugin_configs.size(), 2u);
    ASSERT_TRUE(taskmill::host::save_plugin_configs(*o).has_value());
    auto argv = taskmill::host::worker_argv(*o, "taskmill-host", 1);
    auto at = std::find(argv.begin(), argv.end(), "--plugin-config");
    ASSERT_NE(at, argv.end());
    EXPECT_EQ(*(at + 1), o->plugin_config_file);
    // The worker parses its argv and gets the same bytes; no secret on its command line.
    for (const auto& a : argv) EXPECT_EQ(a.find("s3cr3t"), std::string::npos) << a;
    std::vector<const char*> raw;
    for (const auto& a : argv) raw.push_back(a.c_str());
    auto w = taskmill::host::parse_options(static_cast<int>(raw.size()), raw.data(), {});
    ASSERT_TRUE(w.has_value()) << w.error().message;
    EXPECT_EQ(w->plugin_configs, o->plugin_configs);
}

TEST_F(plugin_config, no_sections_write_no_file) {
    auto o = parse_ini("log-level = info\n");
    ASSERT_TRUE(o.has_value());
    ASSERT_TRUE(taskmill::host::save_plugin_configs(*o).has_value());
    EXPECT_TRUE(o->plugin_config_file.empty());
    auto argv = taskmill::host::worker_argv(*o, "taskmill-host", 1);
    EXPECT_EQ(std::find(argv.begin(), argv.end(), "--plugin-config"), argv.end());
}
