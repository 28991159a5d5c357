// The event builder (engine/event_bus.hpp) on its own; events of a real
// broker are read in loop_test and the integration tests.
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include "engine/event_bus.hpp"

using namespace taskmill::broker;

namespace {

std::map<std::string, msgpack::object> fields(const std::string& body, msgpack::object_handle& keep) {
    keep = msgpack::unpack(body.data(), body.size());
    std::map<std::string, msgpack::object> out;
    keep.get().convert(out);
    return out;
}

}  // namespace

TEST(EventBus, BuildsNothingWithoutASubscriber) {
    event_list sink;
    event_bus bus(sink);
    bool built = false;
    bus.emit("task.queued", [&](event&) { built = true; });
    bus.subscription(true, "worker.");
    bus.emit("task.queued", [&](event&) { built = true; });
    EXPECT_FALSE(built);
    EXPECT_TRUE(sink.empty());
    bus.subscription(false, "worker.");
    EXPECT_TRUE(bus.subscriptions().empty());
}

TEST(EventBus, AnEventCarriesItsTypeFieldsAndTime) {
    event_list sink;
    event_bus bus(sink);
    bus.set_time(1234);
    bus.subscription(true, "plugin.");
    bus.emit("plugin.reloaded", [](event& e) {
        e.add("host", "h1").add("generation", uint32_t{7}).add("files", std::vector<std::string>{"a.so", "b.so"});
    });
    ASSERT_EQ(sink.size(), 1u);
    EXPECT_EQ(sink[0].first, "plugin.reloaded");
    msgpack::object_handle keep;
    auto f = fields(sink[0].second, keep);
    EXPECT_EQ(f.size(), 5u);
    EXPECT_EQ(f.at("type").as<std::string>(), "plugin.reloaded");
    EXPECT_EQ(f.at("host").as<std::string>(), "h1");
    EXPECT_EQ(f.at("generation").as<uint32_t>(), 7u);
    EXPECT_EQ(f.at("files").as<std::vector<std::string>>(), (std::vector<std::string>{"a.so", "b.so"}));
    EXPECT_EQ(f.at("time_ms").as<int64_t>(), 1234);
}

TEST(EventBus, APrefixSelectsTopics) {
    event_list sink;
    event_bus bus(sink);
    bus.subscription(true, "task.f");
    bus.emit("task.failed", [](event& e) { e.add("id", "x"); });
    bus.emit("task.queued", [](event& e) { e.add("id", "y"); });
    bus.emit("task.finished", [](event& e) { e.add("n", int64_t{-1}); });
    ASSERT_EQ(sink.size(), 2u);
    EXPECT_EQ(sink[0].first, "task.failed");
    EXPECT_EQ(sink[1].first, "task.finished");
}

// The HTTP event stream reads every event, and a socket subscriber that
// leaves does not take that away.
TEST(EventBus, ALocalReaderWantsEveryEventWhateverTheSocketSubscribes) {
    event_list sink;
    event_bus bus(sink);
    EXPECT_FALSE(bus.anyone());
    bus.local_reader(true);
    EXPECT_TRUE(bus.anyone());
    bus.subscription(true, "");
    bus.subscription(false, "");
    bus.emit("task.queued", [](event&) {});
    bus.emit("worker.joined", [](event&) {});
    ASSERT_EQ(sink.size(), 2u);
    bus.local_reader(false);
    bus.emit("task.queued", [](event&) {});
    EXPECT_EQ(sink.size(), 2u);
    EXPECT_FALSE(bus.anyone());
}
