// A whole system for a test: a broker, a subscriber to its events, one host
// and a wire client, as the lifecycle and prefetch tests drive it.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "harness.hpp"

namespace taskmill::testing {

class system_test : public ::testing::Test {
protected:
    temp_dir tmp;
    std::unique_ptr<broker_process> broker;
    std::unique_ptr<process> host;
    std::unique_ptr<wire_client> client;
    std::unique_ptr<event_log> events;

    // Starts the broker with `broker_extra`, subscribes to its events, starts
    // a host as `h` says (its backend filled in), and waits until at least
    // `workers` worker processes have registered.
    void start_system(const std::vector<std::string>& broker_extra, host_options h, std::size_t workers) {
        broker = std::make_unique<broker_process>(tmp.path() / "data", broker_extra);
        events = std::make_unique<event_log>(broker->ep().events);
        h.backend = broker->ep().backend;
        host = start_host(tmp.path(), h);
        client = std::make_unique<wire_client>(broker->ep().frontend);
        ASSERT_TRUE(wait_until([&] { return client->workers().size() >= workers; }, 30s)) << host->log_text();
    }

    // The final state of `id`, waited for up to `timeout`; a task that does
    // not finish fails the test with the host's log.
    protocol::task_info final_state(const std::string& id, ms timeout = 60s) {
        auto t = client->wait_final(id, timeout);
        EXPECT_TRUE(t.has_value()) << "task " << id << " did not finish; host log:\n" << host->log_text();
        return t.value_or(protocol::task_info{});
    }
};

}  // namespace taskmill::testing
