// Internal to the HTTP side: what the route handlers share.
#pragma once

#include <atomic>
#include <functional>
#include <memory>

#include <httplib.h>
#include <nlohmann/json.hpp>

#include <taskmill/protocol/result.hpp>

#include "http/http_bridge.hpp"
#include "metrics/metrics.hpp"

namespace taskmill::broker::http {

enum class role : uint8_t { none, read, write };

struct api_env {
    loop_bridge bridge;
    std::shared_ptr<const metrics_hub> hub;
    // Writes the 401/403 answer and returns false when the request's token
    // does not grant `need`.
    std::function<bool(const httplib::Request&, httplib::Response&, role need)> allow;
    // Long-polls in progress, and how many may be at once: each holds a
    // thread, so they may take only part of the pool.
    std::shared_ptr<std::atomic<std::size_t>> long_polls;
    std::size_t max_long_polls = 0;
};

// {"error": {"code": ..., "message": ...}} with the status the code maps to.
void send_error(httplib::Response& res, errc code, const std::string& message);
void send_error(httplib::Response& res, int status, std::string_view code, const std::string& message);
void send_json(httplib::Response& res, int status, const nlohmann::json& body);

void add_api_routes(httplib::Server& srv, std::shared_ptr<const api_env> env);
// The operator verbs and bulk jobs (http_jobs.cpp).
void add_job_routes(httplib::Server& srv, const std::shared_ptr<const api_env>& env);

}  // namespace taskmill::broker::http
