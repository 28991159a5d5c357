// A list of broker endpoints, as clients and hosts accept it wherever one
// endpoint is accepted: "tcp://a:5555,tcp://b:5555,tcp://c:5555" names the
// members of a broker cluster (docs/CLUSTER.md).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace taskmill::protocol {

// The endpoints of a comma-separated list, spaces around each trimmed.
// Throws std::invalid_argument when the list names none, or one twice.
std::vector<std::string> split_endpoints(std::string_view list);

// Walks a list of endpoints for a peer that follows a cluster's leader:
// the endpoint to use now, the next one when it goes silent, or the one a
// member named as leader (which need not be on the list).
class endpoint_ring {
public:
    explicit endpoint_ring(std::vector<std::string> endpoints);

    const std::string& current() const { return current_; }
    std::size_t size() const { return list_.size(); }
    // False for one endpoint in use: there is nowhere else to go.
    bool can_move() const { return list_.size() > 1 || current_ != list_.front(); }
    // Moves to the next endpoint of the list (after the last one used from
    // the list) and returns it.
    const std::string& next();
    // Moves to `leader`, a member's answer; an empty one means next().
    const std::string& follow(const std::string& leader);

private:
    std::vector<std::string> list_;
    std::size_t at_ = 0;
    std::string current_;
};

}  // namespace taskmill::protocol
