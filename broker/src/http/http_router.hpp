// The HTTP server the broker serves from: cpp-httplib's, plus what it
// needs so that every answer, the failures httplib writes itself included,
// is JSON (docs/HTTP.md, "Errors").
#pragma once

#include <memory>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include <httplib.h>

namespace spdlog {
class logger;
}

namespace taskmill::broker::http {

// An httplib::Server that remembers which methods each route pattern has,
// so that a request whose method the path lacks is answered 405 with
// `Allow` rather than 404. Routes count only when registered through a
// router& (httplib's methods are not virtual): route functions take one.
class router : public httplib::Server {
public:
    using httplib::Server::Delete;
    using httplib::Server::Patch;
    using httplib::Server::Post;
    using httplib::Server::Put;

    router& Get(const std::string& pattern, Handler fn);
    router& Post(const std::string& pattern, Handler fn);
    router& Put(const std::string& pattern, Handler fn);
    router& Patch(const std::string& pattern, Handler fn);
    router& Delete(const std::string& pattern, Handler fn);

    // The methods that have a route matching `path`, without repeats (GET
    // brings HEAD, as httplib serves HEAD from GET routes).
    std::vector<std::string> methods_for(const std::string& path) const;

private:
    void note(const char* method, const std::string& pattern);

    std::vector<std::pair<std::string, std::regex>> routes_;  // written before the server starts
};

// Makes every failure answer JSON {"error_code", "error"}: what httplib
// answers with an empty body (no route, a body over `max_body_bytes`, a
// request it could not read, an over-long URI), a method the path lacks
// (405 with Allow) and an exception thrown by a handler (500, logged).
void answer_failures_in_json(router& srv, std::shared_ptr<spdlog::logger> log, std::size_t max_body_bytes);

// Called first thing for every request, before httplib reads its body:
// - a POST, PUT, PATCH or DELETE with neither Content-Length nor
//   Transfer-Encoding has an empty body (RFC 9112 section 6.3), where
//   httplib would wait for the client to close (`curl -X POST URL` then
//   got 400 after the read timeout);
// - an /api/ body is kept raw whatever its Content-Type: httplib would
//   parse a form body (curl -d's default type) into parameters, refuse one
//   over 8 KiB, and split a multipart one into parts.
void prepare_request(const httplib::Request& req);

}  // namespace taskmill::broker::http
