// Plugin state (TASKMILL_PLUGIN_WITH_STATE): built in init() from the
// config, reached by handlers, destroyed in shutdown(); a failing
// constructor fails init() with its message. First against the SDK's
// entry points directly, then with a real .so (tests/plugins/stateful.cpp).
#include "fake_host.hpp"

#include <taskmill/host/plugin_loader.hpp>
#include <taskmill/plugin.hpp>

#include <gtest/gtest.h>

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace fs = std::filesystem;
namespace tp = taskmill::plugin;
using fake_host::recorder;

namespace {

int live_states = 0;

struct counter_state {
    explicit counter_state(tp::init_context& c) : start(c.config()["start"].as_int(0)) {
        if (c.config()["throw"].as_bool()) throw std::runtime_error("cannot open the model file");
        if (c.config()["fail"].as_bool()) c.fail("bad config", 12);
        ++live_states;
    }
    ~counter_state() { --live_states; }
    counter_state(const counter_state&) = delete;
    counter_state& operator=(const counter_state&) = delete;
    int64_t start;
};

tp::mp::value reads_counter(tp::context& c) { return tp::mp::value(c.state<counter_state>().start); }
tp::mp::value reads_wrong_type(tp::context& c) { return tp::mp::value(c.state<std::string>()); }

tm_status init(recorder& r, const tp::mp::value& config, void** state) {
    tm_host_api api = fake_host::api();
    std::string bytes = config.is_nil() ? std::string() : tp::mp::pack(config);
    return tp::detail::init_state<counter_state>(&api, fake_host::as_ctx(r), tp::to_bytes(bytes), state);
}

template <auto Fn> tm_status run(recorder& r, void* state) {
    tm_host_api api = fake_host::api();
    tm_task task{};
    task.struct_size = sizeof(tm_task);
    return tp::trampoline<Fn>(state, &task, &api, fake_host::as_ctx(r));
}

tp::mp::value result_of(const recorder& r) { return tp::mp::unpack(r.result).value_or(tp::mp::value("<bad>")); }

std::string read_file(const fs::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace

TEST(plugin_state, built_from_config_reached_by_handlers_destroyed_at_shutdown) {
    recorder r;
    void* state = nullptr;
    ASSERT_EQ(init(r, tp::mp::value::map({{"start", 41}}), &state), TM_OK) << r.error;
    EXPECT_EQ(live_states, 1);
    recorder call;
    EXPECT_EQ(run<reads_counter>(call, state), TM_OK);
    EXPECT_EQ(result_of(call).as_int(), 41);
    tp::detail::shutdown_state<counter_state>(state);
    EXPECT_EQ(live_states, 0);
}

TEST(plugin_state, no_config_reads_defaults) {
    recorder r;
    void* state = nullptr;
    ASSERT_EQ(init(r, tp::mp::value(), &state), TM_OK) << r.error;
    recorder call;
    EXPECT_EQ(run<reads_counter>(call, state), TM_OK);
    EXPECT_EQ(result_of(call).as_int(), 0);
    tp::detail::shutdown_state<counter_state>(state);
}

TEST(plugin_state, throwing_constructor_fails_init_with_its_message) {
    recorder r;
    void* state = nullptr;
    EXPECT_EQ(init(r, tp::mp::value::map({{"throw", true}}), &state), TM_FAIL);
    EXPECT_EQ(r.error, "cannot open the model file");
    EXPECT_EQ(state, nullptr);
    EXPECT_EQ(live_states, 0);
    recorder f;
    EXPECT_EQ(init(f, tp::mp::value::map({{"fail", true}}), &state), TM_FAIL);
    EXPECT_EQ(f.error, "bad config");
    EXPECT_EQ(f.error_code, 12);
}

TEST(plugin_state, malformed_config_fails_init) {
    recorder r;
    void* state = nullptr;
    tm_host_api api = fake_host::api();
    std::string bad("\x82\xa1", 2);
    EXPECT_EQ(tp::detail::init_state<counter_state>(&api, fake_host::as_ctx(r), tp::to_bytes(bad), &state), TM_FAIL);
    EXPECT_NE(r.error.find("config is not valid msgpack"), std::string::npos) << r.error;
}

TEST(plugin_state, wrong_type_is_refused) {
    recorder r;
    void* state = nullptr;
    ASSERT_EQ(init(r, tp::mp::value(), &state), TM_OK);
    recorder call;
    EXPECT_EQ(run<reads_wrong_type>(call, state), TM_FAIL);
    EXPECT_NE(call.error.find("another type"), std::string::npos) << call.error;
    tp::detail::shutdown_state<counter_state>(state);
}

// The real library: loaded by the host's plugin_set (init with no config).
TEST(plugin_state, real_plugin_loads_and_serves_with_state) {
    fs::path run_dir = fs::temp_directory_path() / ("tm-state-" + std::to_string(::getpid()));
    {
        taskmill::host::plugin_set set(run_dir);
        auto loaded = set.load(TASKMILL_STATEFUL_SO);
        ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
        const auto* h = set.resolve("stateful.greet");
        ASSERT_NE(h, nullptr);
        ASSERT_NE(h->plugin_state, nullptr);
        tm_host_api api = fake_host::api();
        tm_task task{};
        task.struct_size = sizeof(tm_task);
        for (int64_t i = 1; i <= 2; ++i) {
            recorder r;
            EXPECT_EQ(h->handler->execute(h->plugin_state, &task, &api, fake_host::as_ctx(r)), TM_OK) << r.error;
            EXPECT_EQ(result_of(r)["greeting"].as_string(), "hello");
            EXPECT_EQ(result_of(r)["calls"].as_int(), i);
        }
    }
    fs::remove_all(run_dir);
}

// The real library with a config, through its own descriptor (as the host
// does once it passes [plugin.NAME] config).
class real_plugin_with_config : public ::testing::Test {
protected:
    void SetUp() override {
        lib_ = ::dlopen(TASKMILL_STATEFUL_SO, RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(lib_, nullptr) << ::dlerror();
        auto entry = reinterpret_cast<tm_plugin_entry_fn>(::dlsym(lib_, TM_PLUGIN_ENTRY_SYMBOL));
        ASSERT_NE(entry, nullptr);
        desc_ = entry();
        ASSERT_NE(desc_->init, nullptr);
        ASSERT_NE(desc_->shutdown, nullptr);
    }
    void TearDown() override {
        if (lib_ != nullptr) ::dlclose(lib_);
        fs::remove_all(dir_);
    }
    tm_status init(recorder& r, const tp::mp::value& config, void** state) {
        std::string bytes = tp::mp::pack(config);
        return desc_->init(&api_, fake_host::as_ctx(r), tp::to_bytes(bytes), state);
    }

    void* lib_ = nullptr;
    const tm_plugin* desc_ = nullptr;
    tm_host_api api_ = fake_host::api();
    fs::path dir_ = fs::temp_directory_path() / ("tm-state-cfg-" + std::to_string(::getpid()));
};

TEST_F(real_plugin_with_config, init_sees_the_config_and_shutdown_destroys_the_state) {
    fs::create_directories(dir_);
    fs::path marker = dir_ / "shutdown";
    recorder r;
    void* state = nullptr;
    ASSERT_EQ(init(r, tp::mp::value::map({{"greeting", "bonjour"}, {"shutdown_marker", marker.string()}}), &state),
              TM_OK)
        << r.error;
    ASSERT_EQ(r.logs.size(), 1u);
    EXPECT_EQ(r.logs[0], "greeting with bonjour");
    recorder call;
    tm_task task{};
    task.struct_size = sizeof(tm_task);
    EXPECT_EQ(desc_->handlers[0]->execute(state, &task, &api_, fake_host::as_ctx(call)), TM_OK) << call.error;
    EXPECT_EQ(result_of(call)["greeting"].as_string(), "bonjour");
    EXPECT_FALSE(fs::exists(marker));
    desc_->shutdown(state);
    EXPECT_EQ(read_file(marker), "shut down after 1 calls");
}

TEST_F(real_plugin_with_config, init_refusal_reaches_set_error) {
    recorder r;
    void* state = nullptr;
    EXPECT_EQ(init(r, tp::mp::value::map({{"refuse", true}}), &state), TM_FAIL);
    EXPECT_EQ(r.error, "refused by config");
    EXPECT_EQ(r.error_code, 99);
}

// plugins/demo keeps its state (config and leaked blocks) in a demo_state.
TEST(demo_plugin, config_bounds_demo_leak) {
    void* lib = ::dlopen(TASKMILL_DEMO_SO, RTLD_NOW | RTLD_LOCAL);
    ASSERT_NE(lib, nullptr) << ::dlerror();
    auto entry = reinterpret_cast<tm_plugin_entry_fn>(::dlsym(lib, TM_PLUGIN_ENTRY_SYMBOL));
    ASSERT_NE(entry, nullptr);
    const tm_plugin* desc = entry();
    const tm_handler* leak = nullptr;
    for (uint32_t i = 0; i < desc->handler_count; ++i) {
        if (std::string(desc->handlers[i]->name) == "demo.leak") leak = desc->handlers[i];
    }
    ASSERT_NE(leak, nullptr);
    tm_host_api api = fake_host::api();
    recorder r;
    void* state = nullptr;
    std::string config = tp::mp::pack(tp::mp::value::map({{"max_leak_mb", 1}}));
    ASSERT_EQ(desc->init(&api, fake_host::as_ctx(r), tp::to_bytes(config), &state), TM_OK) << r.error;
    auto leak_mb = [&](int64_t mb, recorder& out) {
        std::string payload = tp::mp::pack(tp::mp::value::map({{"mb", mb}}));
        tm_task task{};
        task.struct_size = sizeof(tm_task);
        task.payload = tp::to_bytes(payload);
        return leak->execute(state, &task, &api, fake_host::as_ctx(out));
    };
    recorder ok;
    EXPECT_EQ(leak_mb(1, ok), TM_OK) << ok.error;
    recorder over;
    EXPECT_EQ(leak_mb(2, over), TM_FAIL);
    EXPECT_EQ(over.error, "mb out of range");
    desc->shutdown(state);
    recorder refused;
    std::string negative = tp::mp::pack(tp::mp::value::map({{"max_leak_mb", -1}}));
    EXPECT_EQ(desc->init(&api, fake_host::as_ctx(refused), tp::to_bytes(negative), &state), TM_FAIL);
    EXPECT_EQ(refused.error, "max_leak_mb must not be negative");
    ::dlclose(lib);
}
