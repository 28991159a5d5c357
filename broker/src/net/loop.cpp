// The broker object: sockets, the self-pipe for stop(), and the poll loop
// that runs engine turns (drain -> apply in one transaction -> commit ->
// send).
#include <taskmill/broker/broker.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>

#include <spdlog/sinks/null_sink.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>
#include <zmq.hpp>

#include <taskmill/protocol/frame.hpp>

#include "engine/engine.hpp"
#include "http/event_hub.hpp"
#include "http/http_server.hpp"
#include "net/fd_guard.hpp"
#include "net/membership.hpp"
#include "net/security.hpp"

namespace taskmill::broker {
namespace {

// "tcp://0.0.0.0:5555" / "tcp://*:5555" -> "tcp://127.0.0.1:5555": an
// address a local client can connect to.
std::string connectable(std::string ep) {
    for (std::string_view any : {"://0.0.0.0:", "://*:"}) {
        if (auto pos = ep.find(any); pos != std::string::npos) {
            ep.replace(pos, any.size(), "://127.0.0.1:");
        }
    }
    return ep;
}

void write_endpoints(const std::string& dir, const bound_endpoints& eps) {
    nlohmann::json j = {{"frontend", eps.frontend},
                        {"backend", eps.backend},
                        {"events", eps.events},
                        {"pid", static_cast<int64_t>(::getpid())}};
    if (!eps.http.empty()) {
        j["http"] = eps.http;
    }
    std::filesystem::create_directories(dir);
    auto final_path = std::filesystem::path(dir) / "endpoints.json";
    auto tmp = final_path;
    tmp += ".tmp";
    {
        std::ofstream out(tmp, std::ios::trunc);
        out << j.dump(2) << "\n";
        if (!out) {
            throw std::runtime_error("cannot write " + tmp.string());
        }
    }
    std::filesystem::rename(tmp, final_path);  // readers never see a partial file
}

std::shared_ptr<spdlog::logger> or_null(std::shared_ptr<spdlog::logger> log) {
    if (log) {
        return log;
    }
    return std::make_shared<spdlog::logger>("broker", std::make_shared<spdlog::sinks::null_sink_mt>());
}

}  // namespace

struct broker::impl {
    broker_config cfg;
    std::shared_ptr<spdlog::logger> log;
    std::unique_ptr<zmq::context_t> own_ctx;
    zmq::context_t* ctx;
    std::unique_ptr<store> st;
    std::unique_ptr<membership> member;  // in a cluster; declared before the engine that uses its store
    std::unique_ptr<engine> eng;         // in a cluster: only while this member leads
    std::set<std::string> subscriptions;
    zmq::socket_t frontend;
    zmq::socket_t backend;
    zmq::socket_t events;
    fd_guard guard;                          // owns monitor sockets: declared after the context
    std::unique_ptr<zap_authenticator> zap;  // CURVE on; destroyed before the sockets
    bound_endpoints eps;
    int pipe_r = -1;
    int pipe_w = -1;
    std::shared_ptr<metrics_hub> hub = std::make_shared<metrics_hub>();
    int64_t next_cluster_figures_ms = 0;     // a member's figures go to the hub 5 times a second
    std::shared_ptr<event_hub> http_events;  // the HTTP event streams' feed; set with HTTP
    std::unique_ptr<http_server> http;       // declared last: stopped first

    impl(broker_config c, std::unique_ptr<store> s, std::shared_ptr<spdlog::logger> l, zmq::context_t* x)
        : cfg(std::move(c)),
          log(or_null(std::move(l))),
          own_ctx(x == nullptr ? std::make_unique<zmq::context_t>(1) : nullptr),
          ctx(x == nullptr ? own_ctx.get() : x),
          st(std::move(s)),
          eng(clustered() ? nullptr : std::make_unique<engine>(cfg, *st, *log)),
          frontend(*ctx, zmq::socket_type::router),
          backend(*ctx, zmq::socket_type::router),
          guard(*ctx, *log) {
        int fds[2];
        if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) {
            throw std::runtime_error("pipe2 failed");
        }
        pipe_r = fds[0];
        pipe_w = fds[1];
        if (eng) {
            recover();
        }
        bind_all();
        if (clustered()) {
            join_cluster();
        }
    }

    bool clustered() const { return cfg.cluster.node_id != 0; }

    void join_cluster() {
        member = std::make_unique<membership>(
            cfg, *st, *log, [this](outbox& out) { send_out(out); },
            [this](outbox& out, const std::string& why) {
                send_messages(refuse_replies(out.messages, {}, why + "; ask the new leader"));
            });
        member->set_endpoints(eps);
    }

    store& engine_store() { return member ? member->engine_store() : *st; }

    ~impl() {
        ::close(pipe_r);
        ::close(pipe_w);
    }

    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    void bind_all() {
        for (auto* s : {&frontend, &backend}) {
            s->set(zmq::sockopt::linger, 500);
            s->set(zmq::sockopt::router_handover, 1);
        }
        backend.set(zmq::sockopt::sndhwm, 0);  // credit bounds what we queue to workers
        // A client that never reads its replies can make the broker hold
        // at most client_hwm of them; past it the ROUTER drops replies to
        // that client (never blocking the loop). A client that reads keeps
        // far fewer in flight: one reply per request, one DONE per turn.
        frontend.set(zmq::sockopt::sndhwm, cfg.client_hwm);
        // ZMTP heartbeats: a client whose connection died without a FIN is
        // dropped, with whatever was queued for it, within a minute.
        frontend.set(zmq::sockopt::heartbeat_ivl, 20000);
        frontend.set(zmq::sockopt::heartbeat_timeout, 60000);
        // An unroutable worker must be noticed, not silently dropped.
        backend.set(zmq::sockopt::router_mandatory, 1);
        // Always a limit: without one a peer makes ZeroMQ allocate whatever
        // frame size it declares, before sending a byte of it.
        auto max_frame = static_cast<int64_t>(std::min<std::size_t>(frame_limit(cfg), INT64_MAX));
        frontend.set(zmq::sockopt::maxmsgsize, max_frame);
        backend.set(zmq::sockopt::maxmsgsize, max_frame);
        if (!cfg.curve_secret_key.empty()) {
            zap = std::make_unique<zap_authenticator>(*ctx, cfg, *log);
            zap->secure(frontend, "frontend");
            zap->secure(backend, "backend");
            zap->start();
        }
        eps.frontend = connectable(guard.bind(frontend, cfg.frontend, "frontend"));
        eps.backend = connectable(guard.bind(backend, cfg.backend, "backend"));
        if (!cfg.events.empty()) {
            // XPUB: the loop sees (un)subscriptions and builds only the
            // events somebody subscribes to.
            events = zmq::socket_t(*ctx, zmq::socket_type::xpub);
            events.set(zmq::sockopt::linger, 0);
            eps.events = connectable(guard.bind(events, cfg.events, "events"));
        }
        if (!cfg.http.empty()) {
            start_http();
        }
        if (cfg.write_endpoints_file) {
            write_endpoints(cfg.data_dir, eps);
        }
    }

    // HTTP threads reach the loop through an extra inproc endpoint on the
    // frontend ROUTER, so their requests are ordinary client requests.
    void start_http() {
        http_options o;
        o.listen = cfg.http;
        o.tokens = cfg.http_tokens;
        o.anonymous = cfg.http_anonymous;
        o.max_body_bytes = cfg.max_body_bytes;
        http_events = std::make_shared<event_hub>();
        o.events = http_events;
        o.loop_endpoint = "inproc://taskmill-http-" + std::to_string(reinterpret_cast<uintptr_t>(this));
        frontend.bind(o.loop_endpoint);
        if (eng) {
            eng->publish_metrics(*hub);
        }
        http = std::make_unique<http_server>(std::move(o), *ctx, hub, log);
        eps.http = http->url();
    }

    void run() {
        log->info("broker ready frontend={} backend={} events={}", eps.frontend, eps.backend, eps.events);
        bool stopping = false;
        while (!stopping) {
            stopping = wait();
            if (member) {
                follow_membership();
            }
            turn();
        }
        log->info("broker stopped");
    }

    // Sleeps until a socket is readable, the next timer is due, or stop().
    // Returns true if stop() was called.
    bool wait() {
        // A leader with its entries in flight full reads no more messages
        // and runs no turn until one commits: the Raft member's descriptor
        // wakes the loop, and a timer already due must not make it spin.
        const bool reading = !member || !member->leading() || member->can_take_turn();
        auto deadline = eng && reading ? eng->next_deadline() : std::nullopt;
        if (auto due = guard.next_due_ms(); due >= 0) {
            deadline = deadline ? std::min(*deadline, due) : due;
        }
        long timeout = -1;
        if (deadline) {
            timeout = static_cast<long>(std::max<int64_t>(0, *deadline - now_ms()));
        }
        std::vector<zmq::pollitem_t> items = {
            {frontend.handle(), 0, static_cast<short>(reading ? ZMQ_POLLIN : 0), 0},
            {backend.handle(), 0, static_cast<short>(reading ? ZMQ_POLLIN : 0), 0},
            {nullptr, pipe_r, ZMQ_POLLIN, 0},
        };
        if (member) {
            items.push_back({nullptr, member->poll_fd(), ZMQ_POLLIN, 0});
            const long raft_due = member->timeout_ms();
            if (raft_due >= 0 && (timeout < 0 || raft_due < timeout)) {
                timeout = raft_due;
            }
        }
        if (events) {
            items.push_back({events.handle(), 0, ZMQ_POLLIN, 0});
        }
        guard.poll_items(items);
        try {
            zmq::poll(items, std::chrono::milliseconds(timeout));
        } catch (const zmq::error_t& e) {
            if (e.num() != EINTR) {
                throw;
            }
            // A signal: its handler has written to the pipe; look again.
            return false;
        }
        if ((items[2].revents & ZMQ_POLLIN) != 0) {
            char buf[64];
            while (::read(pipe_r, buf, sizeof buf) > 0) {
            }
            return true;
        }
        return false;
    }

    // XPUB hands up one message per new topic prefix (first byte 1) and per
    // prefix nobody subscribes to any more (first byte 0).
    void read_subscriptions() {
        zmq::message_t m;
        while (events.recv(m, zmq::recv_flags::dontwait)) {
            if (m.size() >= 1 && (m.data<uint8_t>()[0] == 0 || m.data<uint8_t>()[0] == 1)) {
                const bool on = m.data<uint8_t>()[0] == 1;
                std::string prefix(m.data<char>() + 1, m.size() - 1);
                if (eng) {
                    eng->subscription(on, prefix);
                }
                if (on) {
                    subscriptions.insert(std::move(prefix));
                } else {
                    subscriptions.erase(prefix);
                }
            }
        }
    }

    // A failed store read or write drops the turn: its transaction is
    // aborted, so the store holds the state of the last commit; the engine,
    // whose memory ran ahead, is rebuilt from it as at a restart (running
    // tasks requeued, workers say HELLO again). Nothing of the turn was
    // acknowledged, so nothing acknowledged is lost; early DISPATCHes of the
    // turn are undone by the requeue (at-least-once). New work is then
    // refused for a while, so finishing work gets the room that is left.
    void turn() {
        // Every turn, whatever follows: an unread monitor event keeps the
        // poll returning at once, and a follower or a leader waiting for
        // its commits would spin on it.
        guard.check(now_ms());
        if (!eng) {
            answer_not_leader();
            return;
        }
        if (member && !member->can_take_turn()) {
            return;
        }
        try {
            run_turn();
        } catch (const store_failure& e) {
            if (e.code == errc::corrupt) {
                throw damaged(e);
            }
            log->error(
                "{}: turn dropped and state reloaded from the store; new work refused for {} s. "
                "If the store is full, restart with a larger --map-size-mb or free disk space in {}",
                e.what(), store_hold_ms / 1000, cfg.data_dir);
            auto refusals = refuse_replies(eng->out().messages, eng->parked(), e.what());
            rebuild_engine(e.what());
            send_messages(refusals);
        }
    }

    // The replies a dropped turn had queued, each turned into an
    // `unavailable` error: the client learns that nothing was done. Parked
    // STATUS requests get one too: the rebuilt engine does not know them.
    static std::vector<out_message> refuse_replies(const std::vector<out_message>& queued,
                                                   const std::vector<std::pair<std::string, uint64_t>>& parked,
                                                   const std::string& why) {
        std::vector<out_message> out;
        for (const auto& [peer, req] : parked) {
            protocol::reply r;
            r.req = req;
            r.ok = false;
            r.error_code = std::string(to_string(errc::unavailable));
            r.error = "the broker reloaded its state after a failed store write (" + why + "); ask again";
            out.push_back({target::frontend, peer, std::string(protocol::cmd::status), protocol::encode(r)});
        }
        for (const auto& m : queued) {
            if (m.to != target::frontend || m.command == protocol::cmd::done) {
                continue;  // workers say HELLO again; a DONE was news, not an answer
            }
            auto rep = protocol::decode_reply(m.body);
            if (!rep) {
                continue;
            }
            protocol::reply r;
            r.req = rep->req;
            r.ok = false;
            r.error_code = std::string(to_string(errc::unavailable));
            r.error = "not done: " + why + "; try again later";
            out.push_back({m.to, m.peer, m.command, protocol::encode(r)});
        }
        return out;
    }

    // A read that finds a bad page: nothing the loop can mend.
    static store_damaged damaged(const store_failure& e) {
        return store_damaged(std::string(e.what()) + "; stop the broker and run taskmill-broker --check-store");
    }

    void recover() {
        try {
            eng->recover(now_ms());
        } catch (const store_failure& e) {
            throw damaged(e);  // recovery tolerates what it cannot write, not what it cannot read
        }
    }

    void rebuild_engine(const std::string& why) {
        make_engine();
        eng->hold_new_work(now_ms() + store_hold_ms, why);
    }

    // A new engine recovering from the store, as at a start.
    void make_engine() {
        eng.reset();  // aborts a failed turn's transaction
        eng = std::make_unique<engine>(cfg, engine_store(), *log);
        recover();
        for (const auto& prefix : subscriptions) {
            eng->subscription(true, prefix);
        }
        if (http) {
            eng->publish_metrics(*hub);
        }
    }

    // A cluster member: runs the Raft member's ready work, then makes the
    // engine when this member comes to lead, drops it when it stops.
    void follow_membership() {
        member->run_ready();
        switch (member->take_change()) {
            case membership::change::lead:
                make_engine();
                // Hosts of the old leader notice its silence after about a
                // heartbeat and come back with what they hold: wait for them.
                eng->hold_dispatch(now_ms() + 2 * cfg.heartbeat_ms);
                break;
            case membership::change::follow:
                if (eng) {
                    send_messages(refuse_replies({}, eng->parked(), "this member no longer leads; ask the new leader"));
                    eng.reset();
                    // What it showed while it led is not this member's to show now.
                    hub->publish(std::make_shared<const metrics_snapshot>());
                }
                break;
            case membership::change::none: break;
        }
        if (http && now_ms() >= next_cluster_figures_ms) {
            hub->publish(std::make_shared<const cluster_figures>(member->figures()));
            next_cluster_figures_ms = now_ms() + 200;
        }
    }

    // A member that does not lead answers every request NOT_LEADER, naming
    // the leader when it knows it; hosts' messages get an ERROR of that
    // code naming the leader's backend (a host that has several brokers
    // moves there; docs/CLUSTER.md).
    // What a member that does not lead says: built at the first message of
    // a turn only, since most of a follower's turns read none (its Raft
    // traffic wakes the loop) and naming the leader reads the store.
    struct refusal {
        std::string why;
        std::string frontend;      // the leader's, for clients
        std::string http;          // the leader's HTTP API, for the HTTP bridge's requests
        std::string backend_body;  // ERROR not_leader naming the leader's backend, for hosts
    };
    refusal make_refusal() const {
        refusal r{member->leader_text(), member->leader_frontend(), member->leader_http(), {}};
        protocol::control c;
        c.ok = false;
        c.error_code = std::string(to_string(errc::not_leader));
        c.error = r.why;
        c.leader = member->leader_backend();
        r.backend_body = protocol::encode(c);
        return r;
    }

    void answer_not_leader() {
        if (events) {
            read_subscriptions();
        }
        std::optional<refusal> said;
        auto say = [&]() -> const refusal& {
            if (!said) {
                said = make_refusal();
            }
            return *said;
        };
        for (std::size_t i = 0; i < cfg.batch; ++i) {
            auto in = protocol::try_recv(frontend, true, cfg.max_body_bytes);
            if (!in) {
                break;
            }
            protocol::reply r;
            std::string command = in->command;
            r.req = in->req;
            if (in->msg) {
                command = in->msg->command;
                auto rq = protocol::decode_request(in->msg->body);
                r.req = rq ? rq->req : 0;
            }
            if (command.empty()) {
                continue;  // not a request at all: nothing to answer
            }
            if (command == protocol::cmd::cluster && in->msg) {
                answer_cluster(in->peer, command, in->msg->body);
                continue;
            }
            r.ok = false;
            r.error_code = std::string(to_string(errc::not_leader));
            r.error = say().why;
            r.leader = say().frontend;
            r.leader_http = say().http;
            (void)protocol::send(frontend, in->peer, command, protocol::encode(r));
        }
        for (std::size_t i = 0; i < cfg.batch; ++i) {
            auto in = protocol::try_recv(backend, true, cfg.max_body_bytes);
            if (!in) {
                break;
            }
            if (!in->peer.empty()) {  // a peer gone meanwhile: nothing to tell
                (void)protocol::send(backend, in->peer, protocol::cmd::error, say().backend_body);
            }
        }
    }

    void run_turn() {
        const auto turn_start = std::chrono::steady_clock::now();
        if (events) {
            // Every turn, not only when poll saw them: a subscription that
            // arrived while the loop was busy counts from this turn on.
            read_subscriptions();
        }
        if (http_events) {
            // Events are built for the HTTP streams only while one is open.
            eng->local_events(http_events->has_readers());
        }
        eng->begin_turn(now_ms());
        for (std::size_t i = 0; i < cfg.batch; ++i) {
            auto in = protocol::try_recv(frontend, true, cfg.max_body_bytes);
            if (!in) {
                break;
            }
            if (in->msg && is_cluster_command(in->msg->command)) {
                answer_cluster(in->peer, in->msg->command, in->msg->body);
                continue;
            }
            eng->on_frontend(*in);
        }
        for (std::size_t i = 0; i < cfg.batch; ++i) {
            auto in = protocol::try_recv(backend, true, cfg.max_body_bytes);
            if (!in) {
                break;
            }
            eng->on_backend(*in);
        }
        eng->on_timers();
        eng->dispatch();
        auto early = eng->take_early();
        send_messages(early);
        eng->end_turn();  // durability point: nothing below is sent before this
        eng->turn_took(std::chrono::duration<double>(std::chrono::steady_clock::now() - turn_start).count());
        if (http) {
            eng->publish_metrics(*hub);  // before the replies: a client that saw one sees its effect
        }
        if (member) {
            member->after_turn(eng->out());  // sent once the turn's entry has committed
        } else {
            send_out(eng->out());
        }
    }

    static bool is_cluster_command(std::string_view c) {
        return c == protocol::cmd::cluster || c == protocol::cmd::cluster_add || c == protocol::cmd::cluster_remove ||
               c == protocol::cmd::cluster_transfer;
    }

    // CLUSTER: what this broker knows of its cluster, answered by the loop
    // on every member (a single broker says it has node-id 0). The changes
    // (CLUSTER_ADD, ...) reach it on the leader only (others answer
    // not_leader); the membership makes them between turns and the reply,
    // the leader's view once the change is done, waits for it.
    void answer_cluster(const std::string& peer, const std::string& command, const std::string& body) {
        auto rq = protocol::decode_request(body);
        protocol::reply r;
        r.req = rq ? rq->req : 0;
        if (command == protocol::cmd::cluster || !rq || !member) {
            if (!rq && command != protocol::cmd::cluster) {
                r.ok = false;
                r.error_code = std::string(to_string(rq.error().code));
                r.error = rq.error().message;
            } else if (member && command == protocol::cmd::cluster) {
                r.data = member->describe();
            } else if (!member) {
                if (command == protocol::cmd::cluster) {
                    auto bytes = nlohmann::json::to_msgpack(nlohmann::json{{"node_id", 0}, {"role", "single"}});
                    r.data.assign(bytes.begin(), bytes.end());
                } else {
                    r.ok = false;
                    r.error_code = std::string(to_string(errc::invalid_argument));
                    r.error = "this broker is in no cluster (node-id 0): it has no members to change";
                }
            }
            (void)protocol::send(frontend, peer, command, protocol::encode(r));
            return;
        }
        auto kind = membership::change_kind::add;
        if (command == protocol::cmd::cluster_remove) {
            kind = membership::change_kind::remove;
        } else if (command == protocol::cmd::cluster_transfer) {
            kind = membership::change_kind::transfer;
        }
        member->request_change(kind, rq->member, rq->address, [this, peer, command, req = r.req](result<void> done) {
            protocol::reply rep;
            rep.req = req;
            if (done) {
                rep.data = member->describe();
            } else {
                rep.ok = false;
                rep.error_code = std::string(to_string(done.error().code));
                rep.error = done.error().message;
                if (done.error().code == errc::not_leader) {
                    rep.leader = member->leader_frontend();
                }
            }
            (void)protocol::send(frontend, peer, command, protocol::encode(rep));
        });
    }

    void send_messages(const std::vector<out_message>& messages) {
        for (const auto& m : messages) {
            if (m.to == target::frontend) {
                (void)protocol::send(frontend, m.peer, m.command, m.body);
            } else if (!protocol::send(backend, m.peer, m.command, m.body)) {
                log->warn("worker={} unroutable command={}", protocol::printable(m.peer), m.command);
                if (eng) {
                    eng->worker_unreachable(m.peer);
                }
            }
        }
    }

    void send_out(outbox& out) {
        send_messages(out.messages);
        if (events) {
            for (const auto& [topic, body] : out.events) {
                try {
                    (void)events.send(zmq::buffer(topic), zmq::send_flags::sndmore | zmq::send_flags::dontwait);
                    (void)events.send(zmq::buffer(body), zmq::send_flags::dontwait);
                } catch (const zmq::error_t&) {
                    // A PUB socket drops on overflow; so do we.
                }
            }
        }
        if (http_events && http_events->has_readers() && !out.events.empty()) {
            http_events->push(out.events);
        }
        out.clear();
    }
};

namespace {
std::unique_ptr<store> open_default(const broker_config& cfg) {
    lmdb_options o;
    o.dir = cfg.data_dir;
    o.map_size_bytes = cfg.map_size_mb << 20;
    // A cluster member writes its log first (the Raft log, fsynced): the
    // store need not sync what the log replays after a crash.
    o.mode = cfg.cluster.node_id != 0 ? durability::none : cfg.mode;
    o.allow_empty = cfg.allow_empty_store;
    return open_lmdb_store(o);
}
}  // namespace

std::size_t frame_limit(const broker_config& cfg) noexcept {
    return cfg.max_frame_bytes > 0 ? cfg.max_frame_bytes : protocol::frame_limit(cfg.max_body_bytes);
}

broker::broker(broker_config cfg, std::shared_ptr<spdlog::logger> log, zmq::context_t* ctx) {
    std::filesystem::create_directories(cfg.data_dir);
    auto st = open_default(cfg);
    impl_ = std::make_unique<impl>(std::move(cfg), std::move(st), std::move(log), ctx);
}

broker::broker(broker_config cfg, std::unique_ptr<store> st, std::shared_ptr<spdlog::logger> log, zmq::context_t* ctx)
    : impl_(std::make_unique<impl>(std::move(cfg), std::move(st), std::move(log), ctx)) {}

broker::~broker() = default;

void broker::run() { impl_->run(); }

void broker::stop() noexcept {
    char c = 1;
    // Async-signal-safe; a full pipe already holds a wake-up.
    [[maybe_unused]] auto n = ::write(impl_->pipe_w, &c, 1);
}

const bound_endpoints& broker::endpoints() const { return impl_->eps; }

}  // namespace taskmill::broker
