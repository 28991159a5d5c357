// The defaults each handler announced in its workers' HELLOs (tm_handler's
// default_queue, default_timeout_ms, default_retries), by handler name and
// plugin version, and their stored form: the engine keeps them in the meta
// table, so a task submitted after a broker restart, before any worker has
// connected again, gets the same defaults as one submitted before it.
// Single-threaded: owned by the engine.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include <taskmill/protocol/messages.hpp>

#include "model/validate.hpp"

namespace taskmill::broker {

struct handler_default {
    std::string queue;  // empty = none
    std::optional<int64_t> timeout_ms;
    std::optional<int32_t> retries;

    bool operator==(const handler_default&) const = default;
};

class handler_defaults {
public:
    // Meta table keys: prefix + "ns.name@X.Y.Z".
    static constexpr std::string_view key_prefix = "handler-defaults/";

    // Takes what a worker announced for one handler, keeping only values
    // a submit could carry (a queue with a valid name, a timeout of
    // 0..max_duration_ms, retries of 0..1000). Returns the meta key and
    // stored value to write when it differs from what was known.
    std::optional<std::pair<std::string, std::string>> learn(const protocol::handler_info& h);
    // A stored entry read back at recovery; false if it does not decode.
    bool restore(std::string_view key, std::string_view value);
    // The defaults of the newest announced version `want` matches, if any.
    std::optional<handler_default> find(const handler_ref& want) const;

private:
    std::map<std::string, std::map<std::string, handler_default>, std::less<>> known_;  // name -> version ->
};

}  // namespace taskmill::broker
