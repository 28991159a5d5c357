// SPAWN on the engine harness: a key gives one subtask per parent across
// the parent's retries and crashes; a spawn from a worker not running the
// parent, or to a handler no worker serves, is refused.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "engine_harness.hpp"

using namespace tmtest;

namespace {

tp::control spawn(sim_worker& w, const std::string& parent, const std::string& handler, const std::string& key) {
    tp::control sp;
    sp.req = 7;
    sp.id = parent;
    auto t = task(handler);
    t.key = key;
    sp.tasks = {t};
    w.send(tp::cmd::spawn, sp);
    auto ack = w.received(tp::cmd::spawn);
    EXPECT_EQ(ack.size(), 1u);
    return ack.empty() ? tp::control{} : ack[0].second;
}

std::optional<tp::work_item> find(const std::vector<tp::work_item>& items, const std::string& id) {
    for (const auto& i : items) {
        if (i.id == id) {
            return i;
        }
    }
    return std::nullopt;
}

}  // namespace

TEST(Spawn, KeyGivesTheSameSubtaskAfterARetry) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    h.connect_worker(1, {handler("echo.echo")});
    auto t = task("a.b");
    t.retries = 3;
    t.backoff_base_ms = 1;
    auto parent = h.submit(t);
    auto first = w.dispatched();
    ASSERT_EQ(first.size(), 1u);
    auto a = spawn(w, parent, "echo.echo", "thumb");
    ASSERT_TRUE(a.ok) << a.error;
    ASSERT_EQ(a.ids.size(), 1u);
    w.result(first[0], "retry", "", "again");
    h.advance(1);
    auto second = w.dispatched();
    ASSERT_EQ(second.size(), 1u);
    EXPECT_EQ(second[0].attempt, 2u);
    auto b = spawn(w, parent, "echo.echo", "thumb");
    ASSERT_TRUE(b.ok) << b.error;
    EXPECT_EQ(b.ids, a.ids) << "the existing subtask, not a second one";
    auto c = spawn(w, parent, "echo.echo", "other");
    ASSERT_EQ(c.ids.size(), 1u);
    EXPECT_NE(c.ids, a.ids);
    EXPECT_EQ(h.status(parent).children, (std::vector<std::string>{a.ids[0], c.ids[0]}));
    auto list = h.call(tp::cmd::tasks, tp::request{});
    EXPECT_EQ(list.tasks.size(), 3u);
}

TEST(Spawn, KeyGivesTheSameSubtaskAfterACrash) {
    engine_harness h;
    h.connect_worker(1, {handler("echo.echo")});
    auto parent = h.submit(task("a.b"));
    auto& w1 = h.connect_worker(1, {handler("a.b")}, {.id = "node:1", .supervisor = "sup"});
    ASSERT_EQ(w1.dispatched().size(), 1u);
    auto a = spawn(w1, parent, "echo.echo", "k");
    ASSERT_TRUE(a.ok) << a.error;
    tp::control dead;
    dead.ids = {"node:1"};
    h.backend("sup", tp::cmd::dead, tp::encode(dead));
    auto& w2 = h.connect_worker(1, {handler("a.b")}, {.id = "node:2", .supervisor = "sup"});
    ASSERT_TRUE(find(w2.dispatched(), parent).has_value());
    auto b = spawn(w2, parent, "echo.echo", "k");
    ASSERT_TRUE(b.ok) << b.error;
    EXPECT_EQ(b.ids, a.ids);
    EXPECT_EQ(h.status(parent).children.size(), 1u);
}

// Keys are per parent: two parents with the same key get a subtask each,
// and a client's key cannot stand for a subtask's.
TEST(Spawn, KeysArePerParent) {
    engine_harness h;
    auto& w = h.connect_worker(2, {handler("a.b"), handler("echo.echo")});
    auto parents = h.submit({task("a.b"), task("a.b")});
    ASSERT_EQ(w.dispatched().size(), 2u);
    auto a = spawn(w, parents[0], "echo.echo", "k");
    auto b = spawn(w, parents[1], "echo.echo", "k");
    ASSERT_TRUE(a.ok && b.ok);
    EXPECT_NE(a.ids, b.ids);
    auto t = task("a.b");
    t.key = std::string(1, '\0') + "spawn/" + parents[0] + "/k";
    tp::request rq;
    rq.tasks = {t};
    auto rep = h.call(tp::cmd::submit, rq);
    EXPECT_EQ(rep.error_code, "invalid_argument");
    EXPECT_NE(rep.error.find("key"), std::string::npos) << rep.error;
}

TEST(Spawn, RefusedUnlessTheParentRunsOnThatWorker) {
    engine_harness h;
    auto& w1 = h.connect_worker(1, {handler("a.b"), handler("echo.echo")});
    auto& w2 = h.connect_worker(1, {handler("echo.echo")});
    auto parent = h.submit(task("a.b"));
    auto items = w1.dispatched();
    ASSERT_EQ(items.size(), 1u);
    auto other = spawn(w2, parent, "echo.echo", "");
    EXPECT_FALSE(other.ok);
    EXPECT_EQ(other.error_code, "conflict");
    EXPECT_NE(other.error.find("not running on this worker"), std::string::npos) << other.error;
    w1.result(items[0], "ok");
    auto late = spawn(w1, parent, "echo.echo", "");
    EXPECT_FALSE(late.ok) << "the parent is over";
    EXPECT_EQ(late.req, 7u);
    EXPECT_TRUE(h.status(parent).children.empty());
}

TEST(Spawn, RefusedForAHandlerNoWorkerServes) {
    engine_harness h;
    auto& w = h.connect_worker(1, {handler("a.b")});
    auto parent = h.submit(task("a.b"));
    ASSERT_EQ(w.dispatched().size(), 1u);
    auto rep = spawn(w, parent, "no.such", "");
    EXPECT_FALSE(rep.ok);
    EXPECT_EQ(rep.error_code, "unknown_handler");
    EXPECT_NE(rep.error.find("no.such"), std::string::npos) << rep.error;
    auto pinned = spawn(w, parent, "a.b@2", "");
    EXPECT_EQ(pinned.error_code, "unknown_handler") << "a.b is served, but not 2.x";
    auto list = h.call(tp::cmd::tasks, tp::request{});
    EXPECT_EQ(list.tasks.size(), 1u);
}
