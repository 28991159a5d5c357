// The one way to write msgpack (taskmill/protocol/msgpack_out.hpp): the
// bytes are msgpack-c's own, whatever the first guess of their size.
#include <taskmill/protocol/msgpack_out.hpp>

#include <map>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace tp = taskmill::protocol;

namespace {

std::string with_sbuffer(const std::map<std::string, std::vector<int>>& v) {
    msgpack::sbuffer buf;
    msgpack::pack(buf, v);
    return std::string(buf.data(), buf.size());
}

}  // namespace

TEST(MsgpackOut, PackWithWritesWhatThePackerWrites) {
    auto body = tp::pack_with([](tp::string_packer& pk) {
        pk.pack_map(2);
        pk.pack("a");
        pk.pack(1);
        pk.pack("b");
        pk.pack_nil();
    });
    EXPECT_EQ(body, std::string("\x82\xa1"
                                "a\x01\xa1"
                                "b\xc0",
                                7));
    EXPECT_EQ(tp::pack_with([](tp::string_packer&) {}), "");
}

TEST(MsgpackOut, PackValueEqualsMsgpackPackAtAnyFirstGuess) {
    std::map<std::string, std::vector<int>> v;
    for (int i = 0; i < 1000; ++i) {
        v["key" + std::to_string(i)] = std::vector<int>(static_cast<std::size_t>(i % 7), i);
    }
    const auto expected = with_sbuffer(v);
    ASSERT_GT(expected.size(), 4096u);
    for (std::size_t guess : {std::size_t{0}, std::size_t{1}, std::size_t{128}, expected.size(), 4 * expected.size()}) {
        EXPECT_EQ(tp::pack_value(v, guess), expected) << guess;
    }
}

TEST(MsgpackOut, LargeStringsArriveWhole) {
    const std::string big(1 << 20, 'x');
    auto body = tp::pack_value(big);
    ASSERT_EQ(body.size(), big.size() + 5);  // str32 header
    EXPECT_EQ(static_cast<unsigned char>(body[0]), 0xdbu);
    EXPECT_EQ(body.substr(5), big);
}

TEST(MsgpackOut, PackOntoAppendsAfterWhatTheStringHeld) {
    std::string out = "head";
    tp::pack_onto(out, [](tp::string_packer& pk) { pk.pack(1); });
    tp::pack_onto(
        out, [](tp::string_packer& pk) { pk.pack(std::string(100, 'y')); }, 0);
    EXPECT_EQ(out.substr(0, 5), std::string("head\x01", 5));
    EXPECT_EQ(out.size(), 5u + 2u + 100u);  // str8 header: 2 bytes
    EXPECT_EQ(out.substr(7), std::string(100, 'y'));
}
