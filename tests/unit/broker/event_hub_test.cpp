// event_hub: the loop hands events to the HTTP streams without waiting; a
// slow reader skips ahead and learns how many it missed.
#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "http/event_hub.hpp"

namespace {

using taskmill::broker::event_hub;
using namespace std::chrono_literals;

std::vector<event_hub::event> events(int from, int n) {
    std::vector<event_hub::event> out;
    for (int i = from; i < from + n; ++i) {
        out.emplace_back("task.queued", std::to_string(i));
    }
    return out;
}

TEST(EventHub, AReaderGetsWhatWasPushedAfterItAttached) {
    event_hub hub(16);
    hub.push(events(0, 3));
    EXPECT_FALSE(hub.has_readers());
    event_hub::reader r(hub);
    EXPECT_TRUE(hub.has_readers());
    hub.push(events(3, 2));
    auto b = r.wait(1s, 100);
    ASSERT_EQ(b.events.size(), 2u);
    EXPECT_EQ(b.events[0].second, "3");
    EXPECT_EQ(b.next, 5u) << "positions count every event pushed";
    EXPECT_EQ(b.dropped, 0u);
    EXPECT_TRUE(r.wait(10ms, 100).events.empty()) << "nothing new: the wait times out";
}

TEST(EventHub, ASlowReaderSkipsAheadAndIsToldHowManyItMissed) {
    event_hub hub(4);
    event_hub::reader r(hub);
    for (int i = 0; i < 10; ++i) {
        hub.push(events(i, 1));  // never blocks, whatever the reader does
    }
    auto b = r.wait(1s, 100);
    EXPECT_EQ(b.dropped, 6u);
    ASSERT_EQ(b.events.size(), 4u);
    EXPECT_EQ(b.events.front().second, "6");
    EXPECT_EQ(b.events.back().second, "9");
}

TEST(EventHub, ABatchIsBoundedAndTheRestFollows) {
    event_hub hub(100);
    event_hub::reader r(hub);
    hub.push(events(0, 10));
    EXPECT_EQ(r.wait(1s, 4).events.size(), 4u);
    auto rest = r.wait(1s, 100);
    ASSERT_EQ(rest.events.size(), 6u);
    EXPECT_EQ(rest.events.front().second, "4");
}

TEST(EventHub, ResumingAfterALastEventIdReplaysWhatTheRingHolds) {
    event_hub hub(100);
    hub.push(events(0, 5));
    event_hub::reader r(hub);
    r.resume_after(2);
    auto b = r.wait(1s, 100);
    ASSERT_EQ(b.events.size(), 2u);
    EXPECT_EQ(b.events.front().second, "3");
}

TEST(EventHub, CloseWakesAWaitingReader) {
    event_hub hub;
    event_hub::reader r(hub);
    std::thread closer([&] { hub.close(); });
    auto started = std::chrono::steady_clock::now();
    auto b = r.wait(30s, 100);
    closer.join();
    EXPECT_TRUE(b.closed);
    EXPECT_LT(std::chrono::steady_clock::now() - started, 10s);
}

TEST(EventHub, ReadersAreCountedForTheirLife) {
    event_hub hub;
    {
        event_hub::reader a(hub);
        event_hub::reader b(hub);
        EXPECT_TRUE(hub.has_readers());
    }
    EXPECT_FALSE(hub.has_readers());
}

}  // namespace
