// The in-memory listing of QUEUED and RUNNING tasks: filters, newest first,
// a cursor that survives tasks coming and going, the creation-time range,
// a bounded number of entries read, and the cursors it is handed.
#include <gtest/gtest.h>

#include "broker_harness.hpp"
#include "index/live_index.hpp"

using namespace tmtest;
using tb::task_state;
using step = tb::task_index::step;

namespace {

class LiveIndex : public ::testing::Test {
protected:
    tb::task_id add(int64_t created, const std::string& queue, const std::string& handler,
                    task_state s = task_state::queued) {
        auto id = ids_.next(created);
        live_.set(id, queue, handler, s);
        return id;
    }
    // Every id a walk gives, page by page of `budget` entries.
    std::vector<tb::task_id> all(const tb::task_filter& f, uint32_t budget = 1000) {
        std::vector<tb::task_id> out;
        std::string cursor;
        for (int pages = 0; pages < 10000; ++pages) {
            auto next = live_.walk(f, cursor, budget, [&](const tb::task_id& id) {
                out.push_back(id);
                return step::next;
            });
            EXPECT_TRUE(next) << next.error().message;
            if (!next || next->empty()) {
                break;
            }
            cursor = *next;
        }
        return out;
    }

    tb::live_index live_;
    tb::id_generator ids_;
};

tb::task_filter filter(std::optional<task_state> state, std::string queue = "", std::string handler = "") {
    tb::task_filter f;
    f.state = state;
    f.queue = std::move(queue);
    f.handler = std::move(handler);
    return f;
}

using ids = std::vector<tb::task_id>;

}  // namespace

TEST_F(LiveIndex, ListsByStateQueueAndHandlerNewestFirst) {
    auto a = add(1000, "mail", "m.send@2");
    auto b = add(2000, "img", "img.resize alone");  // as the ready table names one that runs alone
    auto c = add(3000, "mail", "m.send", task_state::running);
    auto d = add(4000, "img", "m.send@1");
    EXPECT_EQ(all(filter(task_state::queued)), (ids{d, b, a}));
    EXPECT_EQ(all(filter(task_state::running)), (ids{c}));
    EXPECT_EQ(all(filter(task_state::queued, "img")), (ids{d, b}));
    EXPECT_EQ(all(filter(task_state::queued, "", "m.send")), (ids{d, a}));
    EXPECT_EQ(all(filter(task_state::queued, "", "img.resize")), (ids{b}));
    EXPECT_EQ(all(filter(task_state::queued, "mail", "m.send")), (ids{a}));
    EXPECT_TRUE(all(filter(task_state::queued, "nobody")).empty());
    EXPECT_TRUE(all(filter(task_state::queued, "", "m")).empty()) << "a prefix is another name";
    // RUNNING, then done.
    live_.set(a, "mail", "m.send@2", task_state::running);
    EXPECT_EQ(all(filter(task_state::running)), (ids{c, a}));
    live_.erase(c);
    EXPECT_EQ(all(filter(task_state::running, "mail")), (ids{a}));
    EXPECT_EQ(live_.size(), 3u);
}

TEST_F(LiveIndex, SinceAndUntilBoundByCreationTime) {
    auto a = add(1000, "q", "h.a");
    auto b = add(5000, "q", "h.a");
    auto c = add(9000, "q", "h.a");
    auto f = filter(task_state::queued);
    f.since_ms = 1001;
    f.until_ms = 9000;
    EXPECT_EQ(all(f), (ids{b}));
    f.since_ms = 0;
    EXPECT_EQ(all(f), (ids{b, a}));
    f.until_ms = 0;
    f.since_ms = 5000;
    EXPECT_EQ(all(f), (ids{c, b}));
}

// Bulk jobs keep the cursor across turns while tasks come and go: every
// task still there and older than the cursor is given, once.
TEST_F(LiveIndex, CursorResumesWhileTasksComeAndGo) {
    std::vector<tb::task_id> rs;
    for (int i = 0; i < 10; ++i) rs.push_back(add(1000 + i, "q", "h.a"));
    std::vector<tb::task_id> seen;
    auto take = [&](const tb::task_id& id) {
        seen.push_back(id);
        return step::next;
    };
    auto f = filter(task_state::queued);
    auto cur = live_.walk(f, "", 3, take);
    ASSERT_TRUE(cur);
    ASSERT_EQ(*cur, tb::to_hex(rs[7]));
    live_.erase(rs[7]);
    live_.erase(rs[2]);
    add(5000, "q", "h.a");
    while (cur && !cur->empty()) {
        cur = live_.walk(f, *cur, 3, take);
        ASSERT_TRUE(cur) << cur.error().message;
    }
    EXPECT_EQ(seen, (ids{rs[9], rs[8], rs[7], rs[6], rs[5], rs[4], rs[3], rs[1], rs[0]}));
}

// A page reads at most `budget` entries, and a walk stopped before taking
// anything resumes where it began.
TEST_F(LiveIndex, BudgetAndStopsAnswerAsTheStoresWalkDoes) {
    auto wanted = add(500, "rare", "r.a");
    for (int i = 0; i < 100; ++i) add(1000 + i, "noise", "n.a");
    uint32_t calls = 0;
    auto cur = live_.walk(filter(task_state::queued, "rare"), "", 10, [&](const tb::task_id&) {
        ++calls;
        return step::next;
    });
    ASSERT_TRUE(cur);
    EXPECT_EQ(calls, 0u);
    EXPECT_FALSE(cur->empty()) << "10 entries read, more to go";
    EXPECT_EQ(all(filter(task_state::queued, "rare"), 10), (ids{wanted}));
    auto again = live_.walk(filter(task_state::queued), "abc0abc0abc0abc0abc0abc0abc0abc0", 10,
                            [](const tb::task_id&) { return step::stop_before; });
    ASSERT_TRUE(again);
    EXPECT_EQ(*again, "abc0abc0abc0abc0abc0abc0abc0abc0");
}

TEST_F(LiveIndex, TakesTaskIdsAndOldIndexCursorsAndRefusesOthers) {
    auto a = add(1000, "q", "h.a");
    auto b = add(2000, "q", "h.a");
    auto older_than = [&](const std::string& cursor) {
        std::vector<tb::task_id> seen;
        auto r = live_.walk(filter(task_state::queued), cursor, 10, [&](const tb::task_id& id) {
            seen.push_back(id);
            return step::next;
        });
        EXPECT_TRUE(r) << cursor;
        return seen;
    };
    EXPECT_EQ(older_than(tb::to_hex(b)), (ids{a}));
    // The hex of a store index key ('s', state, time, id), as a listing
    // begun before QUEUED left the store handed out.
    EXPECT_EQ(older_than("7301"
                         "00000000000007d0" +
                         tb::to_hex(b)),
              (ids{a}));
    for (const std::string& bad : std::vector<std::string>{"zz", "abc", std::string(32, 'g'), tb::to_hex(b) + "0"}) {
        auto r = live_.walk(filter(task_state::queued), bad, 10, [](const tb::task_id&) { return step::next; });
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().code, taskmill::errc::invalid_argument);
    }
}
