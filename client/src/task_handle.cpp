// task_handle: waiting for a task's final state, by DONE push or STATUS.
#include <taskmill/client/client.hpp>

#include <taskmill/protocol/frame.hpp>

#include "convert.hpp"
#include "core.hpp"

namespace taskmill::client {

using detail::handle_state;
using detail::steady;

namespace {

const std::string empty_id;

// How long to wait for DONE after a long-poll came back early without a
// final state (a broker that ignores wait_ms), so get() cannot spin.
constexpr milliseconds early_return_pause{250};

// The outcome of one STATUS long-poll, shared with its completion.
struct poll_outcome {
    bool done = false;
    std::optional<error> err;
};

failure closed() { return fail(errc::unavailable, "the client is closed"); }

}  // namespace

const std::string& task_handle::id() const { return state_ ? state_->id : empty_id; }

const std::vector<std::string>& task_handle::warnings() const {
    static const std::vector<std::string> none;
    return state_ ? state_->warnings : none;
}

bool task_handle::ready() const {
    if (!state_) {
        return false;
    }
    std::lock_guard lock(state_->mu);
    return state_->final.has_value();
}

result<task_info> task_handle::status() const {
    if (!state_) {
        return fail(errc::invalid_argument, "empty task handle");
    }
    auto c = state_->owner.lock();
    if (!c) {
        return closed();
    }
    protocol::request r;
    r.id = state_->id;
    auto rep = c->call(std::string(protocol::cmd::status), std::move(r));
    if (!rep) {
        return failure{rep.error()};
    }
    if (!rep->task) {
        return fail(errc::internal, "STATUS reply without a task");
    }
    auto info = detail::from_wire(std::move(*rep->task));
    detail::complete(state_, info);
    return info;
}

// Loops: wait for the final state while a STATUS long-poll is out; each
// long-poll ends with the final state (done), an error (returned), or the
// broker's wait_ms elapsing (go round). A DONE push ends the wait at once.
result<task_info> task_handle::get(std::optional<milliseconds> timeout) const {
    if (!state_) {
        return fail(errc::invalid_argument, "empty task handle");
    }
    const auto deadline = timeout ? steady::now() + *timeout : steady::time_point::max();
    auto& s = *state_;
    for (;;) {
        auto c = s.owner.lock();
        {
            std::lock_guard lock(s.mu);
            if (s.final) {
                return *s.final;
            }
        }
        if (!c) {
            return closed();
        }
        const auto now = steady::now();
        if (now >= deadline) {
            return fail(errc::conflict, "task " + s.id + " did not finish within the timeout");
        }
        auto remaining = std::chrono::duration_cast<milliseconds>(deadline - now);
        auto wait_ms = std::min(remaining, c->options().max_long_poll);
        auto outcome = std::make_shared<poll_outcome>();
        protocol::request r;
        r.id = s.id;
        r.wait_ms = wait_ms.count();
        const auto sent = steady::now();
        c->send(std::string(protocol::cmd::status), std::move(r), wait_ms + c->options().request_timeout,
                [st = state_, outcome](result<protocol::reply> rep) {
                    if (rep && rep->task) {
                        detail::complete(st, detail::from_wire(std::move(*rep->task)));
                    }
                    {
                        std::lock_guard lock(st->mu);
                        outcome->done = true;
                        if (!rep) {
                            outcome->err = rep.error();
                        } else if (!rep->task) {
                            outcome->err = error{errc::internal, "STATUS reply without a task"};
                        }
                    }
                    st->cv.notify_all();
                });
        c.reset();  // a waiting handle must not keep a closed client alive
        std::unique_lock lock(s.mu);
        s.cv.wait_until(lock, deadline, [&] { return s.final.has_value() || outcome->done; });
        if (s.final) {
            return *s.final;
        }
        if (outcome->err) {
            return failure{*outcome->err};
        }
        if (outcome->done && steady::now() - sent < wait_ms / 2) {
            s.cv.wait_until(lock, std::min(deadline, steady::now() + early_return_pause),
                            [&] { return s.final.has_value(); });
        }
    }
}

void task_handle::then(callback on_success, callback on_failure) const {
    if (!state_) {
        return;
    }
    {
        std::lock_guard lock(state_->mu);
        if (!state_->final) {
            // Kept until DONE or a STATUS reply shows the final state: a
            // watched state stays in the I/O thread's table while callbacks
            // wait, even when every handle is dropped.
            state_->callbacks.emplace_back(std::move(on_success), std::move(on_failure));
            return;
        }
    }
    detail::fire(state_, std::move(on_success), std::move(on_failure));
}

}  // namespace taskmill::client
