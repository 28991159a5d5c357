// bounded_pool: see http_pool.hpp.
#include "http/http_pool.hpp"

namespace taskmill::broker::http {

namespace {
thread_local bool refusal_thread = false;
}  // namespace

bounded_pool::bounded_pool(pool_limits limits) {
    serve_.bound = limits.queue;
    refuse_.bound = limits.refusal_queue;
    for (std::size_t i = 0; i < limits.threads; ++i) {
        serve_.threads.emplace_back([this] { run(serve_, false); });
    }
    for (std::size_t i = 0; i < limits.refusal_threads; ++i) {
        refuse_.threads.emplace_back([this] { run(refuse_, true); });
    }
}

bounded_pool::~bounded_pool() { shutdown(); }

bool bounded_pool::refusing() { return refusal_thread; }

bool bounded_pool::busy() const {
    std::lock_guard lock(mu_);
    return !serve_.tasks.empty();
}

void bounded_pool::enqueue(std::function<void()> fn) {
    std::unique_lock lock(mu_);
    if (serve_.tasks.size() < serve_.bound) {
        serve_.tasks.push_back(std::move(fn));
        serve_.ready.notify_one();
        return;
    }
    // Every connection must be served or refused by a thread (only
    // cpp-httplib's task closes its socket): wait for a refusal slot.
    space_.wait(lock, [this] { return stopping_ || refuse_.tasks.size() < refuse_.bound; });
    refuse_.tasks.push_back(std::move(fn));
    refuse_.ready.notify_one();
}

void bounded_pool::shutdown() {
    {
        std::lock_guard lock(mu_);
        if (stopping_) {
            return;
        }
        stopping_ = true;
    }
    serve_.ready.notify_all();
    refuse_.ready.notify_all();
    space_.notify_all();
    for (auto* l : {&serve_, &refuse_}) {
        for (auto& t : l->threads) {
            t.join();
        }
    }
}

void bounded_pool::run(lane& l, bool refusal) {
    refusal_thread = refusal;
    for (;;) {
        std::function<void()> fn;
        {
            std::unique_lock lock(mu_);
            l.ready.wait(lock, [&] { return stopping_ || !l.tasks.empty(); });
            if (l.tasks.empty()) {
                return;  // stopping, and nothing left to close
            }
            fn = std::move(l.tasks.front());
            l.tasks.pop_front();
            if (refusal) {
                space_.notify_one();
            }
        }
        fn();
    }
}

}  // namespace taskmill::broker::http
