// The client library against a fake broker (real ROUTER, real frames).
#include <algorithm>
#include <condition_variable>
#include <future>
#include <mutex>

#include <gtest/gtest.h>

#include <taskmill/client/client.hpp>

#include "fake_broker.hpp"

namespace {

using namespace std::chrono_literals;
using taskmill::errc;
using taskmill::client::client;
using taskmill::client::client_options;
using taskmill::client::task_info;
using taskmill::client::task_options;
using taskmill::test::fake_broker;
using taskmill::test::outgoing_msg;
namespace protocol = taskmill::protocol;

std::string msgpack_of(const nlohmann::json& j) {
    auto b = nlohmann::json::to_msgpack(j);
    return {b.begin(), b.end()};
}

protocol::task_info finished(const std::string& id, const std::string& state) {
    protocol::task_info t;
    t.id = id;
    t.handler = "echo.echo";
    t.queue = "default";
    t.state = state;
    t.attempts = 1;
    t.created_ms = 1'700'000'000'000;
    t.finished_ms = 1'700'000'000'500;
    if (state == "SUCCEEDED") {
        t.result = msgpack_of({{"echo", 42}});
    } else {
        t.error = "boom";
    }
    return t;
}

task_options echo_task() {
    task_options t;
    t.handler = "echo.echo";
    return t;
}

// Answers SUBMIT with ids "t<N>" numbered across the whole test.
struct id_source {
    std::atomic<int> next{1};
    void ack(const protocol::request& req, std::vector<outgoing_msg>& out) {
        auto m = fake_broker::reply_to(protocol::cmd::submit, req);
        for (std::size_t i = 0; i < req.tasks.size(); ++i) {
            m.body.ids.push_back("t" + std::to_string(next++));
        }
        out.push_back(m);
    }
};

// A DONE carrying `tasks`: as `task` when there is one, else as the list.
outgoing_msg done_of(std::vector<protocol::task_info> tasks) {
    outgoing_msg done{std::string(protocol::cmd::done), {}};
    if (tasks.size() == 1) {
        done.body.task = std::move(tasks.front());
    } else {
        done.body.tasks = std::move(tasks);
    }
    return done;
}

// A broker that acks SUBMITs with ids t1, t2, ... and answers PING with
// PING and then `dones`: a test pings once its handles and callbacks are
// set up, so the DONEs come after them.
auto acks_then_dones_on_ping(id_source& ids, std::vector<outgoing_msg> dones) {
    return [&ids, dones = std::move(dones)](const std::string& cmd, const protocol::request& req,
                                            std::vector<outgoing_msg>& out) {
        if (cmd == protocol::cmd::submit) {
            ids.ack(req, out);
        } else if (cmd == protocol::cmd::ping) {
            out.push_back(fake_broker::reply_to(protocol::cmd::ping, req));
            out.insert(out.end(), dones.begin(), dones.end());
        }
    };
}

client_options options_for(const fake_broker& b, std::chrono::milliseconds timeout = 5s) {
    client_options o;
    o.endpoint = b.endpoint();
    o.request_timeout = timeout;
    return o;
}

TEST(Client, SubmitBatchIsSplitIntoFramesAndGetsIdsInOrder) {
    id_source ids;
    fake_broker broker([&](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        if (cmd == protocol::cmd::submit) {
            ids.ack(req, out);
        }
    });
    auto o = options_for(broker);
    o.max_batch = 1000;
    client c(o);
    std::vector<task_options> tasks(2500);
    for (std::size_t i = 0; i < tasks.size(); ++i) {
        tasks[i].handler = "echo.echo";
        tasks[i].payload = nlohmann::json{{"i", i}};
        tasks[i].tags = {"batch"};
        tasks[i].priority = 3;
    }
    auto handles = c.submit(tasks);
    ASSERT_TRUE(handles) << handles.error().message;
    ASSERT_EQ(handles->size(), 2500u);
    EXPECT_EQ((*handles)[0].id(), "t1");
    EXPECT_EQ((*handles)[2499].id(), "t2500");

    auto got = broker.received();
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0].second.tasks.size(), 1000u);
    EXPECT_EQ(got[2].second.tasks.size(), 500u);
    const auto& first = got[0].second.tasks[0];
    EXPECT_EQ(first.handler, "echo.echo");
    EXPECT_TRUE(first.notify);
    EXPECT_EQ(first.priority, 3);
    EXPECT_EQ(first.payload, msgpack_of({{"i", 0}}));
    EXPECT_EQ(first.tags, std::vector<std::string>{"batch"});
}

TEST(Client, SubmitCarriesEveryOption) {
    id_source ids;
    fake_broker broker([&](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        if (cmd == protocol::cmd::submit) {
            ids.ack(req, out);
        }
    });
    client c(options_for(broker));
    task_options t;
    t.handler = "demo.sleep@2";
    t.payload = taskmill::client::payload::raw(std::string("\xc0", 1));
    t.queue = "slow";
    t.delay = 1500ms;
    t.eta = taskmill::client::time_point(std::chrono::milliseconds(1'800'000'000'000));
    t.retries = 4;
    t.timeout = 2s;
    t.ttl = 60s;
    t.backoff.base = 100ms;
    t.backoff.factor = 3.0;
    t.backoff.cap = 10s;
    t.key = "k1";
    ASSERT_TRUE(c.submit(t));
    const auto s = broker.received().at(0).second.tasks.at(0);
    EXPECT_EQ(s.payload, std::string("\xc0", 1));
    EXPECT_EQ(s.queue, "slow");
    EXPECT_EQ(s.delay_ms, 1500);
    EXPECT_EQ(s.eta_ms, 1'800'000'000'000);
    EXPECT_EQ(s.retries, 4);
    EXPECT_EQ(s.timeout_ms, 2000);
    EXPECT_EQ(s.ttl_ms, 60000);
    EXPECT_EQ(s.backoff_base_ms, 100);
    EXPECT_EQ(s.backoff_factor, 3.0);
    EXPECT_EQ(s.backoff_cap_ms, 10000);
    EXPECT_EQ(s.key, "k1");
}

TEST(Client, DonePushCompletesGetAndThen) {
    id_source ids;
    // STATUS is never answered: only DONE can complete the handles.
    fake_broker broker([&](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        if (cmd != protocol::cmd::submit) {
            return;
        }
        ids.ack(req, out);
        const auto acked = out.back().body.ids;  // a copy: out grows below
        for (std::size_t i = 0; i < acked.size(); ++i) {
            outgoing_msg done{std::string(protocol::cmd::done), {}};
            done.body.task = finished(acked[i], i == 0 ? "SUCCEEDED" : "FAILED");
            out.push_back(done);
        }
    });
    client c(options_for(broker, 30s));
    std::vector<task_options> tasks(2);
    tasks[0].handler = tasks[1].handler = "echo.echo";
    auto handles = c.submit(tasks);
    ASSERT_TRUE(handles);
    auto ok = (*handles)[0];
    auto ko = (*handles)[1];

    auto t = ok.get(10s);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->state, "SUCCEEDED");
    EXPECT_EQ(t->result_json(), (nlohmann::json{{"echo", 42}}));
    EXPECT_TRUE(ok.ready());

    std::promise<std::string> success_seen, failure_seen;
    ok.then([&](const task_info& i) { success_seen.set_value(i.id); },
            [&](const task_info&) { success_seen.set_value("wrong callback"); });
    ko.then([&](const task_info&) { failure_seen.set_value("wrong callback"); },
            [&](const task_info& i) { failure_seen.set_value(i.id + ":" + i.error); });
    auto f1 = success_seen.get_future();
    auto f2 = failure_seen.get_future();
    ASSERT_EQ(f1.wait_for(10s), std::future_status::ready);
    ASSERT_EQ(f2.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(f1.get(), ok.id());
    EXPECT_EQ(f2.get(), ko.id() + ":boom");
}

TEST(Client, ThenRegisteredBeforeDoneFiresOnDone) {
    id_source ids;
    fake_broker broker(acks_then_dones_on_ping(ids, {done_of({finished("t1", "SUCCEEDED")})}));
    client c(options_for(broker));
    auto h = c.submit(echo_task());
    ASSERT_TRUE(h);
    std::promise<void> fired;
    h->then([&](const task_info&) { fired.set_value(); });
    ASSERT_TRUE(c.ping());
    EXPECT_EQ(fired.get_future().wait_for(10s), std::future_status::ready);
}

TEST(Client, ThenFiresEvenWhenEveryCopyOfTheHandleWasDropped) {
    id_source ids;
    fake_broker broker(acks_then_dones_on_ping(ids, {done_of({finished("t1", "SUCCEEDED")})}));
    client c(options_for(broker));
    std::promise<std::string> fired;
    {
        auto h = c.submit(echo_task());
        ASSERT_TRUE(h);
        h->then([&](const task_info& i) { fired.set_value(i.id); });
    }  // the only handle is gone: a producer that only keeps callbacks
    ASSERT_TRUE(c.ping());
    auto f = fired.get_future();
    ASSERT_EQ(f.wait_for(10s), std::future_status::ready);
    EXPECT_EQ(f.get(), "t1");
}

// The broker sends one DONE per client per turn: `task` when one task of
// this client ended, `tasks` when several did. Both complete their handles,
// and a DONE for an unknown id or a non-final state is ignored.
TEST(Client, DoneWithOneTaskOrAListCompletesEachHandle) {
    id_source ids;
    auto not_final = finished("t4", "SUCCEEDED");
    not_final.state = "RUNNING";  // ignored
    fake_broker broker(acks_then_dones_on_ping(
        ids, {done_of({finished("t1", "SUCCEEDED")}), done_of({finished("t2", "SUCCEEDED"), finished("t3", "FAILED"),
                                                               finished("unknown", "SUCCEEDED"), not_final})}));
    client c(options_for(broker, 30s));
    std::vector<task_options> tasks(4, echo_task());
    auto handles = c.submit(tasks);
    ASSERT_TRUE(handles) << handles.error().message;
    ASSERT_EQ(handles->size(), 4u);
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::string> seen;
    for (std::size_t i = 0; i < 3; ++i) {
        (*handles)[i].then(
            [&](const task_info& t) {
                std::lock_guard lock(mu);
                seen.push_back(t.id + ":" + t.state);
                cv.notify_all();
            },
            [&](const task_info& t) {
                std::lock_guard lock(mu);
                seen.push_back(t.id + ":" + t.state + ":" + t.error);
                cv.notify_all();
            });
    }
    ASSERT_TRUE(c.ping());
    {
        std::unique_lock lock(mu);
        ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return seen.size() == 3; }));
    }
    // Callbacks run in order on one thread: the single DONE first, then the list.
    EXPECT_EQ(seen, (std::vector<std::string>{"t1:SUCCEEDED", "t2:SUCCEEDED", "t3:FAILED:boom"}));
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_TRUE((*handles)[i].ready());
        auto t = (*handles)[i].get(1s);
        ASSERT_TRUE(t) << t.error().message;
        EXPECT_EQ(t->id, "t" + std::to_string(i + 1));
    }
    EXPECT_EQ((*handles)[1].get(1s)->result_json(), (nlohmann::json{{"echo", 42}}));
    EXPECT_FALSE((*handles)[3].ready());  // its DONE said RUNNING
}

// Handles dropped without then() are forgotten by the client; a later DONE
// for them is ignored, and the handles still held complete normally.
TEST(Client, DroppedHandlesAreForgottenAndLaterDonesIgnored) {
    id_source ids;
    std::vector<protocol::task_info> all;
    for (int i = 1; i <= 1001; ++i) all.push_back(finished("t" + std::to_string(i), "SUCCEEDED"));
    fake_broker broker(acks_then_dones_on_ping(ids, {done_of(std::move(all))}));
    client c(options_for(broker, 30s));
    {
        auto dropped = c.submit(std::vector<task_options>(1000, echo_task()));
        ASSERT_TRUE(dropped);
    }
    auto kept = c.submit(echo_task());
    ASSERT_TRUE(kept);
    EXPECT_EQ(kept->id(), "t1001");
    ASSERT_TRUE(c.ping());
    auto t = kept->get(10s);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->state, "SUCCEEDED");
}

TEST(Client, GetFallsBackToStatusLongPoll) {
    id_source ids;
    fake_broker broker([&](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        if (cmd == protocol::cmd::submit) {
            ids.ack(req, out);  // and never a DONE, as after a broker restart
        } else if (cmd == protocol::cmd::status) {
            auto m = fake_broker::reply_to(protocol::cmd::status, req);
            m.body.task = finished(req.id, "SUCCEEDED");
            out.push_back(m);
        }
    });
    client c(options_for(broker));
    auto h = c.submit(echo_task());
    ASSERT_TRUE(h);
    auto t = h->get(10s);
    ASSERT_TRUE(t) << t.error().message;
    EXPECT_EQ(t->id, "t1");
    EXPECT_EQ(t->state, "SUCCEEDED");
    bool saw_long_poll = false;
    for (const auto& [cmd, req] : broker.received()) {
        saw_long_poll |= cmd == protocol::cmd::status && req.id == "t1" && req.wait_ms > 0;
    }
    EXPECT_TRUE(saw_long_poll);
}

TEST(Client, GetTimesOutWithConflictWhileTheTaskRuns) {
    fake_broker broker([&](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        if (cmd == protocol::cmd::status) {
            auto m = fake_broker::reply_to(protocol::cmd::status, req);
            m.body.task = finished(req.id, "RUNNING");
            out.push_back(m);
        }
    });
    client c(options_for(broker));
    auto start = std::chrono::steady_clock::now();
    auto t = c.wait("t9", 400ms);
    ASSERT_FALSE(t);
    EXPECT_EQ(t.error().code, errc::conflict);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s);
}

TEST(Client, SilentBrokerGivesUnavailableWithinTheTimeout) {
    fake_broker broker([](const std::string&, const protocol::request&, std::vector<outgoing_msg>&) {});
    client c(options_for(broker, 300ms));
    auto start = std::chrono::steady_clock::now();
    auto r = c.status("t1");
    auto elapsed = std::chrono::steady_clock::now() - start;
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unavailable);
    EXPECT_GE(elapsed, 250ms);
    EXPECT_LT(elapsed, 3s);
    auto s = c.submit(echo_task());
    ASSERT_FALSE(s);
    EXPECT_EQ(s.error().code, errc::unavailable);
}

TEST(Client, NoBrokerAtAllGivesUnavailable) {
    std::string endpoint;
    {
        zmq::context_t ctx;
        zmq::socket_t probe(ctx, zmq::socket_type::router);
        probe.bind("tcp://127.0.0.1:*");
        endpoint = probe.get(zmq::sockopt::last_endpoint);
    }  // closed: nothing listens there now
    client_options o;
    o.endpoint = endpoint;
    o.request_timeout = 200ms;
    client c(o);
    auto r = c.ping();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::unavailable);
}

TEST(Client, SurvivesABrokerRestart) {
    auto pong = [](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        out.push_back(fake_broker::reply_to(cmd, req));
    };
    auto first = std::make_unique<fake_broker>(pong);
    const auto endpoint = first->endpoint();
    client_options o;
    o.endpoint = endpoint;
    o.request_timeout = 300ms;
    client c(o);
    ASSERT_TRUE(c.ping());
    first.reset();
    auto down = c.ping();
    ASSERT_FALSE(down);
    EXPECT_EQ(down.error().code, errc::unavailable);
    fake_broker second(pong, endpoint);
    // The DEALER reconnects by itself (backoff ~100 ms); poll until it has.
    bool back = false;
    for (auto deadline = std::chrono::steady_clock::now() + 10s;
         !back && std::chrono::steady_clock::now() < deadline;) {
        back = c.ping().has_value();
    }
    EXPECT_TRUE(back);
}

TEST(Client, BrokerErrorRepliesKeepTheirCode) {
    fake_broker broker([](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        auto m = fake_broker::reply_to(cmd, req);
        m.body.ok = false;
        m.body.error_code = cmd == protocol::cmd::status ? "not_found" : "invalid_argument";
        m.body.error = "no task " + req.id;
        out.push_back(m);
    });
    client c(options_for(broker));
    auto r = c.status("nope");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().code, errc::not_found);
    EXPECT_EQ(r.error().message, "no task nope");
    auto x = c.retry("nope");
    ASSERT_FALSE(x);
    EXPECT_EQ(x.error().code, errc::invalid_argument);
}

TEST(Client, QueriesDecodeTheirReplies) {
    fake_broker broker([](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        auto m = fake_broker::reply_to(cmd, req);
        if (cmd == protocol::cmd::tasks) {
            m.body.tasks = {finished("a", "FAILED"), finished("b", "SUCCEEDED")};
        } else if (cmd == protocol::cmd::stats) {
            m.body.stats = protocol::stats_info{};
            m.body.stats->queues.push_back({"default", 3, 1, 2, false, {}});
            m.body.stats->workers = 2;
        } else if (cmd == protocol::cmd::workers) {
            protocol::worker_info w;
            w.id = "h:1";
            w.slots = 4;
            w.handlers.push_back({"echo.echo", "1.0.0", "echo"});
            m.body.workers.push_back(w);
        } else if (cmd == protocol::cmd::cancel) {
            m.body.ids = {"x", "y"};
            m.body.note = req.tag;
        }
        out.push_back(m);
    });
    client c(options_for(broker));
    taskmill::client::task_filter filter;
    filter.state = "FAILED";
    filter.queue = "q";
    filter.tag = "t";
    filter.limit = 7;
    auto ts = c.tasks(filter);
    ASSERT_TRUE(ts);
    ASSERT_EQ(ts->size(), 2u);
    EXPECT_EQ((*ts)[0].error, "boom");
    auto req = broker.received().back().second;
    EXPECT_EQ(req.state, "FAILED");
    EXPECT_EQ(req.queue, "q");
    EXPECT_EQ(req.tag, "t");
    EXPECT_EQ(req.limit, 7u);
    auto st = c.stats();
    ASSERT_TRUE(st);
    EXPECT_EQ(st->queues.at(0).ready, 3u);
    EXPECT_EQ(st->workers, 2u);
    auto ws = c.workers();
    ASSERT_TRUE(ws);
    EXPECT_EQ(ws->at(0).handlers.at(0).name, "echo.echo");
    auto cx = c.cancel_tag("nightly");
    ASSERT_TRUE(cx);
    EXPECT_EQ(cx->ids.size(), 2u);
    EXPECT_EQ(cx->note, "nightly");
}

// The broker reads a bounded number of tasks per TASKS and says where it
// stopped: tasks() asks again from there until it has `limit` of them.
TEST(Client, TasksGoesOnFromWhereTheBrokerStopped) {
    fake_broker broker([](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        auto m = fake_broker::reply_to(cmd, req);
        if (req.before.empty()) {
            m.body.tasks = {finished("a", "FAILED")};
            m.body.next = "n1";  // read its budget, found one
        } else if (req.before == "n1") {
            m.body.next = "n2";  // found none in the next stretch
        } else {
            m.body.tasks = {finished("b", "FAILED"), finished("c", "FAILED")};
            m.body.next = "n3";  // more may follow, but the limit is reached
        }
        out.push_back(m);
    });
    client c(options_for(broker));
    taskmill::client::task_filter filter;
    filter.state = "FAILED";
    filter.limit = 3;
    auto ts = c.tasks(filter);
    ASSERT_TRUE(ts) << ts.error().message;
    ASSERT_EQ(ts->size(), 3u);
    EXPECT_EQ((*ts)[2].id, "c");
    auto asked = broker.received();
    ASSERT_EQ(asked.size(), 3u) << "no request after the limit was reached";
    EXPECT_EQ(asked[1].second.before, "n1");
    EXPECT_EQ(asked[1].second.limit, 2u);
    EXPECT_EQ(asked[2].second.before, "n2");
    EXPECT_EQ(asked[2].second.state, "FAILED");
}

TEST(Client, ManyThreadsShareOneClient) {
    fake_broker broker([](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        auto m = fake_broker::reply_to(cmd, req);
        m.body.task = finished(req.id, "SUCCEEDED");
        out.push_back(m);
    });
    client c(options_for(broker));
    std::atomic<int> good{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < 50; ++i) {
                auto id = std::to_string(t) + "-" + std::to_string(i);
                auto r = c.status(id);
                good += (r && r->id == id) ? 1 : 0;
            }
        });
    }
    for (auto& th : threads) {
        th.join();
    }
    EXPECT_EQ(good.load(), 400);
}

TEST(Client, EndpointComesFromEnvironmentWhenNotGiven) {
    ::setenv("TASKMILL_BROKER", "tcp://10.1.2.3:9999", 1);
    EXPECT_EQ(taskmill::client::resolve_endpoint(""), "tcp://10.1.2.3:9999");
    EXPECT_EQ(taskmill::client::resolve_endpoint("tcp://x:1"), "tcp://x:1");
    ::unsetenv("TASKMILL_BROKER");
    EXPECT_EQ(taskmill::client::resolve_endpoint(""), "tcp://127.0.0.1:5555");
}

}  // namespace

// ---- following a cluster's leader (docs/CLUSTER.md) ----

namespace {

// A member that does not lead: every request gets not_leader, naming `leader`.
fake_broker::handler follower_of(const std::string* leader) {
    return [leader](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        auto m = fake_broker::reply_to(cmd, req);
        m.body.ok = false;
        m.body.error_code = "not_leader";
        m.body.error = "this member does not lead";
        m.body.leader = *leader;
        out.push_back(m);
    };
}

}  // namespace

TEST(ClientCluster, NotLeaderSendsTheRequestToTheLeaderItNames) {
    id_source ids;
    fake_broker leader([&](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        if (cmd == protocol::cmd::submit) {
            ids.ack(req, out);
        }
    });
    const std::string leader_ep = leader.endpoint();
    fake_broker follower(follower_of(&leader_ep));
    client c(follower.endpoint());  // one endpoint, a follower's
    task_options t;
    t.handler = "echo.echo";
    auto h = c.submit(t);
    ASSERT_TRUE(h) << h.error().message;
    EXPECT_EQ(h->id(), "t1");
    ASSERT_EQ(leader.received().size(), 1u);
    EXPECT_TRUE(leader.received()[0].second.tasks[0].key.empty())
        << "one endpoint: only not_leader is followed, so no key is needed";
}

TEST(ClientCluster, SeveralEndpointsKeyEveryTaskAndMoveOnFromASilentOne) {
    id_source ids;
    fake_broker leader([&](const std::string& cmd, const protocol::request& req, std::vector<outgoing_msg>& out) {
        if (cmd == protocol::cmd::submit) {
            ids.ack(req, out);
        } else if (cmd == protocol::cmd::ping) {
            out.push_back(fake_broker::reply_to(cmd, req));
        }
    });
    // A member that takes requests and never answers, as a dead leader's
    // address with a process hung behind it.
    fake_broker silent([](const std::string&, const protocol::request&, std::vector<outgoing_msg>&) {});
    client_options o;
    o.endpoint = silent.endpoint() + "," + leader.endpoint();
    o.failover_after = 200ms;
    o.request_timeout = 10s;
    client c(o);
    std::vector<task_options> tasks(2);
    tasks[0].handler = "echo.echo";
    tasks[1].handler = "echo.echo";
    tasks[1].key = "mine";
    auto h = c.submit(tasks);
    ASSERT_TRUE(h) << h.error().message;
    ASSERT_EQ(h->size(), 2u);
    ASSERT_FALSE(silent.received().empty()) << "the first endpoint was asked first";
    auto got = leader.received();
    auto submit = std::find_if(got.begin(), got.end(), [](const auto& r) { return r.first == protocol::cmd::submit; });
    ASSERT_NE(submit, got.end());
    const auto& sent = submit->second.tasks;
    ASSERT_EQ(sent.size(), 2u);
    EXPECT_EQ(sent[0].key.rfind("auto:", 0), 0u) << sent[0].key;
    EXPECT_EQ(sent[0].key.size(), 5u + 32u);
    EXPECT_EQ(sent[1].key, "mine") << "a key of the caller's own is kept";
    EXPECT_EQ(silent.received()[0].second.tasks[0].key, sent[0].key) << "the resend is the same request";
}

TEST(ClientCluster, AMalformedEndpointInTheListIsRefusedAtOnce) {
    try {
        client c("tcp://127.0.0.1:1,bogus://");
        FAIL() << "a malformed endpoint was taken";
    } catch (const std::runtime_error& e) {
        EXPECT_NE(std::string(e.what()).find("bogus://"), std::string::npos) << e.what();
    }
    EXPECT_THROW(client c("tcp://127.0.0.1:1,tcp://127.0.0.1:1"), std::runtime_error) << "listed twice";
}
