// JSON views for the CLI and for callers who want them: the client's value
// types shown by the view the HTTP API shares (taskmill/protocol/json_view.hpp).
#include <taskmill/client/json.hpp>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "convert.hpp"

namespace taskmill::client {

std::string iso8601(time_point t) {
    return protocol::iso8601_utc(std::chrono::floor<milliseconds>(t.time_since_epoch()).count());
}

nlohmann::json iso8601_or_null(const std::optional<time_point>& t) {
    if (!t) {
        return nullptr;
    }
    return iso8601(*t);
}

nlohmann::json msgpack_to_json(std::string_view bytes) { return protocol::msgpack_to_json(bytes); }

result<std::string> json_text_to_msgpack(std::string_view text) {
    auto value = protocol::parse_json<nlohmann::json>(text, "the JSON");
    if (!value) {
        return failure{value.error()};
    }
    return protocol::json_to_msgpack(*value);
}

nlohmann::json to_json(const task_info& t) { return protocol::to_json(detail::to_wire(t)); }
nlohmann::json to_json(const worker_info& w) { return protocol::to_json(detail::to_wire(w)); }
nlohmann::json to_json(const stats_info& s) { return protocol::to_json(detail::to_wire(s)); }
nlohmann::json to_json(const queue_stats& q) { return protocol::to_json(detail::to_wire(q)); }

}  // namespace taskmill::client
