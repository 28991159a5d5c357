// The HTTP server's thread pool, bounded so that no group of clients can
// take every thread (docs/HTTP.md, "Limits").
//
// cpp-httplib serves a whole connection on one thread, from accept to
// close. This pool gives `threads` threads to connections and lets at most
// `queue` more wait for one. Past that a connection goes to a few refusal
// threads, which answer its request 503 `unavailable` and close it; when
// even those are backed up, accepting waits (the kernel's listen backlog
// holds the rest). busy() tells the routes that connections are waiting,
// so they close theirs after the answer instead of keeping it alive.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include <httplib.h>

namespace taskmill::broker::http {

struct pool_limits {
    std::size_t threads = 32;
    std::size_t queue = 64;  // connections waiting for a thread
    std::size_t refusal_threads = 4;
    std::size_t refusal_queue = 256;  // connections waiting to be refused
};

class bounded_pool final : public httplib::TaskQueue {
public:
    explicit bounded_pool(pool_limits limits);
    ~bounded_pool() override;
    bounded_pool(const bounded_pool&) = delete;
    bounded_pool& operator=(const bounded_pool&) = delete;

    void enqueue(std::function<void()> fn) override;
    void shutdown() override;

    // True on a refusal thread: the request in hand is to be refused.
    static bool refusing();
    // True while connections wait for a serving thread.
    bool busy() const;

private:
    struct lane {
        std::deque<std::function<void()>> tasks;
        std::size_t bound = 0;
        std::condition_variable ready;
        std::vector<std::thread> threads;
    };
    void run(lane& l, bool refusal);

    mutable std::mutex mu_;
    std::condition_variable space_;  // a refusal slot freed
    lane serve_;
    lane refuse_;
    bool stopping_ = false;
};

}  // namespace taskmill::broker::http
