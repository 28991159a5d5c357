#include "model/message_size.hpp"

#include <string>

namespace taskmill::broker {

bool fit_alone(protocol::task_info& t, std::size_t max_body) {
    if (t.payload && size_bound(t) + envelope_bound > max_body) {
        t.payload.reset();  // payload_size still tells its size
    }
    if (!t.result || size_bound(t) + envelope_bound <= max_body) {
        return false;
    }
    auto size = t.result->size();
    t.result.reset();
    t.error = "result of " + std::to_string(size) + " bytes left out: with the task it is over the " +
              std::to_string(max_body) + "-byte message limit";
    return true;
}

}  // namespace taskmill::broker
