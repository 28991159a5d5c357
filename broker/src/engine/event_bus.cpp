#include "engine/event_bus.hpp"

#include <msgpack.hpp>

namespace taskmill::broker {
namespace {

// msgpack::packer's output: appends to a string.
struct string_out {
    std::string& s;
    void write(const char* p, std::size_t n) { s.append(p, n); }
};

}  // namespace

void event::key(std::string_view k) {
    string_out out{fields_};
    msgpack::packer<string_out>(out).pack(k);
    ++count_;
}

event& event::add(std::string_view k, std::string_view value) {
    key(k);
    string_out out{fields_};
    msgpack::packer<string_out>(out).pack(value);
    return *this;
}

event& event::add(std::string_view k, int64_t value) {
    key(k);
    string_out out{fields_};
    msgpack::packer<string_out>(out).pack(value);
    return *this;
}

event& event::add(std::string_view k, uint64_t value) {
    key(k);
    string_out out{fields_};
    msgpack::packer<string_out>(out).pack(value);
    return *this;
}

event& event::add(std::string_view k, const std::vector<std::string>& values) {
    key(k);
    string_out out{fields_};
    msgpack::packer<string_out>(out).pack(values);
    return *this;
}

std::string event::take() {
    std::string body;
    string_out out{body};
    msgpack::packer<string_out>(out).pack_map(count_);
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
    for (const auto& prefix : subscriptions_) {
        if (topic.starts_with(prefix)) {
            return true;
        }
    }
    return false;
}

}  // namespace taskmill::broker
