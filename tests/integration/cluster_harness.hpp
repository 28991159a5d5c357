// Three taskmill-broker processes as one cluster on loopback
// (docs/CLUSTER.md), to be killed and started again by the tests.
#pragma once

#include <signal.h>

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "harness.hpp"

#include <taskmill/client/client.hpp>

namespace taskmill::testing {

class cluster_of_three {
public:
    // `extra`: options of every member; `env`: each member's environment additions.
    explicit cluster_of_three(std::vector<std::string> extra = {}, std::array<std::vector<std::string>, 3> env = {})
        : extra_(std::move(extra)), env_(std::move(env)) {
        for (int id = 1; id <= 3; ++id) {
            peers_ += (id > 1 ? "," : "") + std::to_string(id) + "=127.0.0.1:" + std::to_string(free_port());
        }
        for (std::size_t i = 0; i < 3; ++i) {
            start(i);
        }
    }

    // Member i (node-id i + 1), on the endpoints it had before if any.
    void start(std::size_t i) {
        const endpoints* at = started_[i] ? &eps_[i] : nullptr;
        std::vector<std::string> args{"--node-id", std::to_string(i + 1), "--peers", peers_, "--durability", "none"};
        args.insert(args.end(), extra_.begin(), extra_.end());
        members_[i] = std::make_unique<broker_process>(dir_.path() / ("member" + std::to_string(i + 1)), args,
                                                       "member" + std::to_string(i + 1) + ".log", at, env_[i]);
        eps_[i] = members_[i]->ep();
        started_[i] = true;
    }
    void kill(std::size_t i) {
        members_[i]->proc().signal(SIGKILL);
        members_[i]->proc().wait_exit(10s);
        members_[i].reset();
    }
    const endpoints& ep(std::size_t i) const { return eps_[i]; }
    // Member i's HTTP URL (started with --http), from its endpoints.json.
    std::string http_url(std::size_t i) const {
        auto eps =
            nlohmann::json::parse(read_file(dir_.path() / ("member" + std::to_string(i + 1)) / "endpoints.json"));
        return eps.value("http", std::string{});
    }
    const fs::path& dir() const { return dir_.path(); }
    // Every member's frontend (or backend), comma-separated, as clients
    // (or hosts) take them.
    std::string frontends() const { return eps_[0].frontend + "," + eps_[1].frontend + "," + eps_[2].frontend; }
    std::string backends() const { return eps_[0].backend + "," + eps_[1].backend + "," + eps_[2].backend; }

    // The member that answers STATS, once one does.
    std::optional<std::size_t> leader(ms limit = 15s) {
        std::optional<std::size_t> found;
        wait_until(
            [&] {
                for (std::size_t i = 0; i < 3; ++i) {
                    if (!members_[i]) {
                        continue;
                    }
                    wire_client c(eps_[i].frontend);
                    auto r = c.call(protocol::cmd::stats, {}, 500ms);
                    if (r && r->ok) {
                        found = i;
                        return true;
                    }
                }
                return false;
            },
            limit);
        return found;
    }

private:
    temp_dir dir_;
    std::vector<std::string> extra_;
    std::array<std::vector<std::string>, 3> env_;
    std::string peers_;
    std::array<endpoints, 3> eps_;
    std::array<bool, 3> started_{};
    std::array<std::unique_ptr<broker_process>, 3> members_;
};

// Submits batches of `batch` demo.sleep tasks of `sleep_ms` through the C++
// client until told to stop; keeps every handle and every failed call.
class producer {
public:
    producer(taskmill::client::client& cl, std::size_t batch, int sleep_ms)
        : batch_(batch), sleep_ms_(sleep_ms), thread_([this, &cl] { run(cl); }) {}
    ~producer() { stop(); }
    void stop() {
        done_ = true;
        if (thread_.joinable()) {
            thread_.join();
        }
    }
    std::size_t acked() {
        std::lock_guard lock(mu_);
        return handles_.size();
    }
    std::vector<taskmill::client::task_handle> handles() {
        std::lock_guard lock(mu_);
        return handles_;
    }
    std::vector<std::string> failures() {
        std::lock_guard lock(mu_);
        return failures_;
    }

private:
    void run(taskmill::client::client& cl) {
        while (!done_) {
            std::vector<taskmill::client::task_options> batch(batch_);
            for (auto& t : batch) {
                t.handler = "demo.sleep";
                t.payload = nlohmann::json{{"ms", sleep_ms_}};
            }
            auto got = cl.submit(batch);
            std::lock_guard lock(mu_);
            if (got) {
                handles_.insert(handles_.end(), got->begin(), got->end());
            } else {
                failures_.push_back(got.error().message);
            }
        }
    }

    const std::size_t batch_;
    const int sleep_ms_;
    std::atomic<bool> done_{false};
    std::mutex mu_;
    std::vector<taskmill::client::task_handle> handles_;
    std::vector<std::string> failures_;
    std::thread thread_;
};

// Until `cl` sees at least one worker (a host given every member found the leader).
inline bool some_worker(taskmill::client::client& cl) {
    return wait_until(
        [&] {
            auto w = cl.workers();
            return w && !w->empty();
        },
        30s);
}

}  // namespace taskmill::testing
