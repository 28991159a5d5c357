// A broker with its HTTP API on a picked loopback port, a write token and a
// read token, and an HTTP client of it: what the HTTP, metrics, doc-example
// and schedule-control tests start from.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "harness.hpp"

namespace taskmill::testing {

class http_test : public ::testing::Test {
protected:
    static constexpr const char* writer = "w-token";
    static constexpr const char* reader = "r-token";

    temp_dir tmp;
    std::unique_ptr<broker_process> broker;
    std::string url;
    std::unique_ptr<httplib::Client> http;

    // Starts (or restarts, on the same data folder) the broker with HTTP
    // and both tokens, plus `extra` flags, and points `http` at it.
    void start_http_broker(std::vector<std::string> extra = {}) {
        std::vector<std::string> flags{"--http",       "127.0.0.1:0",
                                       "--http-token", std::string("ops:write:") + writer,
                                       "--http-token", std::string("viewer:read:") + reader};
        flags.insert(flags.end(), extra.begin(), extra.end());
        broker = std::make_unique<broker_process>(tmp.path() / "data", flags);
        auto eps = nlohmann::json::parse(read_file(tmp.path() / "data" / "endpoints.json"));
        ASSERT_TRUE(eps.contains("http")) << eps.dump();
        url = eps["http"];
        http = std::make_unique<httplib::Client>(url);
        http->set_read_timeout(std::chrono::seconds(30));
    }

    static httplib::Headers auth(const char* token) { return {{"Authorization", std::string("Bearer ") + token}}; }

    // GET `path` as `token`: the JSON body of a 200, else an empty object.
    nlohmann::json get(const std::string& path, const char* token = reader) {
        auto r = http->Get(path, auth(token));
        if (!r || r->status != 200) {
            return nlohmann::json::object();
        }
        return nlohmann::json::parse(r->body, nullptr, false);
    }
};

}  // namespace taskmill::testing
