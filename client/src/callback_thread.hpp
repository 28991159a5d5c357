// A thread that runs user callbacks (task_handle::then) in order, so they
// never run on the I/O thread and may call the client themselves.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include <taskmill/client/types.hpp>

namespace taskmill::client::detail {

// One callback to run with a task's final state. `info` points into the
// state that `keep` holds alive, and is never changed once set, so a job
// carries no copy of the task.
struct callback_job {
    std::function<void(const task_info&)> fn;
    std::shared_ptr<const void> keep;
    const task_info* info = nullptr;

    // Runs fn; a callback's exception stops here.
    void run() noexcept;
};

class callback_thread {
public:
    callback_thread();
    ~callback_thread();  // runs what is queued, then joins
    callback_thread(const callback_thread&) = delete;
    callback_thread& operator=(const callback_thread&) = delete;

    // Queues `jobs` (emptied on success) with one lock and one wakeup; false
    // once stopping (the caller may then run them itself).
    bool post(std::vector<callback_job>& jobs);
    void stop();

private:
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    std::vector<callback_job> queue_;
    bool stopping_ = false;
    bool idle_ = false;  // the thread waits on cv_ (only then is a wakeup needed)
    std::thread thread_;
};

}  // namespace taskmill::client::detail
