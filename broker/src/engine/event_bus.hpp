// The events the broker publishes on its events socket (docs/EVENTS.md):
// every kind (task.*, worker.*, workflow.*, schedule.fired, plugin.*) is
// built the same way, through event_bus::emit, and only when a subscriber
// of the socket asked for a prefix of its topic: at full rate most events
// have no reader, and building them would cost more than the work they
// describe.
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace taskmill::broker {

// The topics and msgpack bodies of the events a turn published.
using event_list = std::vector<std::pair<std::string, std::string>>;

// One event's body: a msgpack map, filled field by field.
class event {
public:
    event& add(std::string_view key, std::string_view value);
    event& add(std::string_view key, const std::string& value) { return add(key, std::string_view(value)); }
    event& add(std::string_view key, const char* value) { return add(key, std::string_view(value)); }
    event& add(std::string_view key, int64_t value);
    event& add(std::string_view key, uint64_t value);
    event& add(std::string_view key, uint32_t value) { return add(key, uint64_t{value}); }
    event& add(std::string_view key, const std::vector<std::string>& values);
    // The map's bytes; the event is spent after this.
    std::string take();

private:
    void key(std::string_view k);
    std::string fields_;
    uint32_t count_ = 0;
};

class event_bus {
public:
    // Events go to `sink` (the turn's outbox), stamped with the time that
    // set_time() last gave.
    explicit event_bus(event_list& sink) : sink_(sink) {}

    void set_time(int64_t now_ms) { now_ = now_ms; }
    // A subscriber subscribed to (or left) a topic prefix.
    void subscription(bool on, std::string prefix);
    const std::set<std::string, std::less<>>& subscriptions() const { return subscriptions_; }
    bool wants(std::string_view topic) const;
    // A reader inside the broker (the HTTP event stream) wants every
    // event, whatever the socket's subscribers asked for.
    void local_reader(bool on) { local_reader_ = on; }
    // Whether any event is wanted at all.
    bool anyone() const { return local_reader_ || !subscriptions_.empty(); }

    // Publishes `topic` if someone subscribed to it: the body holds "type"
    // (the topic), what `fill(event&)` adds, and "time_ms". `fill` is not
    // called otherwise.
    template <class Fill> void emit(std::string_view topic, Fill&& fill) {
        if (!wants(topic)) {
            return;
        }
        event e;
        e.add("type", topic);
        fill(e);
        e.add("time_ms", now_);
        sink_.emplace_back(std::string(topic), e.take());
    }

private:
    event_list& sink_;
    int64_t now_ = 0;
    std::set<std::string, std::less<>> subscriptions_;  // topic prefixes
    bool local_reader_ = false;
};

}  // namespace taskmill::broker
