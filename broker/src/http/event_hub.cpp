#include "http/event_hub.hpp"

#include <algorithm>

namespace taskmill::broker {

void event_hub::push(const std::vector<event>& events) {
    if (events.empty()) {
        return;
    }
    {
        std::lock_guard lock(mu_);
        for (const auto& e : events) {
            ring_.push_back(e);
        }
        while (ring_.size() > capacity_) {
            ring_.pop_front();
            ++first_;
        }
    }
    cv_.notify_all();
}

void event_hub::close() {
    {
        std::lock_guard lock(mu_);
        closed_ = true;
    }
    cv_.notify_all();
}

event_hub::batch event_hub::take(uint64_t next, std::size_t max) const {
    batch b;
    b.closed = closed_;
    if (next < first_) {
        b.dropped = first_ - next;
        next = first_;
    }
    const uint64_t end = first_ + ring_.size();
    const uint64_t stop = std::min<uint64_t>(end, next + max);
    for (auto i = next; i < stop; ++i) {
        b.events.push_back(ring_[static_cast<std::size_t>(i - first_)]);
    }
    b.next = stop > next ? stop : next;
    return b;
}

event_hub::reader::reader(event_hub& hub) : hub_(hub) {
    std::lock_guard lock(hub_.mu_);
    next_ = hub_.first_ + hub_.ring_.size();
    hub_.readers_.fetch_add(1);
}

event_hub::reader::~reader() { hub_.readers_.fetch_sub(1); }

void event_hub::reader::resume_after(uint64_t last) {
    std::lock_guard lock(hub_.mu_);
    const uint64_t end = hub_.first_ + hub_.ring_.size();
    if (last + 1 >= hub_.first_ && last < end) {
        next_ = last + 1;
    }
}

event_hub::batch event_hub::reader::wait(std::chrono::milliseconds timeout, std::size_t max) {
    std::unique_lock lock(hub_.mu_);
    hub_.cv_.wait_for(lock, timeout,
                      [&] { return hub_.closed_ || hub_.first_ + hub_.ring_.size() > next_ || next_ < hub_.first_; });
    auto b = hub_.take(next_, max);
    next_ = b.next;
    return b;
}

}  // namespace taskmill::broker
