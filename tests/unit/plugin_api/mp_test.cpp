// The msgpack helpers of plugin.hpp: round trips and malformed input.
#include <taskmill/plugin.hpp>

#include <gtest/gtest.h>

#include <random>

namespace mp = taskmill::plugin::mp;

TEST(mp, round_trips_json_shaped_values) {
    mp::value v = mp::value::map({{"s", "hello"},
                                  {"i", 42},
                                  {"neg", -7},
                                  {"big", int64_t{1} << 40},
                                  {"min", INT64_MIN},
                                  {"f", 2.5},
                                  {"t", true},
                                  {"n", nullptr},
                                  {"a", mp::value::array({1, "two", 3.0, mp::value::array()})},
                                  {"long", std::string(300, 'x')}});
    auto back = mp::unpack(mp::pack(v));
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(*back, v);
    EXPECT_EQ((*back)["i"].as_int(), 42);
    EXPECT_EQ((*back)["min"].as_int(), INT64_MIN);
    EXPECT_EQ((*back)["s"].as_string(), "hello");
    EXPECT_TRUE((*back)["missing"].is_nil());
}

TEST(mp, encodes_small_ints_compactly) {
    EXPECT_EQ(mp::pack(mp::value(5)), std::string("\x05"));
    EXPECT_EQ(mp::pack(mp::value(-1)), std::string("\xff"));
    EXPECT_EQ(mp::pack(mp::value::map({{"a", 1}})), std::string("\x81\xa1"
                                                                "a\x01"));
}

TEST(mp, reads_every_integer_width) {
    // uint8 200, int16 -300, uint32 70000, int8 -100 in an array
    std::string bytes = std::string("\x94\xcc\xc8\xd1\xfe\xd4\xce\x00\x01\x11\x70\xd0\x9c", 13);
    auto v = mp::unpack(bytes);
    ASSERT_TRUE(v.has_value());
    ASSERT_EQ(v->items().size(), 4u);
    EXPECT_EQ(v->items()[0].as_int(), 200);
    EXPECT_EQ(v->items()[1].as_int(), -300);
    EXPECT_EQ(v->items()[2].as_int(), 70000);
    EXPECT_EQ(v->items()[3].as_int(), -100);
}

TEST(mp, rejects_truncated_and_trailing_input) {
    std::string err;
    EXPECT_FALSE(mp::unpack(std::string("\xcd\x01", 2), &err).has_value());
    EXPECT_NE(err.find("truncated"), std::string::npos) << err;
    EXPECT_FALSE(mp::unpack(std::string("\x01\x02", 2), &err).has_value());
    EXPECT_NE(err.find("trailing"), std::string::npos) << err;
    EXPECT_FALSE(mp::unpack("", &err).has_value());
}

TEST(mp, rejects_huge_counts_without_allocating) {
    std::string err;
    // array32 claiming 4 billion elements, map32 likewise, str32 of 4 GB
    EXPECT_FALSE(mp::unpack(std::string("\xdd\xff\xff\xff\xff", 5), &err).has_value());
    EXPECT_FALSE(mp::unpack(std::string("\xdf\xff\xff\xff\xff", 5), &err).has_value());
    EXPECT_FALSE(mp::unpack(std::string("\xdb\xff\xff\xff\xff"
                                        "abc",
                                        8),
                            &err)
                     .has_value());
}

TEST(mp, rejects_deep_nesting_and_non_string_keys) {
    std::string err;
    EXPECT_FALSE(mp::unpack(std::string(100000, '\x91'), &err).has_value());
    EXPECT_NE(err.find("deep"), std::string::npos) << err;
    EXPECT_FALSE(mp::unpack(std::string("\x81\x01\x02", 3), &err).has_value());
    EXPECT_NE(err.find("key"), std::string::npos) << err;
    EXPECT_FALSE(mp::unpack(std::string("\xc1", 1), &err).has_value());  // never-used code
}

TEST(mp, random_garbage_never_crashes) {
    std::mt19937 rng(12345);
    int decoded = 0;
    for (int i = 0; i < 20000; ++i) {
        std::string bytes(rng() % 40, '\0');
        for (auto& c : bytes) c = static_cast<char>(rng() & 0xFF);
        if (mp::unpack(bytes)) ++decoded;
    }
    EXPECT_LT(decoded, 20000);  // most garbage is refused, and nothing crashed
}
