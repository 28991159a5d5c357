// The I/O thread: one poll loop over the DEALER (replies, DONE pushes) and
// the wakeup PAIR (new requests), with request deadlines as the poll timeout.
#include "core.hpp"

#include <cstdio>
#include <future>
#include <stdexcept>

#include <taskmill/protocol/frame.hpp>

#include "convert.hpp"

namespace taskmill::client::detail {

failure timed_out(const std::string& command, milliseconds timeout) {
    return fail(errc::unavailable, "no answer from the broker to " + command + " within " +
                                       std::to_string(timeout.count()) + " ms");
}

// ---- handle_state ----

void handle_state::complete(const task_info& t) {
    if (!t.is_final()) {
        return;
    }
    std::vector<std::pair<task_handle::callback, task_handle::callback>> to_fire;
    {
        std::lock_guard lock(mu);
        if (final) {
            return;  // the first final state seen wins; DONE and STATUS may both report it
        }
        final = t;
        to_fire.swap(callbacks);
    }
    cv.notify_all();
    for (auto& [ok, ko] : to_fire) {
        fire(t, std::move(ok), std::move(ko));
    }
    if (auto o = owner.lock()) {
        o->unpin(id);  // the caller holds its own reference: `this` outlives this call
    }
}

void handle_state::fire(const task_info& t, task_handle::callback ok, task_handle::callback ko) {
    auto& fn = t.succeeded() ? ok : ko;
    if (!fn) {
        return;
    }
    auto run = [fn = std::move(fn), t] { fn(t); };
    if (auto c = owner.lock()) {
        c->post_callback(std::move(run));
    } else {
        try {
            run();
        } catch (...) {
            // Same rule as the callback thread: a callback's exception stops here.
        }
    }
}

// ---- core: setup and the caller side ----

core::core(std::string endpoint, const client_options& options)
    : options_(options), dealer_(ctx_, zmq::socket_type::dealer), wake_rx_(ctx_, zmq::socket_type::pair),
      wake_tx_(ctx_, zmq::socket_type::pair) {
    char name[64];
    std::snprintf(name, sizeof name, "inproc://taskmill-client-wake-%p", static_cast<void*>(this));
    try {
        dealer_.set(zmq::sockopt::linger, 0);
        if (!options.curve_server_key.empty()) {
            dealer_.set(zmq::sockopt::curve_serverkey, options.curve_server_key);
            dealer_.set(zmq::sockopt::curve_publickey, options.curve_public_key);
            dealer_.set(zmq::sockopt::curve_secretkey, options.curve_secret_key);
        }
        dealer_.connect(endpoint);
        wake_rx_.bind(name);
        wake_tx_.connect(name);
    } catch (const zmq::error_t& e) {
        throw std::runtime_error("cannot connect to broker endpoint '" + endpoint + "': " + e.what());
    }
    io_ = std::thread([this] { run(); });
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

void core::pin(const std::shared_ptr<handle_state>& s) {
    std::lock_guard lock(pin_mu_);
    pinned_[s->id] = s;
}

void core::unpin(const std::string& id) {
    std::shared_ptr<handle_state> last;  // released after the lock
    std::lock_guard lock(pin_mu_);
    if (auto it = pinned_.find(id); it != pinned_.end()) {
        last = std::move(it->second);
        pinned_.erase(it);
    }
}

void core::watch(const std::shared_ptr<handle_state>& s) {
    watched_[s->id] = s;
    if (watched_.size() >= prune_at_) {
        prune_watched();
    }
}

void core::post_callback(std::function<void()> fn) {
    if (!callbacks_.post(fn)) {
        try {
            fn();
        } catch (...) {
            // A callback's exception stops here.
        }
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
        read_replies();
        expire(steady::now());
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
}

void core::take_inbox() {
    std::vector<outgoing> batch;
    {
        std::lock_guard lock(mu_);
        batch.swap(inbox_);
    }
    for (auto& o : batch) {
        o.req.req = next_req_++;
        auto body = protocol::encode(o.req);
        // Non-blocking: a full send queue (broker long gone) fails now
        // rather than stalling every other request.
        if (!protocol::send(dealer_, {}, o.command, body)) {
            o.done(fail(errc::unavailable, "cannot queue " + o.command + ": the broker is not reachable"));
            continue;
        }
        auto deadline = steady::now() + o.timeout;
        auto done = [cmd = o.command, timeout = o.timeout, d = std::move(o.done)](result<protocol::reply> r) {
            if (!r && r.error().code == errc::unavailable && r.error().message.empty()) {
                d(timed_out(cmd, timeout));
            } else {
                d(std::move(r));
            }
        };
        pending_.emplace(o.req.req, pending_request{deadline, std::move(done)});
    }
}

void core::read_replies() {
    while (auto in = protocol::try_recv(dealer_, false)) {
        if (!in->msg) {
            continue;  // malformed frame from the broker: nothing to match it to
        }
        on_reply(in->msg->command, in->msg->body);
    }
}

void core::on_reply(const std::string& command, const std::string& body) {
    auto r = protocol::decode_reply(body);
    if (!r) {
        return;  // undecodable body: its request will time out
    }
    if (command == protocol::cmd::done) {
        on_done(*r);
        return;
    }
    auto it = pending_.find(r->req);
    if (it == pending_.end()) {
        return;  // late reply to a request that already timed out
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

void core::on_done(const protocol::reply& r) {
    if (!r.task || !is_final_state(r.task->state)) {
        return;
    }
    auto it = watched_.find(r.task->id);
    if (it == watched_.end()) {
        return;
    }
    if (auto s = it->second.lock()) {
        s->complete(from_wire(*r.task));
    }
    watched_.erase(it);
}

void core::expire(steady::time_point now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.deadline <= now) {
            auto done = std::move(it->second.done);
            it = pending_.erase(it);
            done(fail(errc::unavailable, ""));  // take_inbox's wrapper names the command
        } else {
            ++it;
        }
    }
}

int core::poll_timeout_ms(steady::time_point now) const {
    if (pending_.empty()) {
        return -1;
    }
    auto nearest = steady::time_point::max();
    for (const auto& [req, p] : pending_) {
        nearest = std::min(nearest, p.deadline);
    }
    if (nearest <= now) {
        return 0;
    }
    auto ms = std::chrono::ceil<milliseconds>(nearest - now).count();
    return static_cast<int>(std::min<int64_t>(ms, 60'000));
}

void core::prune_watched() {
    std::erase_if(watched_, [](const auto& kv) { return kv.second.expired(); });
    prune_at_ = std::max<std::size_t>(1024, watched_.size() * 2);
}

}  // namespace taskmill::client::detail
