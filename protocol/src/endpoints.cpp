#include <taskmill/protocol/endpoints.hpp>

#include <algorithm>
#include <stdexcept>

namespace taskmill::protocol {

namespace {

std::string_view trimmed(std::string_view s) {
    while (!s.empty() && s.front() == ' ') {
        s.remove_prefix(1);
    }
    while (!s.empty() && s.back() == ' ') {
        s.remove_suffix(1);
    }
    return s;
}

}  // namespace

std::vector<std::string> split_endpoints(std::string_view list) {
    std::vector<std::string> out;
    for (;;) {
        const auto comma = list.find(',');
        const auto one = trimmed(list.substr(0, comma));
        if (!one.empty()) {
            if (std::find(out.begin(), out.end(), one) != out.end()) {
                throw std::invalid_argument("broker endpoint '" + std::string(one) + "' is listed twice");
            }
            out.emplace_back(one);
        }
        if (comma == std::string_view::npos) {
            break;
        }
        list.remove_prefix(comma + 1);
    }
    if (out.empty()) {
        throw std::invalid_argument("no broker endpoint given");
    }
    return out;
}

endpoint_ring::endpoint_ring(std::vector<std::string> endpoints) : list_(std::move(endpoints)) {
    if (list_.empty()) {
        throw std::invalid_argument("no broker endpoint given");
    }
    current_ = list_.front();
}

const std::string& endpoint_ring::next() {
    at_ = (at_ + 1) % list_.size();
    current_ = list_[at_];
    return current_;
}

const std::string& endpoint_ring::follow(const std::string& leader) {
    if (leader.empty() || leader == current_) {
        return next();
    }
    // A listed leader moves the walk there, so silence goes on from it.
    if (auto it = std::find(list_.begin(), list_.end(), leader); it != list_.end()) {
        at_ = static_cast<std::size_t>(it - list_.begin());
    }
    current_ = leader;
    return current_;
}

}  // namespace taskmill::protocol
