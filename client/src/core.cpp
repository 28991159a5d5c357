// The I/O thread: one poll loop over the DEALER (replies, DONE pushes) and
// the wakeup PAIR (new requests), with request deadlines as the poll timeout.
#include "core.hpp"

#include <algorithm>
#include <cstdio>
#include <future>
#include <random>
#include <stdexcept>

#include <taskmill/protocol/frame.hpp>

#include "convert.hpp"
#include "done_decoder.hpp"

namespace taskmill::client::detail {

failure timed_out(const std::string& command, milliseconds timeout) {
    return fail(errc::unavailable,
                "no answer from the broker to " + command + " within " + std::to_string(timeout.count()) + " ms");
}

// ---- handle_state ----

void complete(const std::shared_ptr<handle_state>& s, task_info t, std::vector<callback_job>* out) {
    if (!t.is_final()) {
        return;
    }
    std::vector<std::pair<task_handle::callback, task_handle::callback>> to_fire;
    {
        std::lock_guard lock(s->mu);
        if (s->final) {
            return;  // the first final state seen wins; DONE and STATUS may both report it
        }
        s->final = std::move(t);
        to_fire.swap(s->callbacks);
    }
    s->cv.notify_all();
    if (to_fire.empty()) {
        return;
    }
    // `final` is never written again: jobs may read it without the lock.
    const task_info* info = &*s->final;
    const bool ok = info->succeeded();
    std::vector<callback_job> local;
    auto& jobs = out != nullptr ? *out : local;
    for (auto& [on_ok, on_ko] : to_fire) {
        auto& fn = ok ? on_ok : on_ko;
        if (fn) {
            jobs.push_back(callback_job{std::move(fn), s, info});
        }
    }
    if (out == nullptr && !local.empty()) {
        if (auto c = s->owner.lock()) {
            c->post_callbacks(local);
        } else {
            for (auto& j : local) {
                j.run();
            }
        }
    }
}

void fire(const std::shared_ptr<handle_state>& s, task_handle::callback ok, task_handle::callback ko) {
    const task_info* info = &*s->final;  // the caller saw it set
    auto& fn = info->succeeded() ? ok : ko;
    if (!fn) {
        return;
    }
    std::vector<callback_job> jobs;
    jobs.push_back(callback_job{std::move(fn), s, info});
    if (auto c = s->owner.lock()) {
        c->post_callbacks(jobs);
    } else {
        jobs.front().run();
    }
}

namespace {

// The deleter of the handles' shared reference: runs when the caller's last
// copy of a watched handle is gone.
struct handle_release {
    std::shared_ptr<handle_state> inner;

    void operator()(handle_state*) noexcept {
        auto& s = *inner;
        bool drop = s.watched.load(std::memory_order_acquire);
        if (drop) {
            std::lock_guard lock(s.mu);
            drop = s.callbacks.empty();  // a then() still waits: its DONE will remove the state
        }
        if (drop) {
            if (auto c = s.owner.lock()) {
                c->forget(std::move(inner));
                return;
            }
        }
        inner.reset();
    }
};

}  // namespace

task_handle make_watched_handle(std::shared_ptr<handle_state> s) {
    auto* raw = s.get();
    return handle_access::make(std::shared_ptr<handle_state>(raw, handle_release{std::move(s)}));
}

// ---- core: setup and the caller side ----

namespace {

// Random, 16 bytes, the first never 0 (ZeroMQ keeps those for itself).
std::string random_routing_id() {
    std::random_device rd;
    std::mt19937_64 gen((static_cast<uint64_t>(rd()) << 32) ^ rd());
    std::string id(16, '\0');
    for (auto& c : id) {
        c = static_cast<char>(gen() & 0xff);
    }
    id[0] = static_cast<char>(1 + (static_cast<unsigned char>(id[0]) % 255));
    return id;
}

std::vector<std::string> endpoint_list(const std::string& endpoints) {
    try {
        return protocol::split_endpoints(endpoints);
    } catch (const std::invalid_argument& e) {
        throw std::runtime_error(std::string("bad broker endpoints '") + endpoints + "': " + e.what());
    }
}

// A member that says it does not lead, or a leader that cannot take the
// request now: another member may (with several endpoints, only).
bool redirects(const protocol::reply& r, bool several) {
    if (r.ok) {
        return false;
    }
    const auto code = errc_from_string(r.error_code);
    return code == errc::not_leader || (several && code == errc::unavailable);
}

// Moves follow one another at most this often: members still electing
// answer not_leader without naming a leader, and the walk round the list
// must not spin.
constexpr milliseconds move_gap{50};

}  // namespace

core::core(const std::string& endpoints, const client_options& options)
    : options_(options),
      resends_(endpoint_list(endpoints).size() > 1),
      wake_rx_(ctx_, zmq::socket_type::pair),
      wake_tx_(ctx_, zmq::socket_type::pair),
      ring_(endpoint_list(endpoints)),
      routing_id_(random_routing_id()) {
    char name[64];
    std::snprintf(name, sizeof name, "inproc://taskmill-client-wake-%p", static_cast<void*>(this));
    // Every endpoint of the list, so that a malformed one is refused here
    // and not met later on the I/O thread; the first is kept.
    for (std::size_t i = 1; i < ring_.size(); ++i) {
        connect(ring_.next());
    }
    connect(ring_.next());
    wake_rx_.bind(name);
    wake_tx_.connect(name);
    io_ = std::thread([this] { run(); });
}

// A fresh DEALER to `endpoint`: closing the old one drops whatever the old
// endpoint would still send, so no late reply can complete a resent request.
void core::connect(const std::string& endpoint) {
    zmq::socket_t s(ctx_, zmq::socket_type::dealer);
    try {
        s.set(zmq::sockopt::linger, 0);
        s.set(zmq::sockopt::routing_id, zmq::buffer(routing_id_));
        if (!options_.curve_server_key.empty()) {
            s.set(zmq::sockopt::curve_serverkey, options_.curve_server_key);
            s.set(zmq::sockopt::curve_publickey, options_.curve_public_key);
            s.set(zmq::sockopt::curve_secretkey, options_.curve_secret_key);
        }
        s.connect(endpoint);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot connect to broker endpoint '" + endpoint + "': " + e.what());
    }
    dealer_ = std::move(s);
}

core::~core() { stop(); }

void core::stop() {
    {
        std::lock_guard lock(mu_);
        if (!stopping_) {
            stopping_ = true;
            (void)wake_tx_.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
        }
    }
    if (io_.joinable()) {
        io_.join();
    }
    callbacks_.stop();
}

void core::send(std::string command, protocol::request r, milliseconds timeout, completion done) {
    {
        std::lock_guard lock(mu_);
        if (!stopping_) {
            inbox_.push_back(outgoing{std::move(command), std::move(r), timeout, std::move(done)});
            // One byte per request is fine: the PAIR's queue is drained in one go.
            (void)wake_tx_.send(zmq::str_buffer("x"), zmq::send_flags::dontwait);
            return;
        }
    }
    done(fail(errc::unavailable, "the client is closed"));
}

result<protocol::reply> core::call(std::string command, protocol::request r, std::optional<milliseconds> timeout) {
    auto promise = std::make_shared<std::promise<result<protocol::reply>>>();
    auto future = promise->get_future();
    send(std::move(command), std::move(r), timeout.value_or(options_.request_timeout),
         [promise](result<protocol::reply> rep) { promise->set_value(std::move(rep)); });
    // The I/O thread completes every request by its deadline, so this returns.
    return future.get();
}

void core::watch(std::shared_ptr<handle_state> s, std::size_t expected) {
    // Grow once for a whole batch, and geometrically: reserve() to the exact
    // size would rehash the whole table on every batch while it grows, and
    // below the current capacity libstdc++ would even shrink it.
    if (const auto want = watched_.size() + expected;
        static_cast<double>(want) > static_cast<double>(watched_.bucket_count()) * watched_.max_load_factor()) {
        watched_.reserve(std::max(want, 2 * watched_.size()));
    }
    s->watched.store(true, std::memory_order_release);
    auto [it, inserted] = watched_.try_emplace(std::string_view(s->id), s);
    if (!inserted) {
        // The same id again (an idempotency key): the newer handle gets DONE.
        // The key views the old state's id, so the entry is replaced whole.
        auto old = std::move(it->second);
        watched_.erase(it);
        old->watched.store(false, std::memory_order_release);
        watched_.emplace(std::string_view(s->id), s);
    }
}

void core::forget(std::shared_ptr<handle_state> s) {
    std::lock_guard lock(forget_mu_);
    forgotten_.push_back(std::move(s));
}

void core::take_forgotten() {
    std::vector<std::shared_ptr<handle_state>> batch;
    {
        std::lock_guard lock(forget_mu_);
        if (forgotten_.empty()) {
            return;
        }
        batch.swap(forgotten_);
    }
    for (auto& s : batch) {
        if (!s->watched.load(std::memory_order_relaxed)) {
            continue;  // its DONE came in the meantime
        }
        if (auto it = watched_.find(std::string_view(s->id)); it != watched_.end() && it->second == s) {
            watched_.erase(it);
        }
        s->watched.store(false, std::memory_order_relaxed);
    }
}

void core::post_callbacks(std::vector<callback_job>& jobs) {
    if (!callbacks_.post(jobs)) {
        for (auto& j : jobs) {
            j.run();
        }
        jobs.clear();
    }
}

// ---- the I/O thread ----

void core::run() {
    for (;;) {
        zmq::pollitem_t items[] = {{dealer_.handle(), 0, ZMQ_POLLIN, 0}, {wake_rx_.handle(), 0, ZMQ_POLLIN, 0}};
        try {
            zmq::poll(items, 2, std::chrono::milliseconds(poll_timeout_ms(steady::now())));
        } catch (const zmq::error_t&) {
            // EINTR: just go round again.
        }
        if (items[1].revents & ZMQ_POLLIN) {
            zmq::message_t m;
            while (wake_rx_.recv(m, zmq::recv_flags::dontwait)) {
            }
        }
        take_inbox();
        take_forgotten();
        read_replies();
        expire(steady::now());
        check_liveness(steady::now());
        recheck_watched();
        std::lock_guard lock(mu_);
        if (stopping_) {
            break;
        }
    }
    // Nobody will answer now: fail what is left, outside the lock.
    std::map<uint64_t, pending_request> left;
    left.swap(pending_);
    for (auto& [req, p] : left) {
        p.done(fail(errc::unavailable, "the client is closed"));
    }
    std::vector<outgoing> unsent;
    {
        std::lock_guard lock(mu_);
        unsent.swap(inbox_);
    }
    for (auto& o : unsent) {
        o.done(fail(errc::unavailable, "the client is closed"));
    }
    // No DONE will come now. Handles keep their states; the table lets go.
    for (auto& [id, s] : watched_) {
        s->watched.store(false, std::memory_order_relaxed);
    }
    watched_.clear();
    std::lock_guard lock(forget_mu_);
    forgotten_.clear();
}

void core::take_inbox() {
    std::vector<outgoing> batch;
    {
        std::lock_guard lock(mu_);
        batch.swap(inbox_);
    }
    for (auto& o : batch) {
        send_now(std::move(o.command), std::move(o.req), o.timeout, std::move(o.done));
    }
}

void core::send_now(std::string command, protocol::request r, milliseconds timeout, completion done) {
    r.req = next_req_++;
    auto body = protocol::encode(r);
    // Non-blocking: a full send queue (broker long gone) fails now
    // rather than stalling every other request.
    if (!protocol::send(dealer_, {}, command, body)) {
        done(fail(errc::unavailable, "cannot queue " + command + ": the broker is not reachable"));
        return;
    }
    const auto now = steady::now();
    if (pending_.empty()) {
        quiet_since_ = now;  // silence counts from the first request waiting
    }
    pending_.emplace(r.req,
                     pending_request{now + timeout, std::move(command), std::move(body), timeout, std::move(done)});
}

void core::read_replies() {
    while (auto in = protocol::try_recv(dealer_, false)) {
        quiet_since_ = steady::now();
        if (!in->msg) {
            continue;  // malformed frame from the broker: nothing to match it to
        }
        on_reply(in->msg->command, in->msg->body);
    }
    // Every callback this read completed goes over in one hand-off.
    post_callbacks(ready_callbacks_);
}

void core::on_reply(const std::string& command, const std::string& body) {
    if (command == protocol::cmd::done) {
        // One per finished task (or per broker turn): the direct decoder, with
        // the generic one for whatever it does not know.
        if (auto d = decode_done(body)) {
            on_done(*d);
            return;
        }
    }
    auto r = protocol::decode_reply(body);
    if (!r) {
        return;  // undecodable body: its request will time out
    }
    if (command == protocol::cmd::done) {
        on_done(*r);
        return;
    }
    if (r->req == probe_req_ && probe_req_ != 0) {
        probe_req_ = 0;
    }
    if (redirects(*r, resends_)) {
        move_soon(r->leader);  // the request waits, and goes again after the move
        return;
    }
    if (recheck_due_ && r->ok) {
        recheck_due_ = false;  // the new endpoint serves: ask it about watched tasks
        recheck_.reserve(watched_.size());
        for (const auto& [id, st] : watched_) {
            recheck_.emplace_back(id);
        }
    }
    auto it = pending_.find(r->req);
    if (it == pending_.end()) {
        return;  // late reply to a request that already timed out, or the probe
    }
    auto done = std::move(it->second.done);
    pending_.erase(it);
    if (!r->ok) {
        auto code = r->error_code.empty() ? errc::internal : errc_from_string(r->error_code);
        done(fail(code, r->error.empty() ? r->error_code : r->error));
        return;
    }
    done(std::move(*r));
}

// A DONE carries one task (`task`) or, when several of this client's tasks
// ended in the same broker turn, a list (`tasks`).
void core::on_done(protocol::reply& r) {
    if (r.task) {
        on_done_task(std::move(*r.task));
    }
    for (auto& t : r.tasks) {
        on_done_task(std::move(t));
    }
}

void core::on_done_task(protocol::task_info&& t) {
    if (!is_final_state(t.state)) {
        return;
    }
    auto it = watched_.find(std::string_view(t.id));
    if (it == watched_.end()) {
        return;
    }
    auto s = std::move(it->second);
    watched_.erase(it);
    s->watched.store(false, std::memory_order_relaxed);
    complete(s, from_wire(std::move(t)), &ready_callbacks_);
}

void core::expire(steady::time_point now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline <= now) {
            auto p = std::move(it->second);
            it = pending_.erase(it);
            p.done(timed_out(p.command, p.timeout));
        } else {
            ++it;
        }
    }
}

int core::poll_timeout_ms(steady::time_point now) const {
    auto nearest = next_liveness_check().value_or(steady::time_point::max());
    for (const auto& [req, p] : pending_) {
        nearest = std::min(nearest, p.deadline);
    }
    if (nearest == steady::time_point::max()) {
        return -1;
    }
    if (nearest <= now) {
        return 0;
    }
    auto ms = std::chrono::ceil<milliseconds>(nearest - now).count();
    return static_cast<int>(std::min<int64_t>(ms, 60'000));
}

// ---- following the leader ----

std::optional<steady::time_point> core::next_liveness_check() const {
    if (move_at_) {
        return move_at_;
    }
    if (!recheck_.empty()) {
        return steady::now();
    }
    if (!ring_.can_move() || (pending_.empty() && watched_.empty())) {
        return std::nullopt;
    }
    if (probe_req_ != 0) {
        return probe_sent_ + options_.failover_after;
    }
    return quiet_since_ + options_.failover_after / 4;
}

void core::move_soon(const std::string& leader) {
    const auto now = steady::now();
    if (now - last_move_ >= move_gap) {
        move_now(leader);
        return;
    }
    move_at_ = last_move_ + move_gap;
    move_to_ = leader;
}

void core::move_now(const std::string& leader) {
    move_at_.reset();
    try {
        connect(ring_.follow(leader));
    } catch (const std::runtime_error&) {
        connect(ring_.next());  // a member named an endpoint we cannot use; the list's were checked
    }
    last_move_ = quiet_since_ = steady::now();
    probe_req_ = 0;
    for (const auto& [req, p] : pending_) {
        (void)protocol::send(dealer_, {}, p.command, p.body);  // a full queue: the next move sends it again
    }
    recheck_due_ = !watched_.empty();
    recheck_.clear();
}

// With several endpoints, requests waiting and nothing heard for a while,
// PING the endpoint; unanswered for failover_after, move on.
void core::check_liveness(steady::time_point now) {
    if (move_at_) {
        if (*move_at_ <= now) {
            move_now(move_to_);
        }
        return;
    }
    // Watched tasks count too: their DONE comes only from a live leader.
    if (!ring_.can_move() || (pending_.empty() && watched_.empty())) {
        probe_req_ = 0;
        return;
    }
    if (probe_req_ != 0) {
        if (now - probe_sent_ >= options_.failover_after) {
            move_now({});
        }
        return;
    }
    if (now - quiet_since_ >= options_.failover_after / 4) {
        protocol::request r;
        r.req = next_req_++;
        if (protocol::send(dealer_, {}, std::string(protocol::cmd::ping), protocol::encode(r))) {
            probe_req_ = r.req;
            probe_sent_ = now;
        }
    }
}

// After a move: one STATUS per watched task, a slice per turn, so that a
// DONE lost with the old leader does not leave a handle waiting for ever.
void core::recheck_watched() {
    constexpr std::size_t slice = 256;
    for (std::size_t i = 0; i < slice && !recheck_.empty(); ++i) {
        protocol::request r;
        r.id = std::move(recheck_.back());
        recheck_.pop_back();
        send_now(std::string(protocol::cmd::status), std::move(r), options_.request_timeout,
                 [this](result<protocol::reply> rep) {
                     if (rep && rep->task) {
                         on_done_task(std::move(*rep->task));
                     }
                 });
    }
}

}  // namespace taskmill::client::detail
