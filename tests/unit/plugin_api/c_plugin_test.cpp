// plugins/stats (C, written with plugin_mp.h): its init reads the config,
// its handler reads the payload and writes the result with the C helper.
#include "fake_host.hpp"

#include <taskmill/plugin.hpp>

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <string>

namespace tp = taskmill::plugin;
using fake_host::recorder;

namespace {

class stats_plugin : public ::testing::Test {
protected:
    void SetUp() override {
        lib_ = ::dlopen(TASKMILL_STATS_SO, RTLD_NOW | RTLD_LOCAL);
        ASSERT_NE(lib_, nullptr) << ::dlerror();
        auto entry = reinterpret_cast<tm_plugin_entry_fn>(::dlsym(lib_, TM_PLUGIN_ENTRY_SYMBOL));
        ASSERT_NE(entry, nullptr);
        desc_ = entry();
    }
    void TearDown() override {
        if (state_ != nullptr) desc_->shutdown(state_);
        if (lib_ != nullptr) ::dlclose(lib_);
    }
    tm_status init(recorder& r, const std::string& config) {
        return desc_->init(&api_, fake_host::as_ctx(r), tp::to_bytes(config), &state_);
    }
    tm_status run(recorder& r, const tp::mp::value& payload) {
        std::string bytes = tp::mp::pack(payload);
        tm_task task{};
        task.struct_size = sizeof(tm_task);
        task.payload = tp::to_bytes(bytes);
        return desc_->handlers[0]->execute(state_, &task, &api_, fake_host::as_ctx(r));
    }

    void* lib_ = nullptr;
    const tm_plugin* desc_ = nullptr;
    void* state_ = nullptr;
    tm_host_api api_ = fake_host::api();
};

tp::mp::value numbers(tp::mp::value::array_t items) {
    return tp::mp::value::map({{"numbers", tp::mp::value::array(std::move(items))}});
}

}  // namespace

TEST_F(stats_plugin, summarises_numbers) {
    recorder i;
    ASSERT_EQ(init(i, {}), TM_OK) << i.error;
    recorder r;
    ASSERT_EQ(run(r, numbers({3, -1.5, 100000, 2})), TM_OK) << r.error;
    auto v = tp::mp::unpack(r.result);
    ASSERT_TRUE(v.has_value());
    EXPECT_EQ((*v)["count"].as_int(), 4);
    EXPECT_EQ((*v)["sum"].as_double(), 100003.5);
    EXPECT_EQ((*v)["min"].as_double(), -1.5);
    EXPECT_EQ((*v)["max"].as_double(), 100000.0);
    recorder empty;
    ASSERT_EQ(run(empty, numbers({})), TM_OK);
    EXPECT_TRUE((*tp::mp::unpack(empty.result))["min"].is_nil());
}

TEST_F(stats_plugin, refuses_bad_payloads_with_a_reason) {
    recorder i;
    ASSERT_EQ(init(i, {}), TM_OK);
    recorder not_numbers;
    EXPECT_EQ(run(not_numbers, numbers({1, "two"})), TM_FAIL);
    EXPECT_EQ(not_numbers.error, "numbers must hold only numbers");
    recorder no_list;
    EXPECT_EQ(run(no_list, tp::mp::value::map({{"n", 1}})), TM_FAIL);
    EXPECT_EQ(no_list.error_code, 1);
}

TEST_F(stats_plugin, config_sets_the_limit) {
    recorder i;
    ASSERT_EQ(init(i, tp::mp::pack(tp::mp::value::map({{"max_count", 2}}))), TM_OK) << i.error;
    recorder r;
    EXPECT_EQ(run(r, numbers({1, 2, 3})), TM_FAIL);
    EXPECT_EQ(r.error_code, 2);
    recorder bad;
    void* unused = nullptr;
    std::string config = tp::mp::pack(tp::mp::value::map({{"max_count", "many"}}));
    EXPECT_EQ(desc_->init(&api_, fake_host::as_ctx(bad), tp::to_bytes(config), &unused), TM_FAIL);
    EXPECT_NE(bad.error.find("max_count"), std::string::npos) << bad.error;
}
