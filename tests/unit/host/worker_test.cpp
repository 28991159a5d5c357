// A real worker process (taskmill-host --worker) driven by a fake broker.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <thread>

#include <gtest/gtest.h>

#include <taskmill/plugin.hpp>
#include <taskmill/protocol/messages.hpp>

#include "fake_broker.hpp"

namespace mp = taskmill::plugin::mp;
namespace protocol = taskmill::protocol;
using namespace std::chrono_literals;
using taskmill::test::child;
using taskmill::test::fake_broker;
using taskmill::test::host_dirs;

namespace {

class worker : public ::testing::Test {
protected:
    void start(std::vector<std::string> extra = {}, const std::string& concurrency = "2") {
        std::vector<std::string> argv{TASKMILL_HOST_EXE, "--worker",
                                      "--broker",        broker_.endpoint(),
                                      "--plugins",       dirs_.plugins.string(),
                                      "--run-dir",       dirs_.run.string(),
                                      "--concurrency",   concurrency,
                                      "--heartbeat-ms",  "200",
                                      "--log-level",     "debug"};
        argv.insert(argv.end(), extra.begin(), extra.end());
        proc_ = std::make_unique<child>(argv, dirs_.log);
        ASSERT_GT(proc_->pid(), 0);
        auto hello = broker_.expect(protocol::cmd::hello);
        ASSERT_TRUE(hello.has_value()) << taskmill::test::read_text(dirs_.log);
        peer_ = hello->peer;
        auto h = protocol::decode_hello(hello->body);
        ASSERT_TRUE(h.has_value());
        hello_ = *h;
        broker_.send(peer_, protocol::cmd::welcome, protocol::encode(protocol::welcome{200, 1000}));
    }

    void dispatch(std::vector<protocol::work_item> items) {
        protocol::dispatch d;
        d.tasks = std::move(items);
        broker_.send(peer_, protocol::cmd::dispatch, protocol::encode(d));
    }

    static protocol::work_item item(std::string id, std::string handler, const mp::value& payload,
                                    int64_t timeout_ms = 0) {
        protocol::work_item w;
        w.id = std::move(id);
        w.handler = std::move(handler);
        w.payload = mp::pack(payload);
        w.timeout_ms = timeout_ms;
        return w;
    }

    // The next RESULTS message, decoded; nullopt after `timeout`.
    std::optional<protocol::results> next_results(std::chrono::milliseconds timeout = 10s) {
        auto r = broker_.expect(protocol::cmd::results, timeout);
        if (!r) return std::nullopt;
        auto res = protocol::decode_results(r->body);
        EXPECT_TRUE(res.has_value());
        if (!res) return std::nullopt;
        return *res;
    }

    // Collects outcomes from RESULTS messages until `n` have arrived.
    std::vector<protocol::outcome> outcomes(std::size_t n, std::chrono::milliseconds timeout = 10s) {
        std::vector<protocol::outcome> out;
        auto deadline = std::chrono::steady_clock::now() + timeout;
        while (out.size() < n) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) break;
            auto r = broker_.expect(protocol::cmd::results, left);
            if (!r) break;
            auto res = protocol::decode_results(r->body);
            EXPECT_TRUE(res.has_value());
            if (res) out.insert(out.end(), res->items.begin(), res->items.end());
        }
        return out;
    }

    // Dispatches `n` echo tasks in one DISPATCH and waits for their outcomes.
    void run_echoes(int n) {
        std::vector<protocol::work_item> items;
        for (int i = 0; i < n; ++i) items.push_back(item("e" + std::to_string(i), "echo.echo", i));
        dispatch(items);
        EXPECT_EQ(outcomes(static_cast<std::size_t>(n)).size(), static_cast<std::size_t>(n));
    }

    // Whether a CREDIT whose slots satisfy `ok` comes within `timeout` (others are skipped).
    template <typename Pred> bool credit_reaches(Pred ok, std::chrono::milliseconds timeout = 5s) {
        auto deadline = std::chrono::steady_clock::now() + timeout;
        for (;;) {
            auto left =
                std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            auto c = broker_.expect(protocol::cmd::credit, left);
            if (!c) return false;
            auto body = protocol::decode_control(c->body);
            if (body && ok(body->slots)) return true;
        }
    }

    void TearDown() override {
        if (HasFailure()) std::cerr << "---- worker log ----\n" << taskmill::test::read_text(dirs_.log);
    }

    host_dirs dirs_;
    fake_broker broker_;
    std::unique_ptr<child> proc_;
    std::string peer_;
    protocol::hello hello_;
};

}  // namespace

TEST_F(worker, hello_announces_identity_slots_and_handlers) {
    start({"--queues", "a,b", "--generation", "3"});
    EXPECT_EQ(peer_, taskmill::test::local_hostname() + ":" + std::to_string(proc_->pid()));
    EXPECT_EQ(hello_.worker, peer_);
    EXPECT_EQ(hello_.pid, proc_->pid());
    EXPECT_EQ(hello_.slots, 2u + 8u);  // --concurrency 2, auto prefetch from 4 x 2
    EXPECT_EQ(hello_.prefetch, 8u);
    EXPECT_EQ(hello_.generation, 3u);
    EXPECT_EQ(hello_.queues, (std::vector<std::string>{"a", "b"}));
    bool echo = false;
    for (const auto& h : hello_.handlers)
        echo = echo || (h.name == "echo.echo" && h.plugin == "echo" && h.version == "1.0.0");
    EXPECT_TRUE(echo);
    EXPECT_EQ(hello_.handlers.size(), 11u);
    EXPECT_TRUE(broker_.expect(protocol::cmd::heartbeat, 5s).has_value());
}

TEST_F(worker, hello_announces_slots_plus_prefetch) {
    start({"--prefetch", "3"});
    EXPECT_EQ(hello_.slots, 5u);
    EXPECT_EQ(hello_.prefetch, 3u);
}

// Auto prefetch: after a few short tasks the worker asks for a deep local
// queue (up to --prefetch-max), after long ones for a shallow one.
TEST_F(worker, auto_prefetch_grows_for_short_tasks_and_shrinks_for_long_ones) {
    start({"--prefetch-max", "100"});
    run_echoes(20);
    // To the ceiling of 100 on a quiet machine; a loaded one (sanitizers,
    // parallel tests) stretches the measured run times, but it grows.
    EXPECT_TRUE(credit_reaches([](uint32_t slots) { return slots > 2 + 8; }));

    std::vector<protocol::work_item> items;
    // Two windows of 8: the first may mix in echoes left over from above.
    for (int i = 0; i < 16; ++i)
        items.push_back(item("l" + std::to_string(i), "demo.sleep", mp::value::map({{"ms", 40}})));
    dispatch(items);
    EXPECT_EQ(outcomes(16).size(), 16u);
    EXPECT_TRUE(credit_reaches([](uint32_t slots) {
        return slots == 2 + 1;
    }));  // 2 x 10 ms / 40 ms: one waits (a window mixing both may step between)
}

TEST_F(worker, a_fixed_prefetch_sends_no_credit) {
    start({"--prefetch", "3"});
    run_echoes(20);
    EXPECT_FALSE(broker_.expect(protocol::cmd::credit, 300ms).has_value());
}

TEST_F(worker, prefetch_zero_announces_the_slots_and_draining_announces_zero) {
    start({"--prefetch", "0"});
    EXPECT_EQ(hello_.slots, 2u);
    EXPECT_EQ(hello_.prefetch, 0u);
    proc_->signal(SIGTERM);
    auto credit = broker_.expect(protocol::cmd::credit);
    ASSERT_TRUE(credit.has_value());
    EXPECT_EQ(protocol::decode_control(credit->body)->slots, 0u);
    // A HELLO while draining (the broker forgot us) offers nothing either.
    broker_.send(peer_, protocol::cmd::unknown, protocol::encode(protocol::control{}));
    auto again = broker_.expect(protocol::cmd::hello, 5s);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(protocol::decode_hello(again->body)->slots, 0u);
    EXPECT_EQ(protocol::decode_hello(again->body)->prefetch, 0u);
}

TEST_F(worker, echo_comes_back_ok_with_the_payload) {
    start();
    mp::value payload = mp::value::map({{"hello", "world"}, {"n", 3}});
    dispatch({item("t1", "echo.echo", payload)});
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].id, "t1");
    EXPECT_EQ(out[0].status, "ok");
    EXPECT_EQ(out[0].result, mp::pack(payload));
    EXPECT_EQ(out[0].version, "1.0.0");
    EXPECT_EQ(out[0].attempt, 1u);
}

TEST_F(worker, unknown_handler_and_failures_are_reported) {
    start();
    dispatch({item("u", "nope.nope", nullptr), item("p", "demo.fail", mp::value::map({{"mode", "permanent"}})),
              item("r", "demo.fail", mp::value::map({{"mode", "retryable"}, {"times", 1}}))});
    auto out = outcomes(3);
    ASSERT_EQ(out.size(), 3u);
    std::map<std::string, protocol::outcome> by_id;
    for (auto& o : out) by_id[o.id] = o;
    EXPECT_EQ(by_id["u"].status, "fail");
    EXPECT_NE(by_id["u"].error.find("no handler"), std::string::npos);
    EXPECT_EQ(by_id["p"].status, "fail");
    EXPECT_NE(by_id["p"].error.find("permanent"), std::string::npos);
    EXPECT_EQ(by_id["r"].status, "retry");
}

TEST_F(worker, runs_at_most_its_slots_at_once) {
    start();
    auto t0 = std::chrono::steady_clock::now();
    dispatch({item("s1", "demo.sleep", mp::value::map({{"ms", 300}})),
              item("s2", "demo.sleep", mp::value::map({{"ms", 300}})),
              item("s3", "demo.sleep", mp::value::map({{"ms", 300}}))});
    auto out = outcomes(3);
    auto elapsed = std::chrono::steady_clock::now() - t0;
    ASSERT_EQ(out.size(), 3u);
    for (const auto& o : out) EXPECT_EQ(o.status, "ok") << o.id << " " << o.error;
    // Two slots: the third sleep can only start when one of the first two ends.
    EXPECT_GE(elapsed, 590ms);
}

TEST_F(worker, cancel_stops_a_running_task) {
    start();
    dispatch({item("c1", "demo.sleep", mp::value::map({{"ms", 20000}}))});
    protocol::control c;
    c.ids = {"c1"};
    // The task may not have started yet; a cancel of a queued task is honoured too.
    broker_.send(peer_, protocol::cmd::cancel, protocol::encode(c));
    auto out = outcomes(1, 5s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "cancelled");
}

TEST_F(worker, a_deadline_turns_into_timeout) {
    start();
    dispatch({item("d1", "demo.sleep", mp::value::map({{"ms", 20000}}), 100)});
    auto out = outcomes(1, 5s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "timeout");
}

TEST_F(worker, checkpoint_waits_for_the_broker_and_resumes) {
    start();
    auto w = item("k1", "demo.checkpoint", mp::value::map({{"steps", 3}, {"ms", 1}}));
    w.attempt = 2;
    w.checkpoint = mp::pack(mp::value::map({{"next", 1}}));
    dispatch({w});
    for (int step = 0; step < 2; ++step) {
        auto cp = broker_.expect(protocol::cmd::checkpoint);
        ASSERT_TRUE(cp.has_value());
        auto c = protocol::decode_control(cp->body);
        ASSERT_TRUE(c.has_value());
        EXPECT_EQ(c->id, "k1");
        EXPECT_EQ((*mp::unpack(c->data))["next"].as_int(), step + 2);
        // No outcome may arrive while the checkpoint is unacknowledged (a
        // RESULTS saying k1 started may).
        while (auto r = next_results(50ms)) {
            EXPECT_TRUE(r->items.empty());
            for (const auto& id : r->started) EXPECT_EQ(id, "k1");
        }
        protocol::control reply;
        reply.req = c->req;
        reply.ok = true;
        broker_.send(peer_, protocol::cmd::checkpoint, protocol::encode(reply));
    }
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].status, "ok") << out[0].error;
    auto result = mp::unpack(out[0].result);
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ((*result)["resumed_from"].as_int(), 1);
    EXPECT_EQ((*result)["ran"], mp::value::array({1, 2}));
}

TEST_F(worker, spawn_returns_the_broker_ids) {
    start();
    dispatch({item("p1", "demo.spawn", mp::value::map({{"n", 2}}))});
    for (int i = 0; i < 2; ++i) {
        auto sp = broker_.expect(protocol::cmd::spawn);
        ASSERT_TRUE(sp.has_value());
        auto c = protocol::decode_control(sp->body);
        ASSERT_TRUE(c.has_value());
        ASSERT_EQ(c->tasks.size(), 1u);
        EXPECT_EQ(c->tasks[0].handler, "echo.echo");
        EXPECT_EQ(c->tasks[0].parent, "p1");
        protocol::control reply;
        reply.req = c->req;
        reply.ids = {"child" + std::to_string(i)};
        broker_.send(peer_, protocol::cmd::spawn, protocol::encode(reply));
    }
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].status, "ok") << out[0].error;
    EXPECT_EQ((*mp::unpack(out[0].result))["ids"], mp::value::array({"child0", "child1"}));
}

TEST_F(worker, unknown_makes_it_say_hello_again) {
    start();
    broker_.send(peer_, protocol::cmd::unknown, protocol::encode(protocol::control{}));
    EXPECT_TRUE(broker_.expect(protocol::cmd::hello, 5s).has_value());
}

TEST_F(worker, sigterm_drains_then_says_bye) {
    start();
    dispatch({item("g1", "demo.sleep", mp::value::map({{"ms", 300}}))});
    ASSERT_TRUE(broker_.expect(protocol::cmd::heartbeat, 5s).has_value());
    proc_->signal(SIGTERM);
    auto credit = broker_.expect(protocol::cmd::credit);
    ASSERT_TRUE(credit.has_value());
    EXPECT_EQ(protocol::decode_control(credit->body)->slots, 0u);
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "ok");
    EXPECT_TRUE(broker_.expect(protocol::cmd::bye).has_value());
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(worker, max_tasks_recycles_after_draining) {
    start({"--max-tasks", "2"});
    dispatch({item("m1", "echo.echo", 1), item("m2", "echo.echo", 2)});
    EXPECT_EQ(outcomes(2).size(), 2u);
    ASSERT_TRUE(broker_.expect(protocol::cmd::credit).has_value());
    EXPECT_TRUE(broker_.expect(protocol::cmd::bye).has_value());
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

TEST_F(worker, a_stuck_task_is_reported_and_the_worker_exits) {
    start({"--kill-grace-ms", "200"});
    dispatch({item("x1", "demo.spin", mp::value::map({{"ms", 60000}}), 100)});
    auto out = outcomes(1, 5s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "timeout");
    auto status = proc_->wait(5s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 70);  // exit_task_stuck
}

TEST_F(worker, malformed_messages_do_not_hurt_it) {
    start();
    broker_.send(peer_, protocol::cmd::dispatch, "\xc1garbage");
    broker_.send(peer_, protocol::cmd::cancel, "");
    broker_.send(peer_, "WHATEVER", "\x80");
    dispatch({item("e1", "echo.echo", 1)});
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "ok");
}

TEST_F(worker, max_rss_recycles_after_draining) {
    start({"--max-rss-mb", "64"});
    dispatch({item("l1", "demo.leak", mp::value::map({{"mb", 96}}))});
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "ok");
    auto credit = broker_.expect(protocol::cmd::credit);
    ASSERT_TRUE(credit.has_value());
    EXPECT_EQ(protocol::decode_control(credit->body)->slots, 0u);
    EXPECT_TRUE(broker_.expect(protocol::cmd::bye).has_value());
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0);
}

// One slot, three tasks: the second and third wait in the local queue. Each
// one's timeout counts from when the slot starts it, so all three succeed
// although the third ends ~900 ms after its DISPATCH with a 600 ms timeout.
TEST_F(worker, a_timeout_counts_from_the_start_not_from_the_dispatch) {
    start({"--prefetch", "4"}, "1");
    EXPECT_EQ(hello_.slots, 5u);
    dispatch({item("q1", "demo.sleep", mp::value::map({{"ms", 300}}), 600),
              item("q2", "demo.sleep", mp::value::map({{"ms", 300}}), 600),
              item("q3", "demo.sleep", mp::value::map({{"ms", 300}}), 600)});
    auto out = outcomes(3);
    ASSERT_EQ(out.size(), 3u);
    for (const auto& o : out) EXPECT_EQ(o.status, "ok") << o.id << " " << o.error;
}

// The broker learns which tasks a slot has started: each id once, in
// dispatch order, never before the slot takes it, and not at all for a task
// whose outcome travels in the same RESULTS.
TEST_F(worker, results_name_the_tasks_started_in_dispatch_order) {
    start({"--prefetch", "4"}, "1");
    dispatch({item("a", "demo.sleep", mp::value::map({{"ms", 300}})),
              item("b", "demo.sleep", mp::value::map({{"ms", 300}})), item("c", "echo.echo", 1)});
    std::vector<std::string> started;
    std::vector<std::string> done;
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (done.size() < 3 && std::chrono::steady_clock::now() < deadline) {
        auto r = next_results(1s);
        if (!r) continue;
        for (const auto& o : r->items) {
            EXPECT_EQ(o.status, "ok") << o.id;
            done.push_back(o.id);
        }
        for (const auto& id : r->started) {
            // One slot: a task starts only once every task started before it
            // has finished, and that outcome is never sent after the start.
            EXPECT_GE(done.size(), started.size()) << id;
            EXPECT_EQ(std::count(done.begin(), done.end(), id), 0) << id << " reported started after its outcome";
            started.push_back(id);
        }
    }
    EXPECT_EQ(done, (std::vector<std::string>{"a", "b", "c"}));
    // "a" and "b" sleep, so their start goes out before their outcome; "c"
    // may start and end within one drain (then only its outcome is sent).
    ASSERT_GE(started.size(), 2u);
    EXPECT_EQ(started[0], "a");
    EXPECT_EQ(started[1], "b");
    if (started.size() > 2) {
        EXPECT_EQ(started[2], "c");
    }
    EXPECT_LE(started.size(), 3u);
}

// A CANCEL names the attempt it stops: one for an earlier attempt (whose
// lease ran out at the broker) leaves the attempt now running alone.
TEST_F(worker, a_cancel_for_another_attempt_is_ignored) {
    start();
    auto w = item("c2", "demo.sleep", mp::value::map({{"ms", 300}}));
    w.attempt = 2;
    dispatch({w});
    protocol::control c;
    c.ids = {"c2"};
    c.attempt = 1;
    broker_.send(peer_, protocol::cmd::cancel, protocol::encode(c));
    auto out = outcomes(1, 5s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "ok");
    EXPECT_EQ(out[0].attempt, 2u);
}

// Its HEARTBEATs name every task it holds, which keeps their leases.
TEST_F(worker, heartbeats_name_the_tasks_it_holds) {
    start();
    dispatch({item("h1", "demo.sleep", mp::value::map({{"ms", 3000}}))});
    bool named = false;
    for (int i = 0; i < 20 && !named; ++i) {
        auto hb = broker_.expect(protocol::cmd::heartbeat, 2s);
        ASSERT_TRUE(hb.has_value());
        auto c = protocol::decode_control(hb->body);
        ASSERT_TRUE(c.has_value());
        named = c->ids == std::vector<std::string>{"h1"};
    }
    EXPECT_TRUE(named);
}

// Outcomes the broker has not acknowledged (HEARTBEAT req) come again after
// a new WELCOME: a restarted broker never read them.
TEST_F(worker, unacknowledged_outcomes_are_resent_after_a_new_welcome) {
    start();
    dispatch({item("r1", "echo.echo", 1)});
    auto first = next_results();
    ASSERT_TRUE(first.has_value());
    ASSERT_EQ(first->items.size(), 1u);
    EXPECT_GT(first->seq, 0u);
    broker_.send(peer_, protocol::cmd::unknown, protocol::encode(protocol::control{}));
    ASSERT_TRUE(broker_.expect(protocol::cmd::hello, 5s).has_value());
    broker_.send(peer_, protocol::cmd::welcome, protocol::encode(protocol::welcome{200, 1000}));
    auto again = next_results(5s);
    ASSERT_TRUE(again.has_value());
    ASSERT_EQ(again->items.size(), 1u);
    EXPECT_EQ(again->items[0].id, "r1");
    EXPECT_GT(again->seq, first->seq);
    // Acknowledged: the next WELCOME has nothing to resend.
    protocol::control ack;
    ack.req = again->seq;
    broker_.send(peer_, protocol::cmd::heartbeat, protocol::encode(ack));
    dispatch({item("r2", "echo.echo", 2)});
    auto second = next_results();
    ASSERT_TRUE(second.has_value());
    ack.req = second->seq;
    broker_.send(peer_, protocol::cmd::heartbeat, protocol::encode(ack));
    broker_.send(peer_, protocol::cmd::unknown, protocol::encode(protocol::control{}));
    ASSERT_TRUE(broker_.expect(protocol::cmd::hello, 5s).has_value());
    broker_.send(peer_, protocol::cmd::welcome, protocol::encode(protocol::welcome{200, 1000}));
    dispatch({item("r3", "echo.echo", 3)});
    auto third = next_results();
    ASSERT_TRUE(third.has_value());
    ASSERT_EQ(third->items.size(), 1u);
    EXPECT_EQ(third->items[0].id, "r3") << "acknowledged outcomes are not sent again";
}

// ---- sizes: a buffer over the limit is refused at once, and no task stays RUNNING ----

constexpr int64_t buffer_limit = (int64_t{16} << 20) - 64 * 1024;  // host/src/plugin_limits.hpp

TEST_F(worker, a_result_over_the_limit_fails_the_task_naming_the_sizes) {
    start();
    dispatch({item("big1", "demo.big", mp::value::map({{"mb", 20}}))});
    auto out = outcomes(1, 15s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "fail");
    EXPECT_TRUE(out[0].result.empty());
    EXPECT_EQ(out[0].error,
              "result too large (" + std::to_string(20 << 20) + " bytes, limit " + std::to_string(buffer_limit) + ")");
}

TEST_F(worker, set_result_over_the_limit_returns_too_large_so_the_handler_can_fall_back) {
    start();
    dispatch({item("big2", "demo.big", mp::value::map({{"mb", 20}, {"fallback", true}}))});
    auto out = outcomes(1, 15s);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].status, "ok") << out[0].error;
    auto r = mp::unpack(out[0].result);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["rc"].as_int(), TM_E_TOO_LARGE);
    EXPECT_EQ((*r)["limit"].as_int(), buffer_limit);
}

// Nothing reaches the broker, and the answer comes at once (not after the 30 s reply timeout).
TEST_F(worker, checkpoint_and_spawn_over_the_limit_return_too_large_at_once) {
    start();
    dispatch({item("big3", "demo.big", mp::value::map({{"mb", 20}, {"fallback", true}, {"what", "checkpoint"}})),
              item("big4", "demo.big", mp::value::map({{"mb", 20}, {"fallback", true}, {"what", "spawn"}}))});
    auto out = outcomes(2, 10s);
    ASSERT_EQ(out.size(), 2u);
    for (const auto& o : out) {
        ASSERT_EQ(o.status, "ok") << o.id << ": " << o.error;
        auto r = mp::unpack(o.result);
        ASSERT_TRUE(r.has_value());
        EXPECT_EQ((*r)["rc"].as_int(), TM_E_TOO_LARGE) << o.id;
        EXPECT_EQ((*r)["limit"].as_int(), buffer_limit) << o.id;
    }
    EXPECT_FALSE(broker_.expect(protocol::cmd::checkpoint, 100ms).has_value());
    EXPECT_FALSE(broker_.expect(protocol::cmd::spawn, 100ms).has_value());
}

// A broker with a smaller body limit refuses a RESULTS with ERROR (which
// names no task): the outcome goes again as a small failure.
TEST_F(worker, an_error_from_the_broker_fails_a_large_outcome_it_may_have_refused) {
    start();
    dispatch({item("big5", "demo.big", mp::value::map({{"mb", 1}})), item("small", "echo.echo", 1)});
    auto out = outcomes(2);
    ASSERT_EQ(out.size(), 2u);
    protocol::control e;
    e.ok = false;
    e.error = "body of 1048700 bytes is over the 1048576-byte limit";
    broker_.send(peer_, protocol::cmd::error, protocol::encode(e));
    auto again = outcomes(1, 5s);
    ASSERT_EQ(again.size(), 1u);
    EXPECT_EQ(again[0].id, "big5");
    EXPECT_EQ(again[0].status, "fail");
    EXPECT_NE(again[0].error.find("the broker refused this outcome"), std::string::npos) << again[0].error;
    EXPECT_NE(again[0].error.find(e.error), std::string::npos) << again[0].error;
}

// ---- what a handler sees and what the host answers ----

TEST_F(worker, a_handler_sees_its_bare_name_and_progress_out_of_range_is_refused) {
    start();
    dispatch({item("pr1", "demo.probe@1", mp::value::map({}))});
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    ASSERT_EQ(out[0].status, "ok") << out[0].error;
    auto r = mp::unpack(out[0].result);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ((*r)["handler"].as_string(), "demo.probe");
    EXPECT_EQ((*r)["nan"].as_int(), TM_E_INVALID);
    EXPECT_EQ((*r)["inf"].as_int(), TM_E_INVALID);
    EXPECT_EQ((*r)["over"].as_int(), TM_E_INVALID);
    EXPECT_EQ((*r)["unknown"].as_int(), 0);
    EXPECT_EQ((*r)["half"].as_int(), 0);
}

TEST_F(worker, a_plugin_log_message_is_one_line_escaped_and_capped) {
    start();
    dispatch({item("pr2", "demo.probe", mp::value::map({}))});
    ASSERT_EQ(outcomes(1).size(), 1u);
    auto log = taskmill::test::read_text(dirs_.log);
    EXPECT_NE(log.find("first line\\nforged line\\tand a tab"), std::string::npos) << log;
    EXPECT_EQ(log.find("\nforged line"), std::string::npos) << log;
    EXPECT_NE(log.find(std::string(8192, 'y') + "...(truncated, 20000 bytes)"), std::string::npos);
    EXPECT_EQ(log.find(std::string(8193, 'y')), std::string::npos);
}

TEST_F(worker, the_error_code_a_handler_sets_reaches_the_broker) {
    start();
    dispatch({item("pr3", "demo.probe", mp::value::map({{"code", 42}})), item("pr4", "demo.fail", mp::value::map({}))});
    auto out = outcomes(2);
    ASSERT_EQ(out.size(), 2u);
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    EXPECT_EQ(out[0].status, "fail");
    EXPECT_EQ(out[0].error, "probe failed on purpose");
    EXPECT_EQ(out[0].error_code, std::optional<int64_t>(42));
    EXPECT_EQ(out[1].status, "retry");
    EXPECT_FALSE(out[1].error_code.has_value());  // code 0: none set
}

// ---- stop and retire: a task is never handed back without seeing a cancellation ----

namespace {

// The BYE comes, with no outcome for `id` before it (it is handed back).
void expect_handed_back(fake_broker& broker, const std::string& id) {
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < deadline) {
        if (auto r = broker.expect(protocol::cmd::results, 50ms)) {
            auto res = protocol::decode_results(r->body);
            ASSERT_TRUE(res.has_value());
            for (const auto& o : res->items) EXPECT_NE(o.id, id) << "reported " << o.status << ": " << o.error;
        }
        if (broker.expect(protocol::cmd::bye, 50ms)) return;
    }
    ADD_FAILURE() << "no BYE";
}

}  // namespace

TEST_F(worker, sigterm_cancels_a_long_task_at_the_end_of_the_grace_then_hands_it_back) {
    start({"--grace-ms", "300", "--kill-grace-ms", "5000"});
    dispatch({item("long1", "demo.sleep", mp::value::map({{"ms", 60000}}))});
    auto started = next_results();
    ASSERT_TRUE(started.has_value());
    proc_->signal(SIGTERM);
    expect_handed_back(broker_, "long1");
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    auto log = taskmill::test::read_text(dirs_.log);
    EXPECT_NE(log.find("task=long1 handler=demo.sleep attempt=1 stopped for the worker's exit; handed back"),
              std::string::npos);
}

TEST_F(worker, a_task_that_ignores_the_stop_is_handed_back_after_the_kill_grace) {
    start({"--grace-ms", "200", "--kill-grace-ms", "300"});
    dispatch({item("spin1", "demo.spin", mp::value::map({{"ms", 60000}}))});
    ASSERT_TRUE(next_results().has_value());
    proc_->signal(SIGTERM);
    expect_handed_back(broker_, "spin1");
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 71) << *status;  // exit_handed_back
}

TEST_F(worker, sigusr1_retires_and_a_task_with_a_deadline_finishes_past_the_grace) {
    start({"--grace-ms", "200", "--kill-grace-ms", "5000"});
    dispatch({item("r1", "demo.sleep", mp::value::map({{"ms", 1200}}), 30000)});
    ASSERT_TRUE(next_results().has_value());
    proc_->signal(SIGUSR1);
    ASSERT_TRUE(credit_reaches([](uint32_t slots) { return slots == 0; }));
    auto out = outcomes(1, 10s);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(out[0].status, "ok") << out[0].error;
    EXPECT_TRUE(broker_.expect(protocol::cmd::bye).has_value());
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

TEST_F(worker, sigusr1_cancels_a_task_without_deadline_at_the_end_of_the_grace) {
    start({"--grace-ms", "300", "--kill-grace-ms", "5000"});
    dispatch({item("r2", "demo.sleep", mp::value::map({{"ms", 60000}}))});
    ASSERT_TRUE(next_results().has_value());
    proc_->signal(SIGUSR1);
    expect_handed_back(broker_, "r2");
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
    EXPECT_NE(
        taskmill::test::read_text(dirs_.log).find("task=r2 handler=demo.sleep attempt=1 stopped for the worker's exit"),
        std::string::npos);
}

TEST_F(worker, sigterm_after_a_retire_cancels_tasks_with_a_deadline_too) {
    start({"--grace-ms", "200", "--kill-grace-ms", "5000"});
    dispatch({item("r3", "demo.sleep", mp::value::map({{"ms", 60000}}), 120000)});
    ASSERT_TRUE(next_results().has_value());
    proc_->signal(SIGUSR1);
    auto deadline = std::chrono::steady_clock::now() + 10s;
    while (taskmill::test::read_text(dirs_.log).find("grace period over: 0 task(s)") == std::string::npos) {
        ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "the retire's grace did not end";
        std::this_thread::sleep_for(10ms);  // polling the log for a condition, not a wait in itself
    }
    proc_->signal(SIGTERM);
    expect_handed_back(broker_, "r3");
    auto status = proc_->wait(10s);
    ASSERT_TRUE(status.has_value());
    EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << *status;
}

// The broker refuses a subtask (e.g. no worker serves its handler): spawn
// returns TM_E_INVALID (the C++ layer's error names the code) and the
// host log says why.
TEST_F(worker, a_spawn_the_broker_refuses_returns_invalid_and_logs_why) {
    start();
    dispatch({item("p2", "demo.spawn", mp::value::map({{"n", 1}}))});
    auto sp = broker_.expect(protocol::cmd::spawn);
    ASSERT_TRUE(sp.has_value());
    protocol::control reply;
    reply.req = protocol::decode_control(sp->body)->req;
    reply.ok = false;
    reply.error = "unknown handler echo.echo";
    broker_.send(peer_, protocol::cmd::spawn, protocol::encode(reply));
    auto out = outcomes(1);
    ASSERT_EQ(out.size(), 1u);
    EXPECT_NE(out[0].error.find("TM_E_INVALID"), std::string::npos) << out[0].error;
    EXPECT_NE(taskmill::test::read_text(dirs_.log).find("task=p2 spawn refused: unknown handler echo.echo"),
              std::string::npos);
}
