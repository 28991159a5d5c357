#include "engine/event_bus.hpp"

#include <taskmill/protocol/msgpack_out.hpp>

namespace taskmill::broker {
namespace {

// One field's key or value, appended to the map's bytes.
template <typename T> void append(std::string& out, const T& v) {
    protocol::pack_onto(out, [&](protocol::string_packer& pk) { pk.pack(v); });
}

}  // namespace

void event::key(std::string_view k) {
    append(fields_, k);
    ++count_;
}

event& event::add(std::string_view k, std::string_view value) {
    key(k);
    append(fields_, value);
    return *this;
}

event& event::add(std::string_view k, int64_t value) {
    key(k);
    append(fields_, value);
    return *this;
}

event& event::add(std::string_view k, uint64_t value) {
    key(k);
    append(fields_, value);
    return *this;
}

event& event::add(std::string_view k, const std::vector<std::string>& values) {
    key(k);
    append(fields_, values);
    return *this;
}

std::string event::take() {
    auto body = protocol::pack_with([&](protocol::string_packer& pk) { pk.pack_map(count_); }, 5 + fields_.size());
    body += fields_;
    fields_.clear();
    count_ = 0;
    return body;
}

void event_bus::subscription(bool on, std::string prefix) {
    if (on) {
        subscriptions_.insert(std::move(prefix));
    } else {
        subscriptions_.erase(prefix);
    }
}

bool event_bus::wants(std::string_view topic) const {
    if (local_reader_) {
        return true;
    }
    for (const auto& prefix : subscriptions_) {
        if (topic.starts_with(prefix)) {
            return true;
        }
    }
    return false;
}

}  // namespace taskmill::broker
