// The broker's HTTP server: routes that know their methods, and the hooks
// that answer every failure in JSON.
#include "http/http_router.hpp"

#include <strings.h>

#include <algorithm>

#include <spdlog/spdlog.h>

#include "http/http_routes.hpp"

namespace taskmill::broker::http {

router& router::Get(const std::string& pattern, Handler fn) {
    note("GET", pattern);
    note("HEAD", pattern);
    httplib::Server::Get(pattern, std::move(fn));
    return *this;
}

router& router::Post(const std::string& pattern, Handler fn) {
    note("POST", pattern);
    httplib::Server::Post(pattern, std::move(fn));
    return *this;
}

router& router::Put(const std::string& pattern, Handler fn) {
    note("PUT", pattern);
    httplib::Server::Put(pattern, std::move(fn));
    return *this;
}

router& router::Patch(const std::string& pattern, Handler fn) {
    note("PATCH", pattern);
    httplib::Server::Patch(pattern, std::move(fn));
    return *this;
}

router& router::Delete(const std::string& pattern, Handler fn) {
    note("DELETE", pattern);
    httplib::Server::Delete(pattern, std::move(fn));
    return *this;
}

void router::note(const char* method, const std::string& pattern) { routes_.emplace_back(method, std::regex(pattern)); }

std::vector<std::string> router::methods_for(const std::string& path) const {
    std::vector<std::string> out;
    for (const auto& [method, pattern] : routes_) {
        if (std::find(out.begin(), out.end(), method) == out.end() && std::regex_match(path, pattern)) {
            out.push_back(method);
        }
    }
    return out;
}

namespace {

constexpr std::size_t max_shown_path = 200;

std::string shown_path(const httplib::Request& req) {
    if (req.path.size() <= max_shown_path) {
        return req.path;
    }
    return req.path.substr(0, max_shown_path) + "...";
}

std::string joined(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) {
        out += (out.empty() ? "" : ", ") + s;
    }
    return out;
}

// The code and sentence for a status httplib set itself, with no body.
std::pair<std::string_view, std::string> failure_of(int status, std::size_t max_body_bytes) {
    switch (status) {
        case 400: return {"invalid_argument", "the request could not be read as HTTP/1.1"};
        case 408: return {"timeout", "the request did not arrive in time"};
        case 413:
            return {"too_large",
                    "the request body is over the broker's limit of " + std::to_string(max_body_bytes) + " bytes"};
        case 414: return {"too_large", "the request line is too long"};
        case 415: return {"unsupported", "this content type is not accepted here"};
        case 416: return {"invalid_argument", "the requested range cannot be served"};
        case 417: return {"invalid_argument", "this Expect header is not supported"};
        case 503: return {"unavailable", "the HTTP server cannot answer now; retry in a moment"};
        default: return {status < 500 ? "invalid_argument" : "internal", "HTTP " + std::to_string(status)};
    }
}

bool has_answer(const httplib::Response& res) { return !res.body.empty() || res.content_provider_ != nullptr; }

httplib::Server::HandlerResponse answer_failure(const router& srv, const httplib::Request& req, httplib::Response& res,
                                                std::size_t max_body_bytes) {
    if (has_answer(res)) {
        return httplib::Server::HandlerResponse::Unhandled;  // a route's own answer, JSON already
    }
    if (res.status == 404) {
        auto allowed = srv.methods_for(req.path);
        if (!allowed.empty()) {
            res.set_header("Allow", joined(allowed));
            send_error(res, 405, "method_not_allowed",
                       req.method.substr(0, 16) + " is not allowed on " + shown_path(req) +
                           " (allowed: " + joined(allowed) + ")");
        } else {
            send_error(res, 404, "not_found", "no route for " + req.method.substr(0, 16) + " " + shown_path(req));
        }
    } else {
        auto [code, message] = failure_of(res.status, max_body_bytes);
        send_error(res, res.status, code, message);
    }
    return httplib::Server::HandlerResponse::Handled;
}

bool has_body_method(const std::string& method) {
    return method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

bool starts_with_ci(const std::string& s, std::string_view prefix) {
    return s.size() >= prefix.size() && ::strncasecmp(s.c_str(), prefix.data(), prefix.size()) == 0;
}

}  // namespace

void answer_failures_in_json(router& srv, std::shared_ptr<spdlog::logger> log, std::size_t max_body_bytes) {
    srv.set_error_handler(httplib::Server::HandlerWithResponse(
        [&srv, max_body_bytes](const httplib::Request& req, httplib::Response& res) {
            return answer_failure(srv, req, res, max_body_bytes);
        }));
    srv.set_exception_handler(
        [log = std::move(log)](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
            std::string what = "unknown";
            try {
                std::rethrow_exception(ep);
            } catch (const std::exception& e) {
                what = e.what();
            } catch (...) {
            }
            log->error("http internal error: {}", what);
            send_error(res, errc::internal, "internal error: " + what);
        });
}

void prepare_request(const httplib::Request& req) {
    // httplib hands this hook a const view of the request it owns (a
    // non-const local of its request loop), and this hook is the only one
    // that runs before the body is read: the changes below are made here.
    auto& r = const_cast<httplib::Request&>(req);  // NOLINT(cppcoreguidelines-pro-type-const-cast)
    if (has_body_method(r.method) && !r.has_header("Content-Length") && !r.has_header("Transfer-Encoding")) {
        r.set_header("Content-Length", "0");
    }
    // cpp-httplib answers a client that accepts Brotli (every browser) with
    // Brotli at its default quality, 11: with a dashboard page open that
    // was ~65% of the broker's CPU. gzip, at zlib's default level, costs a
    // small part of it for much the same size.
    if (auto accepted = r.get_header_value("Accept-Encoding"); accepted.find("br") != std::string::npos) {
        r.headers.erase("Accept-Encoding");
        if (accepted.find("gzip") != std::string::npos) {
            r.set_header("Accept-Encoding", "gzip");
        }
    }
    if (r.path.rfind("/api/", 0) != 0) {
        return;
    }
    auto type = r.get_header_value("Content-Type");
    if (starts_with_ci(type, "application/x-www-form-urlencoded") || starts_with_ci(type, "multipart/form-data")) {
        r.headers.erase("Content-Type");
    }
}

}  // namespace taskmill::broker::http
