// Messages the broker builds stay under what its peers accept: big tasks
// queued before a host starts reach it in several DISPATCHes, and listings
// over them are paged, against real processes with the default limits.
#include "system_fixture.hpp"

#include <gtest/gtest.h>

#include <taskmill/protocol/frame.hpp>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

class MessageLimits : public system_test {};

// A msgpack str of `n` bytes (str32 header).
std::string msgpack_str(std::size_t n, char fill) {
    std::string s = {'\xdb', static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                     static_cast<char>(n)};
    s.append(n, fill);
    return s;
}

}  // namespace

// Before: the six went to the new worker as one 16.6 MiB DISPATCH, which it
// dropped (over its 16 MiB limit); the tasks stayed RUNNING for good, and
// TASKS over them answered nothing readable.
TEST_F(MessageLimits, BigQueuedTasksAllRunAndListingsOverThemWork) {
    broker = std::make_unique<broker_process>(tmp.path() / "data");
    client = std::make_unique<wire_client>(broker->ep().frontend);
    // Six of 2.77 MiB: 16.6 MiB together, just over the hosts' 16 MiB.
    constexpr std::size_t size = 2900000;
    std::vector<std::string> ids;
    for (int i = 0; i < 6; ++i) {
        tp::task_spec t;
        t.handler = "echo.echo";
        t.payload = msgpack_str(size, static_cast<char>('a' + i));
        auto one = client->submit({t}, 20s);
        ASSERT_EQ(one.size(), 1u);
        ids.push_back(one[0]);
    }
    host = start_host(tmp.path(), {.backend = broker->ep().backend, .processes = 1, .concurrency = 6});
    for (const auto& id : ids) {
        auto t = client->wait_final(id, 30s);
        ASSERT_TRUE(t.has_value()) << "task " << id << " did not finish; host log:\n" << host->log_text();
        EXPECT_EQ(t->state, "SUCCEEDED") << t->error;
        ASSERT_TRUE(t->result.has_value());
        EXPECT_EQ(t->result->size(), size + 5);
    }
    // One page cannot hold 16.6 MiB of results: it stops early and says where.
    tp::request rq;
    rq.limit = 100;
    std::size_t listed = 0;
    for (int page = 0; page < 10; ++page) {
        auto rep = client->call(tp::cmd::tasks, rq, 20s);
        ASSERT_TRUE(rep.has_value()) << "no readable TASKS reply";
        ASSERT_TRUE(rep->ok) << rep->error;
        listed += rep->tasks.size();
        if (rep->next.empty()) {
            break;
        }
        rq.before = rep->next;
    }
    EXPECT_EQ(listed, ids.size());
    auto cli = run_cli(tmp.path(), {"--broker", broker->ep().frontend, "--timeout", "20", "tasks"});
    EXPECT_EQ(cli.exit_code, 0) << cli.err;
}
