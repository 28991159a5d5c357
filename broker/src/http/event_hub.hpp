// event_hub: hands the loop's events to the HTTP event streams
// (GET /api/v1/events) without the loop ever waiting for a reader.
//
// The loop copies each turn's events into a bounded ring under a short
// mutex, and only while a stream is attached. Each stream keeps its own
// position and takes what it has not sent yet; a reader that falls more
// than the ring's capacity behind skips ahead and is told how many events
// it missed.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace taskmill::broker {

class event_hub {
public:
    using event = std::pair<std::string, std::string>;  // topic, msgpack map

    explicit event_hub(std::size_t capacity = 4096) : capacity_(capacity) {}

    // ---- the loop's side ----
    // Whether any stream is attached: the loop builds and pushes events
    // only then.
    bool has_readers() const { return readers_.load(std::memory_order_relaxed) > 0; }
    // Appends a turn's events, dropping the oldest past the capacity, and
    // wakes the streams.
    void push(const std::vector<event>& events);
    // Ends every stream (the server is stopping).
    void close();

    // ---- a stream's side ----
    struct batch {
        std::vector<event> events;
        uint64_t next = 0;     // the position after the last event taken
        uint64_t dropped = 0;  // events lost because the reader fell behind
        bool closed = false;
    };
    // Counts a stream as attached for its life; starts at the newest event.
    class reader {
    public:
        explicit reader(event_hub& hub);
        ~reader();
        reader(const reader&) = delete;
        reader& operator=(const reader&) = delete;
        // Waits up to `timeout` for events past the position, then takes up
        // to `max` of them.
        batch wait(std::chrono::milliseconds timeout, std::size_t max);
        // Resumes after `last` (an SSE Last-Event-ID) if the ring still
        // holds what follows it.
        void resume_after(uint64_t last);

    private:
        event_hub& hub_;
        uint64_t next_;
    };

private:
    batch take(uint64_t next, std::size_t max) const;  // holding mu_

    const std::size_t capacity_;
    std::atomic<std::size_t> readers_{0};
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<event> ring_;
    uint64_t first_ = 0;  // the position of ring_.front()
    bool closed_ = false;
};

}  // namespace taskmill::broker
