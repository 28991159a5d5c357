// log-format = json: each line one JSON object,
//   {"time": "2026-12-02T07:20:21.123Z", "level": "info", "component":
//    "worker", "msg": "...", "task": "...", "handler": "...", "queue": "...",
//    "attempt": 1, "worker": "...", "plugin": "..."}
// `time` is RFC 3339 UTC with milliseconds; `level` one of trace debug info
// warn error critical; `component` the logger's name unless the thread's
// fields (log_fields.hpp) name another. The other fields appear when the
// line has them: from the thread's fields, else from a `key=value` word of
// the message (the broker and host write `task=ID handler=NAME ...`). A
// message with newlines or quotes stays one line: JSON escapes them.
#pragma once

#include <memory>

#include <spdlog/formatter.h>

namespace taskmill::logging {

class json_formatter final : public spdlog::formatter {
public:
    void format(const spdlog::details::log_msg& msg, spdlog::memory_buf_t& dest) override;
    std::unique_ptr<spdlog::formatter> clone() const override;
};

}  // namespace taskmill::logging
