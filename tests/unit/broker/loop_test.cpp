// The broker loop driven over inproc:// with real DEALER sockets: what
// needs the sockets and the loop's turn. Engine logic and its timers are
// tested on the simulated clock (engine_harness.hpp).
#include <gtest/gtest.h>
#include <msgpack.hpp>

#include <set>

#include <algorithm>
#include <iostream>

#include "broker_harness.hpp"

using namespace tmtest;

namespace {

class LoopTest : public broker_test {};

}  // namespace

TEST_F(LoopTest, SubmitDispatchResultStatus) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "host:1");
    w.hello({handler("echo.echo")}, 4);
    auto ids = c.submit({task("echo.echo")});
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(ids[0].size(), 32u);
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    EXPECT_EQ(items[0].id, ids[0]);
    EXPECT_EQ(items[0].payload,
              "\xa3"
              "abc");
    EXPECT_EQ(items[0].attempt, 1u);
    w.result(items[0], "ok", "\xa2ok");
    auto st = c.status(ids[0], 5000);
    EXPECT_EQ(st.state, "SUCCEEDED");
    EXPECT_EQ(st.result, std::optional<std::string>("\xa2ok"));
    EXPECT_EQ(st.attempts, 1u);
    EXPECT_EQ(st.worker, "host:1");
    EXPECT_GT(st.finished_ms, 0);
}

TEST_F(LoopTest, MalformedBodyGetsErrorAndBrokerKeepsServing) {
    start();
    client c(ctx_, fe());
    c.send(tp::cmd::submit, "\xc1\xc1 not msgpack");
    auto m = c.recv();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->command, tp::cmd::error);
    auto rep = tp::decode_reply(m->body);
    ASSERT_TRUE(rep.has_value());
    EXPECT_FALSE(rep->ok);
    EXPECT_EQ(rep->error_code, "invalid_argument");

    // A frame that is not even protocol-shaped.
    c.socket().send(zmq::str_buffer("garbage"), zmq::send_flags::none);
    m = c.recv();
    ASSERT_TRUE(m.has_value());
    EXPECT_EQ(m->command, tp::cmd::error);

    tp::request rq;
    auto unknown = c.call("FROB", rq);
    EXPECT_FALSE(unknown.ok);
    EXPECT_NE(unknown.error.find("FROB"), std::string::npos);

    auto pong = c.call(tp::cmd::ping, rq);
    EXPECT_TRUE(pong.ok);
}

TEST_F(LoopTest, StatusLongPollAndDonePush) {
    start();
    client c(ctx_, fe());
    client watcher(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 1);
    auto t = task("a.b");
    t.notify = true;
    auto ids = c.submit({t});
    auto items = w.next_dispatch();
    ASSERT_EQ(items.size(), 1u);
    tp::request rq;
    rq.req = 77;
    rq.id = ids[0];
    rq.wait_ms = 10000;
    watcher.send(tp::cmd::status, tp::encode(rq));  // parked until the result
    EXPECT_FALSE(watcher.recv(100ms).has_value());
    w.result(items[0], "ok", "\x05");
    auto m = watcher.recv();
    ASSERT_TRUE(m.has_value());
    auto rep = tp::decode_reply(m->body);
    EXPECT_EQ(rep->req, 77u);
    EXPECT_EQ(rep->task->state, "SUCCEEDED");
    auto done = c.recv();
    ASSERT_TRUE(done.has_value());
    EXPECT_EQ(done->command, tp::cmd::done);
    EXPECT_EQ(tp::decode_reply(done->body)->task->result, std::optional<std::string>("\x05"));
}

// Tasks of one client that end in the same turn share one DONE (`tasks`).
TEST_F(LoopTest, DoneOfOneTurnIsBatched) {
    start();
    client c(ctx_, fe());
    fake_worker w(ctx_, be(), "w");
    w.hello({handler("a.b")}, 3);
    std::vector<tp::task_spec> specs(3, task("a.b"));
    for (auto& s : specs) {
        s.notify = true;
    }
    auto ids = c.submit(specs);
    std::vector<tp::work_item> items;
    while (items.size() < 3) {
        auto more = w.next_dispatch();
        ASSERT_FALSE(more.empty());
        items.insert(items.end(), more.begin(), more.end());
    }
    tp::results rs;
    for (const auto& it : items) {
        rs.items.push_back(
            tp::outcome{it.id, it.attempt, "ok", "\x01", "", std::nullopt, "1.0.0", std::nullopt, std::nullopt});
    }
    w.send(tp::cmd::results, tp::encode(rs));  // one RESULTS: one broker turn
    auto done = c.recv();
    ASSERT_TRUE(done.has_value());
    ASSERT_EQ(done->command, tp::cmd::done);
    auto rep = tp::decode_reply(done->body);
    ASSERT_TRUE(rep.has_value());
    EXPECT_FALSE(rep->task.has_value());
    std::set<std::string> got;
    for (const auto& t : rep->tasks) {
        EXPECT_EQ(t.state, "SUCCEEDED");
        got.insert(t.id);
    }
    EXPECT_EQ(got, std::set<std::string>(ids.begin(), ids.end()));
}

// Through the real events socket: XPUB hands the loop the subscription,
// and the engine then builds the events it covers.
TEST_F(LoopTest, EventsArePublished) {
    start();
    zmq::socket_t sub(ctx_, zmq::socket_type::sub);
    sub.set(zmq::sockopt::subscribe, "task.");
    sub.connect(b_->endpoints().events);
    client c(ctx_, fe());
    // A SUB joins asynchronously: submit until an event arrives.
    std::optional<std::string> topic;
    std::string body;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!topic && std::chrono::steady_clock::now() < deadline) {
        c.submit({task("a.b")});
        std::vector<zmq::pollitem_t> items = {{sub.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, 50ms);
        zmq::message_t t;
        zmq::message_t b;
        if (sub.recv(t, zmq::recv_flags::dontwait)) {
            (void)sub.recv(b, zmq::recv_flags::none);
            topic = t.to_string();
            body = b.to_string();
        }
    }
    ASSERT_TRUE(topic.has_value());
    EXPECT_EQ(*topic, "task.queued");
    auto h = msgpack::unpack(body.data(), body.size());
    auto m = h.get().as<std::map<std::string, msgpack::object>>();
    EXPECT_EQ(m.at("state").as<std::string>(), "QUEUED");
    EXPECT_EQ(m.at("handler").as<std::string>(), "a.b");
}

// A rough throughput check, not run by default:
//   broker_tests --gtest_also_run_disabled_tests --gtest_filter='*Throughput*'
TEST(LoopThroughput, DISABLED_DurableSubmitRunResult) {
    temp_dir dir;
    zmq::context_t ctx;
    auto cfg = test_config(dir.path.string());
    cfg.mode = tb::durability::sync;
    running_broker b(ctx, cfg);
    client c(ctx, b.endpoints().frontend);
    fake_worker w(ctx, b.endpoints().backend, "w");
    w.hello({handler("a.b")}, 1000);
    constexpr int n = 20000;
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n / 500; ++i) {
        c.submit(std::vector<tp::task_spec>(500, task("a.b")));
    }
    auto t1 = std::chrono::steady_clock::now();
    int done = 0;
    while (done < n) {
        auto items = w.next_dispatch();
        ASSERT_FALSE(items.empty());
        tp::results rs;
        for (auto& it : items) {
            rs.items.push_back(
                tp::outcome{it.id, it.attempt, "ok", "\xc0", "", std::nullopt, "1", std::nullopt, std::nullopt});
        }
        w.send(tp::cmd::results, tp::encode(rs));
        done += static_cast<int>(items.size());
    }
    auto st = c.call(tp::cmd::stats, tp::request{});
    auto t2 = std::chrono::steady_clock::now();
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    std::cout << "submit " << n << " in " << ms(t1 - t0) << " ms; run+results in " << ms(t2 - t1) << " ms\n";
    EXPECT_EQ(st.stats->counters["submitted"], static_cast<uint64_t>(n));
}
