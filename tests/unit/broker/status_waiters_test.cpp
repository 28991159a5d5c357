// The parked STATUS requests (engine/status_waiters.hpp) on their own; the
// engine's use of them runs through real brokers in lifecycle_test.
#include <gtest/gtest.h>

#include "engine/status_waiters.hpp"

using namespace taskmill;
using namespace taskmill::broker;

namespace {

task_id make_id(uint8_t n) {
    task_id id{};
    id[15] = n;
    return id;
}

}  // namespace

TEST(StatusWaiters, AnswersByTaskAndByDeadline) {
    status_waiters w(10, 10);
    ASSERT_TRUE(w.park("a", 1, make_id(1), 500));
    ASSERT_TRUE(w.park("b", 2, make_id(1), 300));
    ASSERT_TRUE(w.park("a", 3, make_id(2), 100));
    EXPECT_EQ(w.size(), 3u);
    EXPECT_EQ(w.next_deadline(), 100);

    auto due = w.take_due(100);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].req, 3u);
    EXPECT_EQ(due[0].id, make_id(2));
    EXPECT_EQ(w.next_deadline(), 300);

    auto ended = w.take_task(make_id(1));
    ASSERT_EQ(ended.size(), 2u);
    EXPECT_TRUE(w.take_task(make_id(1)).empty());
    EXPECT_EQ(w.size(), 0u);
    EXPECT_EQ(w.next_deadline(), std::nullopt);
    EXPECT_TRUE(w.take_due(10000).empty());  // answered requests leave no deadline behind
    EXPECT_EQ(w.of_peer("a"), 0u);
}

TEST(StatusWaiters, DueRequestsComeEarliestFirstAndLeaveTheirTask) {
    status_waiters w(10, 10);
    ASSERT_TRUE(w.park("a", 1, make_id(1), 300));
    ASSERT_TRUE(w.park("a", 2, make_id(1), 200));
    auto due = w.take_due(250);
    ASSERT_EQ(due.size(), 1u);
    EXPECT_EQ(due[0].req, 2u);
    auto ended = w.take_task(make_id(1));
    ASSERT_EQ(ended.size(), 1u);
    EXPECT_EQ(ended[0].req, 1u);
}

TEST(StatusWaiters, BoundsPerClientAndInTotal) {
    status_waiters w(3, 2);
    ASSERT_TRUE(w.park("a", 1, make_id(1), 100));
    ASSERT_TRUE(w.park("a", 2, make_id(2), 100));
    auto own = w.park("a", 3, make_id(3), 100);
    ASSERT_FALSE(own);
    EXPECT_EQ(own.error().code, errc::unavailable);
    EXPECT_NE(own.error().message.find("max-waits-per-client"), std::string::npos);

    ASSERT_TRUE(w.park("b", 4, make_id(4), 100));
    auto all = w.park("c", 5, make_id(5), 100);
    ASSERT_FALSE(all);
    EXPECT_NE(all.error().message.find("(max-waits)"), std::string::npos);
    EXPECT_EQ(w.of_peer("c"), 0u);

    // An answered request frees its client's room.
    w.take_task(make_id(1));
    EXPECT_EQ(w.of_peer("a"), 1u);
    EXPECT_TRUE(w.park("a", 6, make_id(6), 100));
    auto parked = w.all();
    EXPECT_EQ(parked.size(), 3u);
}
