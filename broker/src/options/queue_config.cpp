// Turning [queue.NAME] and [handler.NAME] sections of broker.ini into
// checked retention and flow settings (queue_config.hpp).
#include <taskmill/broker/queue_config.hpp>

#include <charconv>
#include <cmath>
#include <functional>
#include <map>

#include <taskmill/protocol/duration.hpp>
#include <taskmill/protocol/rate.hpp>

#include "model/validate.hpp"

namespace taskmill::broker {
namespace {

constexpr uint32_t max_count = 1'000'000'000;

// A key's reader: parses the value into the config, or throws with the reason.
using key_reader = std::function<void(const std::string& value)>;

std::string unquote(std::string v) {
    if (v.size() >= 2 && (v.front() == '"' || v.front() == '\'') && v.back() == v.front()) {
        return v.substr(1, v.size() - 2);
    }
    return v;
}

key_reader duration_into(std::optional<int64_t>& out) {
    return [&out](const std::string& v) {
        auto ms = protocol::parse_duration_ms(v);
        if (!ms) {
            throw std::runtime_error(ms.error().message);
        }
        out = *ms;
    };
}

key_reader count_into(std::optional<uint32_t>& out, uint32_t min) {
    return [&out, min](const std::string& v) {
        uint32_t n = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
        if (ec != std::errc{} || p != v.data() + v.size() || n < min || n > max_count) {
            throw std::runtime_error("'" + v + "' is not a whole number from " + std::to_string(min) + " to " +
                                     std::to_string(max_count));
        }
        out = n;
    };
}

key_reader rate_into(std::optional<double>& out) {
    return [&out](const std::string& v) {
        auto r = parse_rate(v);
        if (!r) {
            throw std::runtime_error(r.error().message);
        }
        out = *r;
    };
}

void add_flow_keys(std::map<std::string, key_reader>& keys, flow_config& f) {
    keys["rate"] = rate_into(f.rate);
    keys["burst"] = count_into(f.burst, 1);
    keys["max-running"] = count_into(f.max_running, 1);
}

// Applies every entry of `sec` through `keys`; errors name the line.
void read_entries(const config::section& sec, const std::string& kind, std::map<std::string, key_reader>& keys) {
    for (const auto& e : sec.entries) {
        auto it = keys.find(e.key);
        if (it == keys.end()) {
            std::string known;
            for (const auto& [name, reader] : keys) {
                known += (known.empty() ? "" : " ") + name;
            }
            throw config::error(e.where + ": unknown key '" + e.key + "' in [" + kind + "." + sec.name + "] (" + known +
                                ")");
        }
        try {
            it->second(unquote(e.value));
        } catch (const std::runtime_error& err) {
            throw config::error(e.where + ": " + e.key + ": " + err.what());
        }
    }
}

}  // namespace

result<double> parse_rate(std::string_view text) { return protocol::parse_rate(text); }

queue_config read_queue_section(const config::section& sec) {
    queue_config out;
    out.name = sec.name;
    out.where = sec.where;
    if (!valid_queue_name(out.name)) {
        throw config::error(sec.where + ": [queue." + sec.name + "]: not a valid queue name");
    }
    std::map<std::string, key_reader> keys{
        {"retention-succeeded", duration_into(out.retention.succeeded_ms)},
        {"retention-failed", duration_into(out.retention.failed_ms)},
        {"retention-cancelled", duration_into(out.retention.cancelled_ms)},
        {"retention-expired", duration_into(out.retention.expired_ms)},
    };
    add_flow_keys(keys, out.flow);
    read_entries(sec, "queue", keys);
    return out;
}

handler_config read_handler_section(const config::section& sec) {
    handler_config out;
    out.name = sec.name;
    out.where = sec.where;
    auto ref = parse_handler(out.name);
    if (!ref || out.name.find('@') != std::string::npos) {
        throw config::error(sec.where + ": [handler." + sec.name + "]: not a handler name (ns.name, no @version)");
    }
    std::map<std::string, key_reader> keys;
    add_flow_keys(keys, out.flow);
    read_entries(sec, "handler", keys);
    return out;
}

}  // namespace taskmill::broker
