// The worker's mailbox (slot threads -> I/O thread): the eventfd is written
// once per batch, by the first post that asks for a wake, and nothing posted
// with a wake is ever left without one.
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "worker_shared.hpp"

namespace detail = taskmill::host::detail;
namespace protocol = taskmill::protocol;

namespace {

uint64_t read_counter(int fd) {
    uint64_t count = 0;
    if (::read(fd, &count, sizeof count) != static_cast<ssize_t>(sizeof count)) return 0;
    return count;
}

bool readable(int fd, int timeout_ms) {
    pollfd p{fd, POLLIN, 0};
    return ::poll(&p, 1, timeout_ms) == 1;
}

protocol::outcome outcome(std::string id) {
    protocol::outcome o;
    o.id = std::move(id);
    o.status = "ok";
    return o;
}

}  // namespace

TEST(Mailbox, OneWakePerBatch) {
    detail::mailbox mb;
    EXPECT_FALSE(readable(mb.fd(), 0));
    mb.post_outcome(outcome("a"));
    mb.post(std::string(protocol::cmd::progress), "body");
    mb.post_started(std::make_shared<detail::task_run>());
    mb.post_outcome(outcome("b"));
    ASSERT_TRUE(readable(mb.fd(), 0));
    EXPECT_EQ(read_counter(mb.fd()), 1u);  // four posts, one write
    detail::mailbox::batch b;
    mb.drain(b);
    EXPECT_EQ(b.outcomes.size(), 2u);
    EXPECT_EQ(b.messages.size(), 1u);
    EXPECT_EQ(b.started.size(), 1u);
    EXPECT_FALSE(readable(mb.fd(), 0));

    // The next post after a drain wakes again.
    mb.post_outcome(outcome("c"));
    ASSERT_TRUE(readable(mb.fd(), 0));
    mb.drain(b);
    ASSERT_EQ(b.outcomes.size(), 1u);
    EXPECT_EQ(b.outcomes[0].id, "c");
    EXPECT_TRUE(b.messages.empty());
    EXPECT_TRUE(b.started.empty());
    EXPECT_FALSE(readable(mb.fd(), 0));

    // A drain of nothing (a wake already served) is harmless.
    mb.drain(b);
    EXPECT_TRUE(b.empty());
}

// Several posting threads against an I/O thread that only drains when the
// eventfd wakes it: a lost wake would strand items and make poll() time out.
// (Starts do not wake; each thread's last post, 19999 % 3 == 1, does, and
// carries whatever that thread posted before it.)
TEST(Mailbox, CoalescedWakesDeliverEverythingFromSeveralThreads) {
    detail::mailbox mb;
    constexpr int threads = 4;
    constexpr int per_thread = 20000;
    std::atomic<bool> go{false};
    std::vector<std::thread> posters;
    for (int t = 0; t < threads; ++t) {
        posters.emplace_back([&, t] {
            while (!go.load()) std::this_thread::yield();
            for (int i = 0; i < per_thread; ++i) {
                if (i % 16 == 0) std::this_thread::yield();  // interleave with the drains
                auto id = std::to_string(t) + ":" + std::to_string(i);
                switch (i % 3) {
                    case 0: mb.post_outcome(outcome(id)); break;
                    case 1: mb.post(std::string(protocol::cmd::progress), id); break;
                    default: {
                        auto run = std::make_shared<detail::task_run>();
                        run->item.id = id;
                        mb.post_started(std::move(run));
                    }
                }
            }
        });
    }
    go = true;
    std::set<std::string> seen;
    int wakes = 0;
    bool stranded = false;
    detail::mailbox::batch b;
    while (seen.size() < static_cast<std::size_t>(threads * per_thread)) {
        if (!readable(mb.fd(), 10000)) {
            stranded = true;
            break;
        }
        ++wakes;
        mb.drain(b);
        for (auto& o : b.outcomes) seen.insert(o.id);
        for (auto& [command, body] : b.messages) seen.insert(body);
        for (auto& r : b.started) seen.insert(r->item.id);
    }
    for (auto& p : posters) p.join();
    ASSERT_FALSE(stranded) << "no wake for " << threads * per_thread - seen.size() << " posted item(s)";
    EXPECT_EQ(seen.size(), static_cast<std::size_t>(threads * per_thread));
    EXPECT_LE(wakes, threads * per_thread);
    // Nothing left behind, and no wake pending for it.
    mb.drain(b);
    EXPECT_TRUE(b.empty());
    std::cout << "[          ] " << threads * per_thread << " posts, " << wakes << " wakes\n";
}

// A start alone does not wake the I/O thread (it rides with the next
// outcome, or waits for the periodic look); an outcome after it still does.
TEST(Mailbox, StartsWaitForTheNextWake) {
    detail::mailbox mb;
    mb.post_started(std::make_shared<detail::task_run>());
    EXPECT_FALSE(readable(mb.fd(), 0));
    detail::mailbox::batch b;
    mb.drain(b);  // the periodic look takes it all the same
    EXPECT_EQ(b.started.size(), 1u);

    mb.post_started(std::make_shared<detail::task_run>());
    mb.post_outcome(outcome("a"));
    ASSERT_TRUE(readable(mb.fd(), 0));
    EXPECT_EQ(read_counter(mb.fd()), 1u);
    mb.drain(b);
    EXPECT_EQ(b.started.size(), 1u);
    EXPECT_EQ(b.outcomes.size(), 1u);
}
