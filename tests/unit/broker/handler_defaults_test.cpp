// The defaults a handler announces in its workers' HELLO (queue, timeout,
// retries) apply to every task created for it that leaves them unset, are
// taken from the newest version a pinned handler matches, and outlive a
// broker restart. The engine on the simulated clock.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

tp::handler_info with_defaults(const std::string& name, const std::string& version, const std::string& queue,
                               std::optional<int64_t> timeout_ms, std::optional<int32_t> retries) {
    auto h = handler(name, version);
    h.default_queue = queue;
    h.default_timeout_ms = timeout_ms;
    h.default_retries = retries;
    return h;
}

}  // namespace

TEST(HandlerDefaults, ApplyWhereTheSubmitLeavesThemUnset) {
    engine_harness h;
    auto& w = h.connect_worker(4, {with_defaults("a.b", "1.0.0", "fast", 5000, 7)});
    auto id = h.submit(task("a.b"));
    auto st = h.status(id);
    EXPECT_EQ(st.queue, "fast");
    EXPECT_EQ(st.max_retries, 7);
    auto items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].timeout_ms, 5000);

    auto set = task("a.b");
    set.queue = "default";
    set.retries = 0;
    set.timeout_ms = 0;
    auto explicit_id = h.submit(set);
    st = h.status(explicit_id);
    EXPECT_EQ(st.queue, "default") << "a value the submit sets wins, even the broker's default";
    EXPECT_EQ(st.max_retries, 0);
    items = w.dispatched();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].timeout_ms, 0);
}

TEST(HandlerDefaults, UnknownHandlerKeepsTheBrokerDefaults) {
    engine_harness h;
    auto id = h.submit(task("a.b"));
    auto st = h.status(id);
    EXPECT_EQ(st.queue, "default");
    EXPECT_EQ(st.max_retries, sim_config().default_retries);
    h.connect_worker(1, {handler("a.b")});  // announces no defaults of its own
    st = h.status(h.submit(task("a.b")));
    EXPECT_EQ(st.queue, "default");
    EXPECT_EQ(st.max_retries, sim_config().default_retries);
}

TEST(HandlerDefaults, TheNewestVersionThePinMatchesWins) {
    engine_harness h;
    h.connect_worker(1, {with_defaults("a.b", "1.4.0", "q1", std::nullopt, 1)});
    h.connect_worker(1, {with_defaults("a.b", "1.10.0", "q110", std::nullopt, std::nullopt)});
    h.connect_worker(1, {with_defaults("a.b", "2.1.0", "q2", std::nullopt, 2)});
    EXPECT_EQ(h.status(h.submit(task("a.b"))).queue, "q2");
    EXPECT_EQ(h.status(h.submit(task("a.b@1"))).queue, "q110") << "1.10.0 is newer than 1.4.0";
    EXPECT_EQ(h.status(h.submit(task("a.b@1.4"))).queue, "q1");
    EXPECT_EQ(h.status(h.submit(task("a.b@2.1.0"))).queue, "q2");
    EXPECT_EQ(h.status(h.submit(task("a.b@1.10"))).max_retries, sim_config().default_retries)
        << "1.10.0 announced no retries of its own";
}

TEST(HandlerDefaults, OutliveABrokerRestart) {
    engine_harness h;
    h.connect_worker(1, {with_defaults("a.b", "1.0.0", "fast", 5000, 7)});
    h.restart();
    auto st = h.status(h.submit(task("a.b")));
    EXPECT_EQ(st.queue, "fast") << "no worker has said HELLO to this broker yet";
    EXPECT_EQ(st.max_retries, 7);
}

// A worker's figures are a peer's: what no submit could carry is ignored.
TEST(HandlerDefaults, InvalidAnnouncementsAreIgnored) {
    engine_harness h;
    h.connect_worker(1, {with_defaults("a.b", "1.0.0", "bad queue!", -5, 5000)});
    auto st = h.status(h.submit(task("a.b")));
    EXPECT_EQ(st.queue, "default");
    EXPECT_EQ(st.max_retries, sim_config().default_retries);
}

TEST(HandlerDefaults, SpawnedSubtasksGetThem) {
    engine_harness h;
    auto& w = h.connect_worker(2, {handler("p.p"), with_defaults("a.b", "1.0.0", "fast", std::nullopt, 4)});
    auto parent = h.submit(task("p.p"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    tp::control sp;
    sp.req = 1;
    sp.id = parent;
    sp.tasks = {task("a.b")};
    w.send(tp::cmd::spawn, sp);
    auto ack = w.received(tp::cmd::spawn);
    ASSERT_EQ(ack.size(), 1u);
    ASSERT_EQ(ack[0].second.ids.size(), 1u) << ack[0].second.error;
    auto st = h.status(ack[0].second.ids[0]);
    EXPECT_EQ(st.queue, "fast");
    EXPECT_EQ(st.max_retries, 4);
}
