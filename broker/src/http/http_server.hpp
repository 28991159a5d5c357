// The broker's HTTP side: /health, /metrics (Prometheus), the JSON API under
// /api/v1/ and the dashboard at /. See docs/HTTP.md.
//
// Threading: cpp-httplib serves requests on its own thread pool. Those
// threads never touch the engine or the write transaction: reads of figures
// come from the metrics snapshot the loop publishes each turn, and every
// API request (reads included) goes to the loop through loop_bridge, so it
// gets the same validation, ordering and group commit as a ZeroMQ client.
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace spdlog {
class logger;
}
namespace zmq {
class context_t;
}

namespace taskmill::broker {

class metrics_hub;
class event_hub;

struct http_options {
    std::string listen;               // "ADDR:PORT"; port 0 = pick one
    std::vector<std::string> tokens;  // "NAME:ROLE:SECRET", ROLE = read | write
    std::string anonymous = "none";   // the role of a request without a token
    std::string loop_endpoint;        // inproc endpoint bound on the frontend
    std::string role = "standalone";  // reported by /health
    std::size_t max_body_bytes = 16u << 20;
    // The loop's events for GET /api/v1/events; null = the stream stays
    // silent.
    std::shared_ptr<event_hub> events;
};

namespace http {
// Throws std::runtime_error naming the option when `o` is malformed: a bad
// --http address, --http-token or --http-anonymous. The broker checks its
// options with it before it starts (and for --print-config).
void check_options(const http_options& o);
}  // namespace http

class http_server {
public:
    // Checks the options, binds and starts serving. Throws
    // std::runtime_error on a bad option or a failed bind.
    http_server(http_options o, zmq::context_t& ctx, std::shared_ptr<const metrics_hub> hub,
                std::shared_ptr<spdlog::logger> log);
    // Stops accepting, finishes the requests in progress, joins.
    ~http_server();
    http_server(const http_server&) = delete;
    http_server& operator=(const http_server&) = delete;

    // "http://HOST:PORT", connectable (a wildcard address shown as 127.0.0.1).
    const std::string& url() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace taskmill::broker
