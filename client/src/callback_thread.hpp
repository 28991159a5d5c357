// A thread that runs user callbacks (task_handle::then) in order, so they
// never run on the I/O thread and may call the client themselves.
#pragma once

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>

namespace taskmill::client::detail {

class callback_thread {
public:
    callback_thread();
    ~callback_thread();  // runs what is queued, then joins
    callback_thread(const callback_thread&) = delete;
    callback_thread& operator=(const callback_thread&) = delete;

    // Queues `fn`; false once stopping (the caller may then run it itself).
    bool post(std::function<void()> fn);
    void stop();

private:
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> queue_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace taskmill::client::detail
