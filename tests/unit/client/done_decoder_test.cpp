// The client's direct DONE decoder against the reference decoder
// (protocol::decode_reply): same result for every body it accepts, and it
// declines (nullopt) whatever it does not know, so the client falls back.
#include <random>

#include <gtest/gtest.h>

#include <taskmill/protocol/messages.hpp>

#include "done_decoder.hpp"

namespace {

namespace protocol = taskmill::protocol;
using taskmill::client::detail::decode_done;

void expect_same(const protocol::task_info& a, const protocol::task_info& b) {
    EXPECT_EQ(a.id, b.id);
    EXPECT_EQ(a.handler, b.handler);
    EXPECT_EQ(a.queue, b.queue);
    EXPECT_EQ(a.priority, b.priority);
    EXPECT_EQ(a.state, b.state);
    EXPECT_EQ(a.attempts, b.attempts);
    EXPECT_EQ(a.max_retries, b.max_retries);
    EXPECT_EQ(a.error, b.error);
    ASSERT_EQ(a.progress.has_value(), b.progress.has_value());
    if (a.progress) {
        EXPECT_EQ(a.progress->fraction, b.progress->fraction);
        EXPECT_EQ(a.progress->note, b.progress->note);
    }
    EXPECT_EQ(a.result, b.result);
    EXPECT_EQ(a.created_ms, b.created_ms);
    EXPECT_EQ(a.started_ms, b.started_ms);
    EXPECT_EQ(a.finished_ms, b.finished_ms);
    EXPECT_EQ(a.eta_ms, b.eta_ms);
    EXPECT_EQ(a.parent, b.parent);
    EXPECT_EQ(a.tags, b.tags);
    EXPECT_EQ(a.children, b.children);
    EXPECT_EQ(a.worker, b.worker);
    EXPECT_EQ(a.payload_size, b.payload_size);
    EXPECT_EQ(a.delete_at_ms, b.delete_at_ms);
    EXPECT_EQ(a.checkpoint_size, b.checkpoint_size);
}

void expect_same(const protocol::reply& a, const protocol::reply& b) {
    EXPECT_EQ(a.req, b.req);
    EXPECT_EQ(a.ok, b.ok);
    ASSERT_EQ(a.task.has_value(), b.task.has_value());
    if (a.task) {
        expect_same(*a.task, *b.task);
    }
    ASSERT_EQ(a.tasks.size(), b.tasks.size());
    for (std::size_t i = 0; i < a.tasks.size(); ++i) {
        expect_same(a.tasks[i], b.tasks[i]);
    }
}

protocol::task_info random_task(std::mt19937_64& rng) {
    auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<uint64_t>(n)); };
    auto text = [&](std::size_t max) {
        std::string s(rng() % (max + 1), 'x');
        for (auto& c : s) {
            c = static_cast<char>('a' + pick(26));
        }
        return s;
    };
    protocol::task_info t;
    t.id = text(40);
    t.handler = text(20);
    t.queue = text(10);
    t.priority = pick(3) == 0 ? -pick(200) : pick(100000);
    t.state = pick(2) ? "SUCCEEDED" : "FAILED";
    t.attempts = static_cast<uint32_t>(pick(3) == 0 ? rng() : rng() % 300);
    t.max_retries = pick(2) ? pick(10) : -pick(70000);
    t.error = text(300);  // crosses the fixstr / str8 / str16 boundaries
    if (pick(3) == 0) {
        t.progress = protocol::progress_info{static_cast<double>(pick(1000)) / 7.0, text(5)};
    }
    if (pick(2)) {
        t.result = std::string(static_cast<std::size_t>(pick(3) == 0 ? 70000 : pick(300)), '\x01');
    }
    t.created_ms = static_cast<int64_t>(rng() >> 1);
    t.started_ms = pick(2) ? 1'700'000'000'000 + pick(1000) : 0;
    t.finished_ms = pick(5) == 0 ? -static_cast<int64_t>(rng() >> 40) : static_cast<int64_t>(rng() >> 20);
    t.eta_ms = pick(4) == 0 ? 200 : 0;
    t.parent = pick(3) == 0 ? text(32) : "";
    for (int i = pick(20); i > 0; --i) {
        t.tags.push_back(text(8));
    }
    for (int i = pick(3); i > 0; --i) {
        t.children.push_back(text(32));
    }
    t.worker = text(12);
    t.payload_size = pick(2) ? pick(100000) : 0;
    t.delete_at_ms = pick(2) ? 1'700'000'000'000 + pick(1000) : 0;
    t.checkpoint_size = pick(2) ? pick(1 << 20) : 0;
    return t;
}

TEST(ClientDoneDecoder, MatchesTheReferenceDecoderForOneTaskAndForALists) {
    std::mt19937_64 rng(42);
    for (int round = 0; round < 300; ++round) {
        protocol::reply r;
        r.req = round % 2 ? 0 : rng();
        if (round % 3 == 0) {
            r.task = random_task(rng);
        } else {
            for (auto n = rng() % 40; n > 0; --n) {
                r.tasks.push_back(random_task(rng));
            }
        }
        const auto body = protocol::encode(r);
        auto ref = protocol::decode_reply(body);
        ASSERT_TRUE(ref) << ref.error().message;
        auto fast = decode_done(body);
        ASSERT_TRUE(fast.has_value()) << "round " << round;
        expect_same(*fast, *ref);
    }
}

TEST(ClientDoneDecoder, DeclinesWhatItDoesNotKnow) {
    protocol::reply other;
    other.ids = {"a", "b"};  // not a DONE field
    EXPECT_FALSE(decode_done(protocol::encode(other)).has_value());

    protocol::reply done;
    done.task = protocol::task_info{};
    done.task->id = "t1";
    done.task->state = "SUCCEEDED";
    auto body = protocol::encode(done);
    EXPECT_TRUE(decode_done(body).has_value());
    EXPECT_FALSE(decode_done(body + "x").has_value());                       // trailing bytes
    EXPECT_FALSE(decode_done(body.substr(0, body.size() - 1)).has_value());  // truncated
    EXPECT_FALSE(decode_done("").has_value());
    EXPECT_FALSE(decode_done(std::string("\xdd\xff\xff\xff\xff", 5)).has_value());  // a huge array, no bytes
    EXPECT_FALSE(decode_done(std::string("\x81\xa5tasks\xdd\x7f\xff\xff\xff", 11)).has_value());
}

}  // namespace
