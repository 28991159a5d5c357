// Queue control and flow limits: which queues are paused, and the rate
// (token bucket: tasks started per second, with a burst) and the cap on
// running tasks of each queue and each handler, as broker.ini sets them
// and operators change them at run time (PAUSE, RESUME, LIMIT; what they
// set is kept in the settings table and wins over the file).
// Dispatch asks before it starts a task (may_start) and says when it did
// (started); the engine says when a running attempt ends (stopped).
// With nothing paused and no limit anywhere, active() is false and the
// engine skips every call: the hot path pays one branch.
// Single-threaded: owned by the loop.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <taskmill/broker/broker.hpp>
#include <taskmill/broker/queue_config.hpp>
#include <taskmill/protocol/messages.hpp>
#include <taskmill/protocol/result.hpp>

namespace taskmill::broker {

enum class flow_kind : uint8_t { queue, handler };

// What operators set at run time; unset = the config's value.
struct flow_settings {
    std::optional<bool> paused;
    std::optional<double> rate;  // 0 = no limit (even if the config has one)
    std::optional<uint32_t> burst;
    std::optional<uint32_t> max_running;
    bool empty() const { return !paused && !rate && !burst && !max_running; }
};

// The settings table's key ("queue/NAME", "handler/NAME") and value (a
// msgpack map of the fields that are set).
std::string settings_key(flow_kind k, std::string_view name);
std::string encode_settings(const flow_settings& s);
result<flow_settings> decode_settings(std::string_view bytes);
// "queue/NAME" -> (queue, NAME); nullopt for a key of another part.
std::optional<std::pair<flow_kind, std::string>> parse_settings_key(std::string_view key);

// Why a start must wait.
enum class flow_block : uint8_t { none, paused, capped, rate };

class flow_control {
public:
    explicit flow_control(const broker_config& cfg);

    // Run-time settings: as read back from the store, or changed by an
    // operator (then call rebuild()).
    void set(flow_kind k, const std::string& name, const flow_settings& s);
    const flow_settings* settings(flow_kind k, const std::string& name) const;
    // Applies config + settings to the gates (a bucket's tokens carry
    // over; a new one starts full). The running counts start from zero:
    // the caller counts each running attempt again (add_running).
    void rebuild();

    bool active() const { return !gates_[0].empty() || !gates_[1].empty(); }
    bool paused(const std::string& queue) const;
    protocol::flow_limits limits(flow_kind k, const std::string& name) const;
    uint64_t running(flow_kind k, const std::string& name) const;

    // Whether a task of `name` may start at `now`; when it waits for a
    // token, `due` is lowered to the time the next one comes.
    flow_block may_start(flow_kind k, const std::string& name, int64_t now, std::optional<int64_t>& due);
    // A task started: takes a token from each bucket, counts it running.
    void started(const std::string& queue, const std::string& handler, int64_t now);
    // A task counted running without a start (a rebuild, an adopted one).
    void add_running(const std::string& queue, const std::string& handler);
    void stopped(const std::string& queue, const std::string& handler);

    // Queues named by the config or the settings; handlers with limits.
    std::vector<std::string> named(flow_kind k) const;

private:
    struct gate {
        bool paused = false;
        protocol::flow_limits limits;
        double tokens = 0;
        int64_t refilled_ms = -1;  // -1: a new bucket, full at first use
        bool waiting = false;      // a task waits for a token (see refill)
        uint64_t running = 0;
    };
    using gate_map = std::map<std::string, gate, std::less<>>;
    gate_map& gates(flow_kind k) { return gates_[static_cast<int>(k)]; }
    const gate_map& gates(flow_kind k) const { return gates_[static_cast<int>(k)]; }
    const flow_config* configured(flow_kind k, const std::string& name) const;
    static void refill(gate& g, int64_t now);

    const broker_config& cfg_;
    std::map<std::string, flow_settings> settings_[2];
    gate_map gates_[2];  // only queues and handlers that are paused or limited
};

// "ns.name@2" -> "ns.name": limits apply to a handler whatever version.
std::string handler_name_of(std::string_view spec);

// A queue or handler has this many starts at once when its burst is unset.
uint32_t effective_burst(const protocol::flow_limits& l);

}  // namespace taskmill::broker
