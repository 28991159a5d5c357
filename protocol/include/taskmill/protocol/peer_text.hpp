// taskmill/protocol/peer_text.hpp -- logging what a peer sent.
//
// Routing ids, task ids, notes and error strings arrive from peers that may
// be hostile: logged raw, a newline forges a log line, binary bytes garble
// the terminal and a 15 MiB string fills the disk. Every component that logs
// peer-provided text passes it through printable(); repeated events a peer
// can trigger at will (refused handshakes, malformed messages) go through a
// log_gate. Plain functions and a value type: no threading of their own (a
// log_gate belongs to the thread that logs through it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace taskmill::protocol {

// How much of one peer-provided value a log line shows by default.
inline constexpr std::size_t max_logged_text = 200;

// `text` made safe for one log line: printable ASCII is kept; a backslash
// becomes "\\"; every other byte (control characters, newlines, DEL,
// non-ASCII) becomes "\xNN". At most `max_bytes` of the input are shown;
// the rest is replaced by "...(N bytes)" giving the full input size.
std::string printable(std::string_view text, std::size_t max_bytes = max_logged_text);

// Rate limit for one kind of log line: the first `burst` events of each
// interval are logged in full, later ones only counted; take_summary()
// hands over that count once per interval so that one line can report it.
class log_gate {
public:
    using clock = std::chrono::steady_clock;

    explicit log_gate(std::chrono::milliseconds interval = std::chrono::seconds(60), uint32_t burst = 1)
        : interval_(interval), burst_(burst) {}

    // Counts an event; true if it may be logged in full.
    bool admit(clock::time_point now = clock::now());
    // The events counted but not logged, once the interval in which they
    // were held back has ended (0 before that, or if none); the count then
    // restarts from 0. Call it before admit() and from a timer, so that a
    // flood that stops is still reported.
    uint64_t take_summary(clock::time_point now = clock::now());

private:
    std::chrono::milliseconds interval_;
    uint32_t burst_;
    clock::time_point window_start_{};
    uint32_t in_window_ = 0;
    uint64_t suppressed_ = 0;
};

}  // namespace taskmill::protocol
