// Small behaviour of the public value types.
#include <taskmill/client/types.hpp>

#include <taskmill/protocol/json_view.hpp>
#include <taskmill/protocol/nesting.hpp>

namespace taskmill::client {

payload::payload(const nlohmann::json& value) { msgpack = protocol::json_to_msgpack(value); }

payload payload::raw(std::string msgpack_bytes) {
    payload p;
    p.msgpack = std::move(msgpack_bytes);
    return p;
}

bool is_final_state(const std::string& state) noexcept {
    return state == "SUCCEEDED" || state == "FAILED" || state == "CANCELLED" || state == "EXPIRED";
}

bool task_info::is_final() const noexcept { return is_final_state(state); }

nlohmann::json task_info::result_json() const {
    if (!result || result->empty()) {
        return nullptr;
    }
    if (!protocol::msgpack_within_nesting(*result)) {
        // from_msgpack would recurse once per level.
        throw nlohmann::json::parse_error::create(113, 0, protocol::nesting_error("the result").err.message, nullptr);
    }
    return nlohmann::json::from_msgpack(*result);
}

}  // namespace taskmill::client
