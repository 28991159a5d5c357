// [plugin.NAME] sections of host.ini reach the plugin's init() as a msgpack
// map, through a real supervisor, its worker and a real broker: the
// config_echo plugin returns the configuration it was given.
#include <fstream>

#include "system_fixture.hpp"

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

class PluginConfig : public system_test {};

}  // namespace

TEST_F(PluginConfig, SectionReachesInitAsATypedMap) {
    auto plugins = tmp.path() / "plugins";
    fs::create_directories(plugins);
    fs::copy_file(build_paths::test_plugins() / "config_echo.so", plugins / "config_echo.so");
    auto ini = tmp.path() / "host.ini";
    std::ofstream(ini) << "log-level = info\n"
                          "[plugin.config_echo]\n"
                          "region = eu-1   # a comment\n"
                          "threads = 4\n"
                          "debug = true\n"
                          "note = \"a # b\"\n"
                          "[plugin.someone_else]\n"
                          "secret = 1\n";
    start_system({}, {.plugins = plugins, .extra = {"--config", ini.string()}}, 1);
    tp::task_spec t;
    t.handler = "config.echo";
    t.payload = "\x80";
    auto ids = client->submit({t});
    ASSERT_EQ(ids.size(), 1u);
    auto done = final_state(ids[0], 30s);
    ASSERT_EQ(done.state, "SUCCEEDED") << done.error << "\n" << host->log_text();
    ASSERT_TRUE(done.result.has_value());
    // {"region": "eu-1", "threads": 4, "debug": true, "note": "a # b"}, in file order.
    const std::string want =
        "\x84"
        "\xa6region\xa4"
        "eu-1"
        "\xa7threads\x04"
        "\xa5"
        "debug\xc3"
        "\xa4note\xa5"
        "a # b";
    EXPECT_EQ(*done.result, want);
}
