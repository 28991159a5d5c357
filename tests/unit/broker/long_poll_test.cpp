// STATUS with wait_ms (the long-poll), on the simulated clock: parked until
// the task ends or the wait does, at most five minutes, and bounded per
// client and in all.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

uint64_t park(engine_harness& h, const std::string& id, int64_t wait_ms, const std::string& client = "client",
              uint64_t req = 0) {
    tp::request rq;
    rq.req = req;
    rq.id = id;
    rq.wait_ms = wait_ms;
    return h.request(tp::cmd::status, rq, client);
}

void expect_refused(engine_harness& h, const std::string& client, uint64_t req, const std::string& why) {
    auto rep = h.reply(req, client);
    ASSERT_TRUE(rep.has_value()) << "no answer to the request over the cap";
    EXPECT_FALSE(rep->ok);
    EXPECT_EQ(rep->error_code, "unavailable");
    EXPECT_NE(rep->error.find(why), std::string::npos) << rep->error;
}

}  // namespace

TEST(LongPoll, AnUnfinishedTaskIsAnsweredWhenTheWaitEnds) {
    engine_harness h;
    auto id = h.submit(task("a.b"));  // nobody serves a.b: it stays queued
    auto req = park(h, id, 1500);
    h.advance(1499);
    EXPECT_FALSE(h.reply(req).has_value()) << "answered before wait_ms";
    h.advance(1);
    auto rep = h.reply(req);
    ASSERT_TRUE(rep.has_value()) << "not answered at wait_ms";
    ASSERT_TRUE(rep->ok && rep->task);
    EXPECT_EQ(rep->task->state, "QUEUED");
}

TEST(LongPoll, TheWaitIsAtMostFiveMinutes) {
    engine_harness h;
    auto id = h.submit(task("a.b"));
    auto req = park(h, id, 3'600'000);
    h.advance(5 * 60'000 - 1);
    EXPECT_FALSE(h.reply(req).has_value());
    h.advance(1);
    auto rep = h.reply(req);
    ASSERT_TRUE(rep.has_value());
    EXPECT_EQ(rep->task->state, "QUEUED");
}

TEST(LongPoll, AFinishedTaskIsAnsweredAtOnceAndARunningOneWhenItEnds) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto t = task("a.b");
    t.notify = true;
    auto id = h.submit(t);
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    auto req = park(h, id, 10'000, "watcher");
    h.advance(700);
    EXPECT_FALSE(h.reply(req, "watcher").has_value());
    w.result(items[0], "ok", "\x05");
    auto rep = h.reply(req, "watcher");
    ASSERT_TRUE(rep.has_value()) << "answered in the turn the result came";
    EXPECT_EQ(rep->task->state, "SUCCEEDED");
    EXPECT_EQ(rep->task->finished_ms, h.now());
    auto done = h.done();
    ASSERT_EQ(done.size(), 1u);
    EXPECT_EQ(done[0].task->result, std::optional<std::string>("\x05"));

    auto again = park(h, id, 10'000, "watcher");
    EXPECT_TRUE(h.reply(again, "watcher").has_value()) << "a final task does not park";
    h.advance(10'000);
    EXPECT_FALSE(h.reply(req, "watcher").has_value()) << "each request is answered once";
}

// One client may park only max_waits_per_client, all clients together only
// max_waits; the ones past that are answered `unavailable` at once.
TEST(LongPoll, ParkedRequestsAreCappedPerClientAndInAll) {
    auto cfg = sim_config();
    cfg.max_waits_per_client = 5;
    cfg.max_waits = 8;
    engine_harness h(cfg);
    auto id = h.submit(task("a.b"));
    for (uint64_t r = 1; r <= 5; ++r) park(h, id, 60'000, "a", r);
    expect_refused(h, "a", park(h, id, 60'000, "a", 6), "max-waits-per-client");
    for (uint64_t r = 1; r <= 3; ++r) park(h, id, 60'000, "b", r);
    expect_refused(h, "b", park(h, id, 60'000, "b", 4), "max-waits");

    // Cancelling the task answers the eight parked ones and frees their places.
    tp::request cancel;
    cancel.id = id;
    EXPECT_TRUE(h.call(tp::cmd::cancel, cancel).ok);
    for (const auto& [client, req] : std::vector<std::pair<std::string, uint64_t>>{
             {"a", 1}, {"a", 2}, {"a", 3}, {"a", 4}, {"a", 5}, {"b", 1}, {"b", 2}, {"b", 3}}) {
        auto rep = h.reply(req, client);
        ASSERT_TRUE(rep && rep->ok && rep->task) << client << " " << req;
        EXPECT_EQ(rep->task->state, "CANCELLED");
    }
    auto next = h.submit(task("a.b"));
    for (uint64_t r = 10; r < 15; ++r) park(h, next, 60'000, "a", r);
    expect_refused(h, "a", park(h, next, 60'000, "a", 15), "max-waits-per-client");
    // A wait that ends frees its place too.
    h.advance(60'000);
    for (uint64_t r = 10; r < 15; ++r) EXPECT_TRUE(h.reply(r, "a").has_value());
    park(h, next, 60'000, "a", 20);
    EXPECT_FALSE(h.reply(20, "a").has_value()) << "parked again";
}

// A restarted engine does not know the requests parked in the old one.
TEST(LongPoll, ParkedRequestsDoNotSurviveARestart) {
    engine_harness h;
    auto id = h.submit(task("a.b"));
    auto req = park(h, id, 10'000);
    h.restart();
    h.advance(20'000);
    EXPECT_FALSE(h.reply(req).has_value());
    EXPECT_EQ(h.status(id).state, "QUEUED");
}
