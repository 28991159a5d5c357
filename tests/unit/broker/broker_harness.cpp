#include "broker_harness.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <random>

#include <gtest/gtest.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace tmtest {

temp_dir::temp_dir() {
    std::random_device rd;
    path = std::filesystem::temp_directory_path() /
           ("taskmill-broker-test-" + std::to_string(rd()) + std::to_string(rd()));
    std::filesystem::create_directories(path);
}

temp_dir::~temp_dir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
}

int free_port() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    const bool ok = ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
    ::close(fd);
    EXPECT_TRUE(ok) << "no free loopback port";
    return ntohs(a.sin_port);
}

tb::broker_config test_config(const std::string& data_dir) {
    static std::atomic<int> n{0};
    int k = ++n;
    tb::broker_config cfg;
    cfg.data_dir = data_dir;
    cfg.frontend = "inproc://fe-" + std::to_string(k);
    cfg.backend = "inproc://be-" + std::to_string(k);
    cfg.events = "inproc://ev-" + std::to_string(k);
    cfg.mode = tb::durability::none;
    cfg.map_size_mb = 64;
    cfg.heartbeat_ms = 100;
    cfg.liveness_ms = 2000;
    cfg.backoff_base_ms = 10;
    return cfg;
}

running_broker::running_broker(zmq::context_t& ctx, tb::broker_config cfg, std::shared_ptr<spdlog::logger> log) {
    if (!log) {
        log = spdlog::get("broker-test");
    }
    if (!log) {
        log = spdlog::stderr_color_mt("broker-test");
        log->set_level(spdlog::level::warn);
    }
    b_ = std::make_unique<tb::broker>(std::move(cfg), log, &ctx);
    thread_ = std::thread([this] {
        try {
            b_->run();
        } catch (const std::exception& e) {
            ADD_FAILURE() << "broker loop failed: " << e.what();
        }
    });
}

running_broker::~running_broker() {
    b_->stop();
    thread_.join();
}

peer::peer(zmq::context_t& ctx, const std::string& endpoint, const std::string& identity)
    : s_(ctx, zmq::socket_type::dealer) {
    if (!identity.empty()) {
        s_.set(zmq::sockopt::routing_id, identity);
    }
    s_.set(zmq::sockopt::linger, 0);
    s_.connect(endpoint);
}

void peer::send(std::string_view command, const std::string& body) { tp::send(s_, "", command, body); }

std::optional<received> peer::recv(std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        if (auto in = tp::try_recv(s_, false)) {
            if (!in->msg) {
                return received{"<malformed>", in->msg.error().message};
            }
            return received{in->msg->command, in->msg->body};
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return std::nullopt;
        }
        std::vector<zmq::pollitem_t> items = {{s_.handle(), 0, ZMQ_POLLIN, 0}};
        zmq::poll(items, left);
    }
}

tp::reply client::call(std::string_view command, tp::request rq, std::chrono::milliseconds timeout) {
    rq.req = next_req_++;
    send(command, tp::encode(rq));
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        auto m =
            recv(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()));
        if (!m) {
            break;
        }
        auto rep = tp::decode_reply(m->body);
        if (rep && m->command != tp::cmd::done && rep->req == rq.req) {
            return rep.value();
        }
    }
    ADD_FAILURE() << "no reply to " << command;
    tp::reply none;
    none.ok = false;
    none.error = "timeout";
    return none;
}

std::vector<std::string> client::submit(std::vector<tp::task_spec> tasks) {
    tp::request rq;
    rq.tasks = std::move(tasks);
    auto rep = call(tp::cmd::submit, rq);
    EXPECT_TRUE(rep.ok) << rep.error;
    return rep.ids;
}

tp::task_info client::status(const std::string& id, int64_t wait_ms) {
    tp::request rq;
    rq.id = id;
    rq.wait_ms = wait_ms;
    auto rep = call(tp::cmd::status, rq, std::chrono::milliseconds(wait_ms + 5000));
    EXPECT_TRUE(rep.ok) << rep.error;
    return rep.task.value_or(tp::task_info{});
}

bool client::wait_state(const std::string& id, const std::string& state, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
        // Long-poll for a final state; otherwise re-check every 20 ms.
        if (status(id, 20).state == state) {
            return true;
        }
    }
    return false;
}

fake_worker::fake_worker(zmq::context_t& ctx, const std::string& endpoint, const std::string& wid)
    : peer(ctx, endpoint, wid), id(wid) {}

void fake_worker::hello(std::vector<tp::handler_info> handlers, uint32_t slots, std::vector<std::string> queues) {
    tp::hello h;
    h.worker = id;
    h.host = "test";
    h.pid = 1;
    h.slots = slots;
    h.queues = std::move(queues);
    h.handlers = std::move(handlers);
    h.supervisor = supervisor;
    h.prefetch = prefetch;
    send(tp::cmd::hello, tp::encode(h));
    ASSERT_TRUE(expect(tp::cmd::welcome).has_value()) << "no WELCOME for " << id;
}

std::optional<received> fake_worker::expect(std::string_view command, std::chrono::milliseconds timeout) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (true) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            return std::nullopt;
        }
        auto m = recv(left);
        if (!m) {
            return std::nullopt;
        }
        if (m->command == command) {
            return m;
        }
        if (m->command == tp::cmd::heartbeat) {
            tp::control hb;
            hb.ids = holding;
            send(tp::cmd::heartbeat, tp::encode(hb));
            continue;
        }
        skipped.push_back(*m);
    }
}

std::vector<tp::work_item> fake_worker::next_dispatch(std::chrono::milliseconds timeout) {
    auto m = expect(tp::cmd::dispatch, timeout);
    if (!m) {
        return {};
    }
    auto d = tp::decode_dispatch(m->body);
    EXPECT_TRUE(d.has_value());
    return d ? d->tasks : std::vector<tp::work_item>{};
}

void fake_worker::result(const tp::work_item& w, const std::string& status, const std::string& result_bytes,
                         const std::string& error) {
    tp::results rs;
    tp::outcome o;
    o.id = w.id;
    o.attempt = w.attempt;
    o.status = status;
    o.result = result_bytes;
    o.error = error;
    o.version = "1.0.0";
    rs.items.push_back(o);
    send(tp::cmd::results, tp::encode(rs));
}

tp::task_spec task(const std::string& handler_name, int priority) {
    tp::task_spec t;
    t.handler = handler_name;
    t.payload =
        "\xa3"
        "abc";
    t.priority = priority;
    return t;
}

tp::handler_info handler(const std::string& name, const std::string& version) {
    return tp::handler_info{name, version, "test"};
}

}  // namespace tmtest
