// Workflows and JSON: parsing a definition (WF_SUBMIT); step results are
// read with protocol::msgpack_to_json (json_view.hpp). Apart from
// workflow_model.hpp so that what only runs workflows (the engine) does not
// compile nlohmann.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include <taskmill/protocol/result.hpp>

#include "workflow/workflow_model.hpp"

namespace taskmill::broker {

// Builds a workflow from its JSON definition (docs/WORKFLOWS.md):
//   {"name": "...", "on_failure": "fail_fast"|"continue",
//    "steps": [{"name", "handler", "payload", "queue", "priority",
//               "retries", "timeout" (s) | "timeout_ms", "depends_on": []}]}
// `steps` may also be an object keyed by step name. Rejects (invalid_argument,
// naming the step) an empty or duplicate name, a malformed or unknown handler
// (`handler_known` returns false), an unknown dependency and a cycle.
result<workflow> parse_workflow(const nlohmann::json& def,
                                const std::function<bool(const std::string&)>& handler_known);

}  // namespace taskmill::broker
