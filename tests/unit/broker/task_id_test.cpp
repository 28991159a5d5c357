// Task id format, parsing and time order.
#include <gtest/gtest.h>

#include <set>

#include "model/task_id.hpp"

using namespace taskmill::broker;

TEST(TaskId, Is32LowercaseHex) {
    id_generator gen;
    auto hex = to_hex(gen.next(1700000000000));
    ASSERT_EQ(hex.size(), 32u);
    for (char c : hex) {
        EXPECT_TRUE((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')) << hex;
    }
    EXPECT_EQ(hex.substr(0, 12), "018bcfe56800");  // 1700000000000 ms, 48-bit big-endian
}

TEST(TaskId, CarriesItsCreationTime) {
    id_generator gen;
    for (int64_t ms : {int64_t{0}, int64_t{1700000000000}, int64_t{(1LL << 48) - 1}}) {
        auto id = gen.next(ms);
        EXPECT_EQ(created_ms(id), ms);
        EXPECT_EQ(created_ms(std::string(id_bytes(id)) + "suffix"), ms);  // an index key's tail
    }
    EXPECT_EQ(created_ms(std::string_view("\x01\x02", 2)), 0x0102);  // short: what there is
}

TEST(TaskId, OrderedByTimeAndWithinAMillisecond) {
    id_generator gen;
    std::string prev;
    std::set<std::string> seen;
    for (int i = 0; i < 5000; ++i) {
        auto hex = to_hex(gen.next(1700000000000 + i / 1000));  // 1000 ids per ms
        EXPECT_LT(prev, hex);
        prev = hex;
        seen.insert(hex);
    }
    EXPECT_EQ(seen.size(), 5000u);
}

TEST(TaskId, ClockGoingBackDoesNotBreakOrder) {
    id_generator gen;
    auto a = to_hex(gen.next(2000));
    auto b = to_hex(gen.next(1000));
    EXPECT_LT(a, b);
}

TEST(TaskId, TwoGeneratorsDoNotCollide) {
    id_generator g1;
    id_generator g2;
    EXPECT_NE(g1.next(5), g2.next(5));
}

TEST(TaskId, ParseRoundTripAndRejects) {
    id_generator gen;
    auto id = gen.next(123456);
    auto back = parse_task_id(to_hex(id));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, id);
    EXPECT_EQ(*parse_task_id(to_hex(id).substr(0, 16) + "ABCDEF0123456789"),
              *parse_task_id(to_hex(id).substr(0, 16) + "abcdef0123456789"));  // either case
    for (std::string bad : {std::string("abc"), std::string(31, 'a') + "g", std::string(33, 'a'), std::string(),
                            std::string(31, 'a') + '\0', std::string(32, ' ')}) {
        auto r = parse_task_id(bad);
        ASSERT_FALSE(r.has_value()) << bad;
        EXPECT_EQ(r.error().code, taskmill::errc::invalid_argument);
        EXPECT_EQ(r.error().message, "id must be 32 hex chars");
    }
    EXPECT_EQ(parse_task_id("x", "before").error().message, "before must be 32 hex chars");
}
