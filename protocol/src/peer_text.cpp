// Escaping and rate limiting for peer-provided text in logs (peer_text.hpp).
#include <taskmill/protocol/peer_text.hpp>

namespace taskmill::protocol {

std::string printable(std::string_view text, std::size_t max_bytes) {
    static constexpr char hex[] = "0123456789abcdef";
    const auto shown = text.substr(0, max_bytes);
    std::string out;
    out.reserve(shown.size() + 16);
    for (char ch : shown) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '\\') {
            out += "\\\\";
        } else if (c >= 0x20 && c < 0x7f) {
            out += ch;
        } else {
            out += "\\x";
            out += hex[c >> 4];
            out += hex[c & 0x0f];
        }
    }
    if (shown.size() < text.size()) {
        out += "...(" + std::to_string(text.size()) + " bytes)";
    }
    return out;
}

bool log_gate::admit(clock::time_point now) {
    if (now - window_start_ >= interval_) {
        window_start_ = now;
        in_window_ = 0;
    }
    if (in_window_ < burst_) {
        ++in_window_;
        return true;
    }
    ++suppressed_;
    return false;
}

uint64_t log_gate::take_summary(clock::time_point now) {
    // Due once the window in which the events were held back has ended.
    if (suppressed_ == 0 || now - window_start_ < interval_) {
        return 0;
    }
    auto n = suppressed_;
    suppressed_ = 0;
    return n;
}

}  // namespace taskmill::protocol
