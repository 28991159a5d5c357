// End to end on one node: a real broker, a real host with worker processes,
// real plugins, a real LMDB; processes killed with SIGKILL.
#include "harness.hpp"

#include <taskmill/protocol/frame.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <atomic>
#include <random>
#include <set>
#include <thread>

#include <gtest/gtest.h>

using namespace taskmill::testing;
namespace tp = taskmill::protocol;

namespace {

class Foundation : public ::testing::Test {
protected:
    temp_dir tmp;
    fs::path data() const { return tmp.path() / "data"; }

    // Waits until the broker lists `n` workers that serve `handler`.
    static bool wait_workers(wire_client& c, std::size_t n, const std::string& handler = "echo.echo") {
        return wait_until(
            [&] {
                std::size_t k = 0;
                for (auto& w : c.workers()) {
                    for (auto& h : w.handlers) {
                        k += h.name == handler ? 1 : 0;
                    }
                }
                return k >= n;
            },
            30s);
    }
};

TEST_F(Foundation, ThousandTasksThroughTwoWorkerProcesses) {
    broker_process broker(data());
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .processes = 2, .concurrency = 4});
    wire_client c(broker.ep().frontend);
    ASSERT_TRUE(wait_workers(c, 2)) << host->log_text();

    std::vector<tp::task_spec> batch;
    for (int i = 0; i < 1000; ++i) {
        batch.push_back(task("echo.echo", {{"n", i}}));
    }
    auto ids = c.submit(batch);
    ASSERT_EQ(ids.size(), 1000u);
    ASSERT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 1000u) << "ids are unique";

    std::set<std::string> ran_on;
    for (int i = 0; i < 1000; ++i) {
        auto t = c.wait_final(ids[i], 60s);
        ASSERT_TRUE(t.has_value()) << "task " << i << " did not finish";
        ASSERT_EQ(t->state, "SUCCEEDED") << t->error;
        ASSERT_TRUE(t->result.has_value());
        EXPECT_EQ(from_msgpack(*t->result), (nlohmann::json{{"n", i}}));
        ran_on.insert(t->worker);
    }
    EXPECT_EQ(ran_on.size(), 2u) << "both worker processes took tasks";
}

TEST_F(Foundation, AcknowledgedSubmitsSurviveBrokerSigkill) {
    std::vector<std::string> acked;
    {
        broker_process broker(data());
        std::atomic<bool> stop{false};
        std::thread killer([&] {
            // Let a stream of submits get going, then kill the broker mid-stream.
            wait_until([&] { return stop.load(); }, 300ms);
            broker.proc().signal(SIGKILL);
        });
        wire_client c(broker.ep().frontend);
        for (int i = 0; i < 100000; ++i) {
            std::vector<tp::task_spec> batch;
            for (int k = 0; k < 20; ++k) {
                batch.push_back(task("echo.echo", {{"i", i}, {"k", k}}));
            }
            auto ids = c.submit(batch, 2s);
            if (ids.empty()) {
                break;  // broker gone: whatever was acked must survive
            }
            acked.insert(acked.end(), ids.begin(), ids.end());
        }
        stop = true;
        killer.join();
        ASSERT_TRUE(broker.proc().wait_exit(10s).has_value());
    }
    ASSERT_GT(acked.size(), 0u);

    broker_process broker(data(), {}, "broker2.log");
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .processes = 2, .concurrency = 8});
    wire_client c(broker.ep().frontend);
    for (auto& id : acked) {
        auto t = c.wait_final(id, 120s);
        ASSERT_TRUE(t.has_value()) << "acknowledged task " << id << " was lost";
        ASSERT_EQ(t->state, "SUCCEEDED");
    }
}

TEST_F(Foundation, KilledWorkerTaskRunsAgainAndWorkerIsRestarted) {
    broker_process broker(data());
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .processes = 1, .concurrency = 1});
    wire_client c(broker.ep().frontend);
    ASSERT_TRUE(wait_workers(c, 1, "demo.sleep")) << host->log_text();

    auto ids = c.submit({task("demo.sleep", {{"ms", 2000}})});
    ASSERT_EQ(ids.size(), 1u);
    int victim = 0;
    ASSERT_TRUE(wait_until(
        [&] {
            auto t = c.status(ids[0]);
            if (!t || t->state != "RUNNING") {
                return false;
            }
            for (auto& w : c.workers()) {
                if (w.id == t->worker) {
                    victim = static_cast<int>(w.pid);
                }
            }
            return victim > 0;
        },
        20s));
    ASSERT_EQ(::kill(victim, SIGKILL), 0);

    auto t = c.wait_final(ids[0], 60s);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(t->state, "SUCCEEDED") << t->error;
    EXPECT_GE(t->attempts, 2u) << "the task ran again";
    // A new worker process serves, and the host itself lived through it.
    EXPECT_TRUE(host->running());
    bool restarted = false;
    for (auto& w : c.workers()) {
        restarted |= w.pid != victim && w.pid > 0;
    }
    EXPECT_TRUE(restarted) << host->log_text();
}

TEST_F(Foundation, BadPluginsAreRefusedAndGoodOnesServe) {
    auto dir = tmp.path() / "plugins";
    fs::create_directories(dir);
    fs::copy_file(build_paths::plugins() / "echo.so", dir / "echo.so");
    fs::copy_file(build_paths::test_plugins() / "not_a_library.so", dir / "not_a_library.so");
    fs::copy_file(build_paths::test_plugins() / "bad_abi_major.so", dir / "bad_abi_major.so");

    broker_process broker(data());
    auto host = start_host(tmp.path(), {.backend = broker.ep().backend, .plugins = dir});
    wire_client c(broker.ep().frontend);
    ASSERT_TRUE(wait_workers(c, 1)) << host->log_text();

    auto ids = c.submit({task("echo.echo", "hello")});
    ASSERT_EQ(ids.size(), 1u);
    auto t = c.wait_final(ids[0], 30s);
    ASSERT_TRUE(t && t->state == "SUCCEEDED");
    EXPECT_EQ(from_msgpack(*t->result), "hello");

    auto log = host->log_text();
    EXPECT_NE(log.find("not_a_library.so"), std::string::npos) << log;
    EXPECT_NE(log.find("bad_abi_major.so"), std::string::npos) << log;
    for (auto& w : c.workers()) {
        for (auto& h : w.handlers) {
            EXPECT_EQ(h.name.rfind("echo.", 0), 0u) << "only the good plugin's handlers: " << h.name;
        }
    }
    EXPECT_TRUE(host->running());
}

TEST_F(Foundation, CheckCommandExplainsRefusals) {
    auto check = [&](const fs::path& so) {
        std::string cmd = build_paths::host().string() + " --check " + so.string() + " >" +
                          (tmp.path() / "check.out").string() + " 2>&1";
        int st = std::system(cmd.c_str());
        return std::pair{WIFEXITED(st) ? WEXITSTATUS(st) : -1, read_file(tmp.path() / "check.out")};
    };
    auto [ok_code, ok_out] = check(build_paths::plugins() / "demo.so");
    EXPECT_EQ(ok_code, 0) << ok_out;
    EXPECT_NE(ok_out.find("demo.sleep"), std::string::npos) << ok_out;
    auto [bad_code, bad_out] = check(build_paths::test_plugins() / "bad_abi_major.so");
    EXPECT_EQ(bad_code, 2) << bad_out;
    EXPECT_NE(bad_out.find("ABI"), std::string::npos) << bad_out;
    auto [junk_code, junk_out] = check(build_paths::test_plugins() / "not_a_library.so");
    EXPECT_EQ(junk_code, 2) << junk_out;
}

TEST_F(Foundation, MalformedClientInputNeverHurtsTheBroker) {
    broker_process broker(data());
    zmq::context_t ctx(1);
    zmq::socket_t raw(ctx, zmq::socket_type::dealer);
    raw.set(zmq::sockopt::linger, 0);
    raw.connect(broker.ep().frontend);
    std::mt19937 rng(7);
    for (int i = 0; i < 300; ++i) {
        std::string junk(rng() % 64, '\0');
        for (auto& ch : junk) {
            ch = static_cast<char>(rng());
        }
        switch (i % 3) {
            case 0: raw.send(zmq::buffer(junk), zmq::send_flags::none); break;
            case 1: tp::send(raw, "", tp::cmd::submit, junk); break;
            default: tp::send(raw, "", "NOSUCHCOMMAND", junk); break;
        }
    }
    wire_client c(broker.ep().frontend);
    tp::request bad;
    tp::task_spec t = task("no_namespace", 1);
    bad.tasks = {t};
    auto rep = c.call(tp::cmd::submit, bad);
    ASSERT_TRUE(rep.has_value());
    EXPECT_FALSE(rep->ok);
    EXPECT_EQ(rep->error_code, "invalid_argument");
    auto p = task("echo.echo", 1);
    p.priority = 42;
    bad.tasks = {p};
    rep = c.call(tp::cmd::submit, bad);
    ASSERT_TRUE(rep.has_value());
    EXPECT_FALSE(rep->ok);
    EXPECT_NE(rep->error.find("priority"), std::string::npos) << rep->error;
    EXPECT_TRUE(broker.proc().running());
    ASSERT_TRUE(c.call(tp::cmd::ping, {}).has_value());
}

}  // namespace

// A task that finishes while the broker is down is not run again: the
// worker keeps the outcome until a broker acknowledges it and sends it
// again after the restarted broker's WELCOME, which finishes the task it
// recovered as QUEUED.
TEST_F(Foundation, TaskFinishedWhileTheBrokerWasDownIsNotRunAgain) {
    broker_process first(data(), {"--heartbeat-ms", "200"});
    auto ep = first.ep();
    auto host = start_host(
        tmp.path(), {.backend = ep.backend, .processes = 1, .concurrency = 1, .extra = {"--log-level", "debug"}});
    wire_client c(ep.frontend);
    ASSERT_TRUE(wait_workers(c, 1, "demo.sleep")) << host->log_text();
    auto ids = c.submit({task("demo.sleep", {{"ms", 3000}})});
    ASSERT_EQ(ids.size(), 1u);
    ASSERT_TRUE(wait_until(
        [&] {
            auto t = c.status(ids[0]);
            return t && t->state == "RUNNING";
        },
        20s));
    first.proc().signal(SIGKILL);
    ASSERT_TRUE(first.proc().wait_exit(10s).has_value());
    // The attempt ends while no broker is there to hear it.
    auto ended = "task=" + ids[0] + " handler=demo.sleep attempt=1 status=ok";
    ASSERT_TRUE(wait_until([&] { return host->log_text().find(ended) != std::string::npos; }, 20s)) << host->log_text();

    broker_process second(data(), {"--heartbeat-ms", "200"}, "broker2.log", &ep);
    auto restarted_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
            .count();
    wire_client c2(ep.frontend);
    auto t = c2.wait_final(ids[0], 20s);
    ASSERT_TRUE(t.has_value()) << host->log_text();
    EXPECT_EQ(t->state, "SUCCEEDED") << t->error;
    EXPECT_EQ(t->attempts, 1u);
    // A second run would take its 3 s again.
    EXPECT_LT(t->finished_ms - restarted_ms, 2000) << "the outcome was resent, not the task run again";
    EXPECT_NE(host->log_text().find("resending 1 outcome(s)"), std::string::npos) << host->log_text();
}
