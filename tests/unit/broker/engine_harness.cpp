#include "engine_harness.hpp"

#include <algorithm>

#include <spdlog/sinks/null_sink.h>

namespace tmtest {

namespace {

// Enough for any test; more means a timer that keeps asking for the same
// moment, which the loop would spin on too.
constexpr int turns_per_moment = 1000;

tp::incoming incoming_of(const std::string& peer, std::string_view command, const std::string& body) {
    return tp::incoming{peer, tp::message{std::string(command), body}, "", 0, ""};
}

}  // namespace

tb::broker_config sim_config() {
    tb::broker_config cfg;
    cfg.data_dir = "unused";
    cfg.mode = tb::durability::none;
    cfg.heartbeat_ms = 100;
    cfg.liveness_ms = 2000;
    cfg.backoff_base_ms = 10;
    return cfg;
}

// ---- sim_worker ----

sim_worker::sim_worker(engine_harness& h, uint32_t slots, std::vector<tp::handler_info> handlers, worker_options o)
    : answers_heartbeats(o.answers_heartbeats), h_(h) {
    hello_.worker = o.id;
    hello_.host = "sim";
    hello_.pid = 1;
    hello_.slots = slots;
    hello_.queues = std::move(o.queues);
    hello_.handlers = std::move(handlers);
    hello_.supervisor = std::move(o.supervisor);
    hello_.prefetch = o.prefetch;
}

void sim_worker::hello() {
    h_.backend(id(), tp::cmd::hello, tp::encode(hello_));
    EXPECT_FALSE(h_.take(id(), tp::cmd::welcome).empty()) << "no WELCOME for " << id();
}

std::vector<tp::work_item> sim_worker::dispatched() {
    std::vector<tp::work_item> items;
    for (const auto& m : h_.take(id(), tp::cmd::dispatch)) {
        auto d = tp::decode_dispatch(m.body);
        EXPECT_TRUE(d.has_value());
        if (d) {
            items.insert(items.end(), d->tasks.begin(), d->tasks.end());
        }
    }
    return items;
}

std::vector<std::pair<int64_t, tp::control>> sim_worker::received(std::string_view command) {
    std::vector<std::pair<int64_t, tp::control>> out;
    for (const auto& m : h_.take(id(), command)) {
        auto c = tp::decode_control(m.body);
        EXPECT_TRUE(c.has_value()) << m.command;
        if (c) {
            out.emplace_back(m.at_ms, std::move(*c));
        }
    }
    return out;
}

void sim_worker::result(const tp::work_item& w, const std::string& status, const std::string& result,
                        const std::string& error, std::optional<int64_t> retry_after_ms) {
    tp::results rs;
    rs.items.push_back(
        tp::outcome{w.id, w.attempt, status, result, error, retry_after_ms, "1.0.0", std::nullopt, std::nullopt});
    send(rs);
}

void sim_worker::send(std::string_view command, const tp::control& c) { h_.backend(id(), command, tp::encode(c)); }

void sim_worker::send(const tp::results& rs) { h_.backend(id(), tp::cmd::results, tp::encode(rs)); }

// ---- engine_harness ----

engine_harness::engine_harness(tb::broker_config cfg)
    : engine_harness(std::move(cfg), tb::make_memory_store(), sim_epoch_ms) {}

engine_harness::engine_harness(tb::broker_config cfg, std::unique_ptr<tb::store> st, int64_t start_ms)
    : cfg_(std::move(cfg)),
      log_(std::make_shared<spdlog::logger>("engine-harness", std::make_shared<spdlog::sinks::null_sink_st>())),
      store_(std::move(st)),
      engine_(std::make_unique<tb::engine>(cfg_, *store_, *log_)),
      now_(start_ms) {
    engine_->recover(now_);
}

engine_harness::~engine_harness() = default;

void engine_harness::turn() {
    engine_->begin_turn(now_);
    auto inbox = std::move(inbox_);
    inbox_.clear();
    // As the loop reads them: the frontend's messages, then the backend's.
    for (const auto& [to, in] : inbox) {
        if (to == tb::target::frontend) {
            engine_->on_frontend(in);
        }
    }
    for (const auto& [to, in] : inbox) {
        if (to == tb::target::backend) {
            engine_->on_backend(in);
        }
    }
    engine_->on_timers();
    engine_->dispatch();
    const std::size_t first = sent_.size();
    keep(engine_->take_early());
    engine_->end_turn();
    auto& out = engine_->out();
    keep(std::move(out.messages));
    for (auto& [topic, body] : out.events) {
        events_.push_back({now_, topic, nlohmann::json::from_msgpack(body)});
    }
    out.clear();
    answer_heartbeats(first);
}

void engine_harness::keep(std::vector<tb::out_message> messages) {
    for (auto& m : messages) {
        if (m.to == tb::target::backend && gone_.count(m.peer) > 0) {
            engine_->worker_unreachable(m.peer);
            continue;
        }
        sent_.push_back({now_, m.to, std::move(m.peer), std::move(m.command), std::move(m.body)});
    }
}

// A host answers a HEARTBEAT at once; here that is a turn of its own at the
// same moment, as when the answer arrives before the loop next polls. The
// latest HEARTBEAT to each worker stays among the messages sent, for tests
// that read it; the older ones go (a long advance would pile them up).
void engine_harness::answer_heartbeats(std::size_t first) {
    std::set<std::string> asked;
    for (std::size_t i = first; i < sent_.size(); ++i) {
        if (sent_[i].to == tb::target::backend && sent_[i].command == tp::cmd::heartbeat) {
            asked.insert(sent_[i].peer);
        }
    }
    std::vector<sent> kept;
    for (std::size_t i = 0; i < sent_.size(); ++i) {
        const bool superseded = i < first && sent_[i].command == tp::cmd::heartbeat && asked.count(sent_[i].peer) > 0;
        if (!superseded) {
            kept.push_back(std::move(sent_[i]));
        }
    }
    sent_ = std::move(kept);
    for (auto& w : workers_) {
        if (!w.answers_heartbeats || asked.count(w.id()) == 0) {
            continue;
        }
        tp::control hb;
        hb.ids = w.holding;
        inbox_.emplace_back(tb::target::backend, incoming_of(w.id(), tp::cmd::heartbeat, tp::encode(hb)));
    }
    if (!inbox_.empty()) {
        turn();
    }
}

void engine_harness::advance(int64_t ms) {
    const int64_t until = now_ + ms;
    int turns_here = 0;
    while (auto due = engine_->next_deadline()) {
        if (*due > until) {
            break;
        }
        const int64_t at = std::max(*due, now_);
        turns_here = at == now_ ? turns_here + 1 : 0;
        if (turns_here > turns_per_moment) {
            ADD_FAILURE() << "the engine keeps asking for a turn at " << at - sim_epoch_ms;
            break;
        }
        now_ = at;
        turn();
    }
    now_ = until;
}

void engine_harness::frontend(const std::string& peer, std::string_view command, const std::string& body) {
    inbox_.emplace_back(tb::target::frontend, incoming_of(peer, command, body));
    turn();
}

void engine_harness::backend(const std::string& peer, std::string_view command, const std::string& body) {
    inbox_.emplace_back(tb::target::backend, incoming_of(peer, command, body));
    turn();
}

uint64_t engine_harness::request(std::string_view command, tp::request rq, const std::string& client) {
    if (rq.req == 0) {
        rq.req = next_req_++;
    }
    frontend(client, command, tp::encode(rq));
    return rq.req;
}

std::optional<tp::reply> engine_harness::reply(uint64_t req, const std::string& client) {
    for (auto it = sent_.begin(); it != sent_.end(); ++it) {
        if (it->to != tb::target::frontend || it->peer != client || it->command == tp::cmd::done) {
            continue;
        }
        auto rep = tp::decode_reply(it->body);
        if (rep && rep->req == req) {
            sent_.erase(it);
            return std::move(rep.value());
        }
    }
    return std::nullopt;
}

tp::reply engine_harness::call(std::string_view command, tp::request rq, const std::string& client) {
    auto req = request(command, std::move(rq), client);
    if (auto rep = reply(req, client)) {
        return std::move(*rep);
    }
    ADD_FAILURE() << "no reply to " << command;
    tp::reply none;
    none.ok = false;
    none.error = "no reply";
    return none;
}

std::vector<std::string> engine_harness::submit(std::vector<tp::task_spec> tasks, const std::string& client) {
    tp::request rq;
    rq.tasks = std::move(tasks);
    auto rep = call(tp::cmd::submit, rq, client);
    EXPECT_TRUE(rep.ok) << rep.error;
    return rep.ids;
}

std::string engine_harness::submit(const tp::task_spec& task, const std::string& client) {
    auto ids = submit(std::vector<tp::task_spec>{task}, client);
    return ids.empty() ? std::string() : ids.front();
}

std::string engine_harness::run_once(sim_worker& w, const tp::task_spec& task, const std::string& status,
                                     const std::string& error) {
    auto id = submit(task);
    auto d = w.dispatched();
    EXPECT_EQ(d.size(), 1u) << "the task is dispatched at once";
    if (!d.empty()) {
        w.result(d[0], status, "", error);
    }
    return id;
}

tp::task_info engine_harness::status(const std::string& id) {
    tp::request rq;
    rq.id = id;
    auto rep = call(tp::cmd::status, rq);
    EXPECT_TRUE(rep.ok) << rep.error;
    return rep.task.value_or(tp::task_info{});
}

std::vector<tp::reply> engine_harness::done(const std::string& client) {
    std::vector<tp::reply> out;
    for (const auto& m : take(client, tp::cmd::done)) {
        auto rep = tp::decode_reply(m.body);
        EXPECT_TRUE(rep.has_value());
        if (rep) {
            out.push_back(std::move(*rep));
        }
    }
    return out;
}

sim_worker& engine_harness::connect_worker(uint32_t slots, std::vector<tp::handler_info> handlers, worker_options o) {
    if (o.id.empty()) {
        o.id = "w" + std::to_string(workers_.size() + 1);
    }
    for (auto& old : workers_) {
        if (old.id() == o.id) {
            old.answers_heartbeats = false;  // the new one answers for that id
        }
    }
    auto& w = workers_.emplace_back(*this, slots, std::move(handlers), std::move(o));
    w.hello();
    return w;
}

std::vector<sent> engine_harness::take(const std::string& peer, std::string_view command) {
    std::vector<sent> out;
    std::vector<sent> rest;
    for (auto& m : sent_) {
        bool wanted = m.peer == peer && (command.empty() || m.command == command);
        (wanted ? out : rest).push_back(std::move(m));
    }
    sent_ = std::move(rest);
    return out;
}

void engine_harness::subscribe(const std::string& prefix) {
    engine_->subscription(true, prefix);
    subscriptions_.push_back(prefix);
}

std::vector<sim_event> engine_harness::events(std::string_view prefix) {
    std::vector<sim_event> out;
    std::vector<sim_event> rest;
    for (auto& e : events_) {
        (e.topic.starts_with(prefix) ? out : rest).push_back(std::move(e));
    }
    events_ = std::move(rest);
    return out;
}

void engine_harness::restart_with(tb::broker_config cfg, int64_t down_ms) {
    engine_.reset();
    cfg_ = std::move(cfg);
    restart(down_ms);
}

void engine_harness::restart(int64_t down_ms) {
    engine_.reset();
    inbox_.clear();
    now_ += down_ms;
    engine_ = std::make_unique<tb::engine>(cfg_, *store_, *log_);
    engine_->recover(now_);
    for (const auto& prefix : subscriptions_) {
        engine_->subscription(true, prefix);
    }
}

}  // namespace tmtest
