// Lists of broker endpoints, and the walk of a peer that follows a
// cluster's leader through them.
#include <stdexcept>

#include <gtest/gtest.h>
#include <taskmill/protocol/endpoints.hpp>

namespace tp = taskmill::protocol;

TEST(Endpoints, AListIsSplitAtCommasAndTrimmed) {
    EXPECT_EQ(tp::split_endpoints("tcp://a:1"), std::vector<std::string>{"tcp://a:1"});
    EXPECT_EQ(tp::split_endpoints(" tcp://a:1 , tcp://b:2,,tcp://c:3 "),
              (std::vector<std::string>{"tcp://a:1", "tcp://b:2", "tcp://c:3"}));
}

TEST(Endpoints, AnEmptyListOrARepeatedEndpointIsRefused) {
    EXPECT_THROW(tp::split_endpoints(""), std::invalid_argument);
    EXPECT_THROW(tp::split_endpoints(" , "), std::invalid_argument);
    try {
        tp::split_endpoints("tcp://a:1,tcp://a:1");
        FAIL() << "a repeated endpoint was taken";
    } catch (const std::invalid_argument& e) {
        EXPECT_NE(std::string(e.what()).find("tcp://a:1"), std::string::npos) << e.what();
    }
}

TEST(Endpoints, TheRingGoesRoundAndFollowsTheNamedLeader) {
    tp::endpoint_ring r({"a", "b", "c"});
    EXPECT_EQ(r.current(), "a");
    EXPECT_TRUE(r.can_move());
    EXPECT_EQ(r.next(), "b");
    EXPECT_EQ(r.follow("c"), "c");
    EXPECT_EQ(r.next(), "a") << "the walk goes on from the leader it was sent to";
    EXPECT_EQ(r.follow(""), "b") << "no leader named: the next one";
    EXPECT_EQ(r.follow("b"), "c") << "named as leader the one that said it does not lead: stale, go on";
    EXPECT_EQ(r.follow("tcp://elsewhere:9"), "tcp://elsewhere:9") << "a leader off the list is followed too";
    EXPECT_EQ(r.next(), "a") << "and the list is taken up again after it";
}

TEST(Endpoints, OneEndpointCanOnlyMoveToANamedLeader) {
    tp::endpoint_ring r({"a"});
    EXPECT_FALSE(r.can_move());
    EXPECT_EQ(r.follow("x"), "x");
    EXPECT_TRUE(r.can_move()) << "back to its own endpoint when the leader it followed goes silent";
    EXPECT_EQ(r.next(), "a");
    EXPECT_FALSE(r.can_move());
}
