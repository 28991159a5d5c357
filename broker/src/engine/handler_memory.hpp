// Which handlers (name and plugin version) workers have offered, and when
// last: what the submit guard asks before it accepts a task that no
// connected worker can run. Kept in the meta table, so a broker restarted
// before its workers reconnect still knows the handlers they serve.
// Single-threaded: owned by the engine.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "model/validate.hpp"

namespace taskmill::broker {

class handler_memory {
public:
    // Meta table keys: prefix + "ns.name@X.Y.Z"; the value is the time in
    // unix ms, 8 bytes big-endian.
    static constexpr std::string_view key_prefix = "handler-seen/";
    // A time is stored again only when it moved on by this much: a host
    // restarting its workers in a loop does not write at every HELLO.
    static constexpr int64_t resolution_ms = 60'000;

    // `name`@`version` was offered at `now_ms`. Returns the meta key and
    // value to write when the stored time is missing or older than
    // resolution_ms.
    std::optional<std::pair<std::string, std::string>> offered(const std::string& name, const std::string& version,
                                                               int64_t now_ms);
    // A stored entry read back at recovery; false if it does not decode.
    bool restore(std::string_view key, std::string_view value);
    // When a version that `want` matches was last offered; nullopt = never.
    std::optional<int64_t> last_offered(const handler_ref& want) const;
    // Whether any version of the handler named `name` was ever offered.
    bool known_name(std::string_view name) const { return seen_.find(name) != seen_.end(); }

private:
    std::map<std::string, std::map<std::string, int64_t>, std::less<>> seen_;  // name -> version -> ms
};

}  // namespace taskmill::broker
