// The worker process: the I/O thread that owns the DEALER socket.
#include <taskmill/host/worker.hpp>

#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>

#include <spdlog/spdlog.h>
#include <zmq.hpp>

#include <taskmill/logging/log_fields.hpp>
#include <taskmill/logging/stderr_logger.hpp>
#include <taskmill/protocol/frame.hpp>
#include <taskmill/protocol/peer_text.hpp>
#include <taskmill/protocol/size_bound.hpp>

#include "broker_link.hpp"
#include "exit_codes.hpp"
#include "plugin_limits.hpp"
#include "security.hpp"
#include "worker_marker.hpp"
#include "worker_shared.hpp"

namespace taskmill::host {
namespace {

using detail::steady;
using detail::task_run;
using std::chrono::milliseconds;

std::string hostname() {
    char buf[256] = {};
    if (::gethostname(buf, sizeof buf - 1) != 0) return "localhost";
    return buf;
}

// This process's resident memory (/proc/self/statm: cheaper to read than
// /proc/self/stat, and read after every batch of outcomes).
uint64_t rss_bytes() {
    std::ifstream in("/proc/self/statm");
    uint64_t size = 0;
    uint64_t resident = 0;
    in >> size >> resident;
    return resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));
}

constexpr auto unwelcomed_first = std::chrono::seconds(5);
constexpr auto unwelcomed_repeat = std::chrono::seconds(30);

// The I/O loop. It is one object so the state machine (running, draining,
// stopping) is in one place; each handler of an event is a small method.
class worker_loop {
public:
    worker_loop(const options& o, std::shared_ptr<spdlog::logger> log, int signal_fd)
        : o_(o),
          signal_fd_(signal_fd),
          id_(worker_id()),
          plugins_(std::filesystem::path(o.run_dir) / ("worker-" + std::to_string(::getpid()))),
          prefetch_(o.concurrency, o.prefetch, o.prefetch_max, !o.prefetch_auto),
          heartbeat_(milliseconds(o.heartbeat_ms)) {
        s_.log = std::move(log);
        s_.prefetch = &prefetch_;
    }

    int run();

private:
    void load_plugins();
    void open_running_file();
    void connect();
    void moved(const std::string& why);
    void check_broker();
    void send(std::string_view command, const std::string& body) {
        if (!protocol::send(link_->socket(), {}, command, body)) s_.log->warn("send {} failed (queue full?)", command);
    }
    void send_hello();
    void send_heartbeat();
    void send_results(protocol::results& r);
    void acknowledged(uint64_t seq);
    void resend_unacknowledged();
    void on_broker_message();
    void on_dispatch(const std::string& body);
    void on_cancel(const std::string& body);
    void on_call_reply(const std::string& body);
    void on_welcome(const std::string& body);
    void on_credit(const std::string& body);
    void on_error(const std::string& body);
    void on_unknown(const std::string& body);
    void on_heartbeat(const std::string& body);
    // The handler of each command from the broker, found by name.
    using command_handler = void (worker_loop::*)(const std::string& body);
    struct command_entry {
        std::string_view command;
        command_handler on;
    };
    static const std::array<command_entry, 9> commands_;
    void on_mailbox();
    void send_results();
    void resize_prefetch();
    void on_signal();
    void check_deadlines();
    void warn_if_unwelcomed();
    // Why the worker drains: recycling (--max-tasks, --max-rss-mb) and stop
    // (SIGTERM, SIGINT) cancel every running task when --grace-ms ends;
    // retire (SIGUSR1) only those without a deadline (see grace_over()).
    enum class drain_kind { recycle, stop, retire };
    void start_drain(drain_kind kind, const std::string& why);
    void grace_over();
    void check_drain();
    bool only_handed_back_left() const;
    bool deadline_bound_running() const;
    void leave(int code, const std::string& why);
    protocol::outcome deliverable(protocol::outcome o) const;
    void fail_refused_outcomes(const std::string& why);
    milliseconds next_timeout() const;

    const options& o_;
    int signal_fd_;
    std::string id_;
    // The supervisor that forked us reports our death (PR_SET_PDEATHSIG ties
    // us to it, so the parent is that supervisor for our whole life).
    std::string supervisor_ = supervisor_id(::getppid());
    detail::shared_state s_;
    plugin_set plugins_;
    detail::prefetch_control prefetch_;
    zmq::context_t zctx_{1};
    std::optional<detail::broker_link> link_;  // set by connect()
    // Tasks held (queued or running) until their outcome is sent, by id. The
    // key views the task's own item.id, which stays put while it is here.
    std::map<std::string_view, std::shared_ptr<task_run>, std::less<>> running_;
    int64_t next_deadline_check_ms_ = 0;
    detail::mailbox::batch batch_;                    // reused by on_mailbox(), with its capacity
    std::vector<std::shared_ptr<task_run>> arrived_;  // reused by on_dispatch()
    protocol::results results_;                       // likewise
    // Outcomes sent but not yet acknowledged: the broker's HEARTBEAT echoes
    // the `seq` of the last RESULTS it read. A broker that restarted never
    // read the others; they are sent again after its WELCOME, so a task
    // that finished while it was away is not run a second time.
    struct sent_results {
        uint64_t seq = 0;
        std::vector<protocol::outcome> items;
    };
    std::deque<sent_results> unacked_;
    std::size_t unacked_count_ = 0;
    uint64_t results_seq_ = 0;
    // The outcomes last resent (id -> attempt), until acknowledged: a
    // restarted broker may queue these tasks again before it reads them.
    std::unordered_map<std::string, uint32_t> resent_;
    uint64_t resent_seq_ = 0;
    milliseconds heartbeat_;
    steady::time_point next_heartbeat_{};
    std::optional<steady::time_point> hello_pending_;  // a HELLO not yet answered by WELCOME
    uint64_t completed_ = 0;
    // Until the broker answers HELLO, a warning now and then names the
    // endpoint: a host pointed where no broker listens must say so.
    bool welcomed_ = false;
    steady::time_point next_unwelcomed_warning_{};
    steady::time_point hello_sent_{};
    bool draining_ = false;
    drain_kind drain_kind_ = drain_kind::recycle;
    // The broker acknowledges CREDIT 0; DISPATCHes it sent before that are
    // already in our socket, so BYE waits for the ack (or a short deadline,
    // should the broker be gone) and runs them rather than bouncing them.
    bool drain_acked_ = false;
    steady::time_point drain_ack_deadline_{};
    std::optional<steady::time_point> drain_deadline_;  // the end of --grace-ms
    std::optional<steady::time_point> handback_after_;  // grace over: cancelled tasks get --kill-grace-ms
    int exit_code_ = -1;                                // >= 0: leave the loop with it
};

void worker_loop::load_plugins() {
    for (const auto& why : load_plugins_checked(plugins_, o_, *s_.log)) s_.log->error("plugin refused: {}", why);
    for (const auto& p : plugins_.plugins()) {
        s_.log->info("plugin loaded name={} version={} handlers={} file={} copy={}", p->name, p->version,
                     p->handlers.size(), p->source.string(), p->copy.string());
        for (const auto& w : p->warnings) s_.log->warn("plugin={} file={}: {}", p->name, p->source.string(), w);
    }
}

// <run-dir>/worker-<pid>/running: which task each slot runs, for the
// supervisor to read should this process die (see running_file.hpp).
void worker_loop::open_running_file() {
    auto path = detail::running_file_path(o_.run_dir, ::getpid());
    std::error_code ec;
    std::filesystem::create_directories(path.parent_path(), ec);
    if (!s_.running.open(path, o_.concurrency)) {
        s_.log->warn("cannot create {}: a crash will not name the tasks it hit", path.string());
    }
    // Its figures for the host's /metrics (see worker_stats.hpp).
    std::vector<std::string> handlers;
    for (const auto& p : plugins_.plugins()) {
        for (const auto& h : p->handlers) handlers.push_back(h.name);
    }
    auto stats = detail::worker_stats_path(o_.run_dir, ::getpid());
    if (!s_.stats.open(stats, handlers)) s_.log->warn("cannot create {}: no figures for /metrics", stats.string());
}

void worker_loop::connect() { link_.emplace(zctx_, o_, id_); }

// With several brokers: a member that does not lead, or silence, moves the
// link; the new one hears HELLO with the tasks this worker holds, and gets
// the outcomes it has not acknowledged after its WELCOME.
void worker_loop::moved(const std::string& why) {
    s_.log->warn("{}; now talking to the broker at {}", why, link_->endpoint());
    welcomed_ = false;
    send_hello();
}

void worker_loop::check_broker() {
    // A live broker heartbeats every heartbeat_: failover_ms more without
    // a word (or no WELCOME) and the next member is tried.
    const auto limit = heartbeat_ + milliseconds(o_.failover_ms);
    if (link_->move_if_silent(steady::now(), limit)) {
        moved("no word from the broker for " + std::to_string(limit.count()) + " ms");
    }
}

void worker_loop::send_hello() {
    protocol::hello h;
    h.worker = id_;
    h.host = hostname();
    h.pid = ::getpid();
    // The broker treats slots as credit: the slots plus the local queue.
    // `prefetch` tells it how many of those wait (they start in dispatch
    // order), so a crash is charged only to the oldest `concurrency` tasks.
    h.slots = draining_ ? 0 : o_.concurrency + prefetch_.current();
    h.prefetch = draining_ ? 0 : prefetch_.current();
    h.generation = o_.generation;
    h.queues = o_.queues;
    h.handlers = plugins_.handler_infos();
    h.supervisor = supervisor_;
    h.held.reserve(running_.size());
    for (const auto& [id, run] : running_) h.held.push_back({std::string(id), run->item.attempt});
    send(protocol::cmd::hello, protocol::encode(h));
    next_heartbeat_ = steady::now() + heartbeat_;
    hello_pending_ = steady::now();
}

// Names every task held (queued or running): the broker renews their
// leases, and forgets the slot of an attempt it gave up on once it is no
// longer named. Carries the worker's memory, shown by WORKERS.
void worker_loop::send_heartbeat() {
    protocol::control hb;
    hb.rss_bytes = rss_bytes();
    hb.ids.reserve(running_.size());
    for (const auto& [id, run] : running_) hb.ids.emplace_back(id);
    send(protocol::cmd::heartbeat, protocol::encode(hb));
    next_heartbeat_ = steady::now() + heartbeat_;
}

// Sends `r` numbered, and keeps its outcomes until the broker acknowledges
// them (moved out of `r`). Bounded: past the cap the oldest are forgotten,
// which costs at most a second run of those tasks.
void worker_loop::send_results(protocol::results& r) {
    constexpr std::size_t max_unacked = 4096;
    r.seq = ++results_seq_;
    send(protocol::cmd::results, protocol::encode(r));
    if (r.items.empty()) return;
    unacked_count_ += r.items.size();
    unacked_.push_back({r.seq, std::move(r.items)});
    r.items.clear();
    while (unacked_count_ > max_unacked && unacked_.size() > 1) acknowledged(unacked_.front().seq);
}

void worker_loop::acknowledged(uint64_t seq) {
    while (!unacked_.empty() && unacked_.front().seq <= seq) {
        unacked_count_ -= unacked_.front().items.size();
        unacked_.pop_front();
    }
    if (seq >= resent_seq_) resent_.clear();
}

// A new WELCOME: the broker may have restarted since it last acknowledged.
// Outcomes of tasks it still has are taken; others are ignored there.
void worker_loop::resend_unacknowledged() {
    if (unacked_.empty()) return;
    auto batches = std::move(unacked_);
    unacked_.clear();
    unacked_count_ = 0;
    resent_.clear();
    std::size_t n = 0;
    for (const auto& sent : batches) {
        for (const auto& o : sent.items) resent_[o.id] = o.attempt;
        n += sent.items.size();
    }
    s_.log->info("resending {} outcome(s) the broker has not acknowledged", n);
    // As they went the first time: each RESULTS was under the body limit.
    for (auto& sent : batches) {
        protocol::results r;
        r.items = std::move(sent.items);
        send_results(r);
    }
    resent_seq_ = results_seq_;
}

void worker_loop::on_dispatch(const std::string& body) {
    auto d = protocol::decode_dispatch(body);
    if (!d) {
        s_.log->error("malformed DISPATCH dropped: {}", d.error().message);
        return;
    }
    for (auto& item : d->tasks) {
        if (running_.count(item.id) != 0) {
            s_.log->warn("task={} dispatched twice; ignoring the second copy", protocol::printable(item.id));
            continue;
        }
        if (auto u = resent_.find(item.id); u != resent_.end() && u->second == item.attempt) {
            // A restarted broker queued it again; this attempt already ended
            // and its outcome was resent after the WELCOME.
            s_.log->info("task={} attempt={} already finished here; not run again", item.id, item.attempt);
            continue;
        }
        auto run = std::make_shared<task_run>();
        run->handler = plugins_.resolve(item.handler);
        run->item = std::move(item);  // its deadline is set when a slot starts it
        running_.emplace(run->item.id, run);
        arrived_.push_back(std::move(run));
    }
    s_.queue.push(arrived_, prefetch_.mean_run_ns());
}

void worker_loop::on_cancel(const std::string& body) {
    auto c = protocol::decode_control(body);
    if (!c) {
        s_.log->error("malformed CANCEL dropped: {}", c.error().message);
        return;
    }
    for (const auto& id : c->ids) {
        auto it = running_.find(id);
        // A CANCEL names the attempt it stops: one for an attempt that ended
        // must not stop a later one of the same task.
        if (it != running_.end() && (c->attempt == 0 || c->attempt == it->second->item.attempt)) {
            it->second->cancelled = true;
            s_.log->info("task={} cancel requested", protocol::printable(id));
        }
    }
}

// What the worker does with each command from the broker (docs/PROTOCOL.md,
// worker side); a command not listed is logged and ignored.
const std::array<worker_loop::command_entry, 9> worker_loop::commands_{{
    {protocol::cmd::dispatch, &worker_loop::on_dispatch},
    {protocol::cmd::cancel, &worker_loop::on_cancel},
    {protocol::cmd::checkpoint, &worker_loop::on_call_reply},
    {protocol::cmd::spawn, &worker_loop::on_call_reply},
    {protocol::cmd::welcome, &worker_loop::on_welcome},
    {protocol::cmd::credit, &worker_loop::on_credit},
    {protocol::cmd::error, &worker_loop::on_error},
    {protocol::cmd::unknown, &worker_loop::on_unknown},
    {protocol::cmd::heartbeat, &worker_loop::on_heartbeat},
}};

void worker_loop::on_broker_message() {
    while (auto in = protocol::try_recv(link_->socket(), false)) {
        link_->heard(steady::now());
        if (!in->msg) {
            s_.log->error("malformed message from broker dropped: {}", in->msg.error().message);
            continue;
        }
        const auto& m = *in->msg;
        auto entry = std::find_if(commands_.begin(), commands_.end(),
                                  [&](const command_entry& e) { return e.command == m.command; });
        if (entry == commands_.end()) {
            s_.log->warn("unexpected command {} from broker ignored", m.command);
            continue;
        }
        (this->*(entry->on))(m.body);
    }
}

// The broker's answer to a CHECKPOINT or SPAWN a slot thread is waiting for.
void worker_loop::on_call_reply(const std::string& body) {
    if (auto c = protocol::decode_control(body)) s_.calls.fulfil(*c);
    else s_.log->error("malformed CHECKPOINT/SPAWN reply dropped: {}", c.error().message);
}

void worker_loop::on_welcome(const std::string& body) {
    if (auto w = protocol::decode_welcome(body); w && w->heartbeat_ms > 0) heartbeat_ = milliseconds(w->heartbeat_ms);
    s_.log->info("welcomed by broker heartbeat_ms={}", heartbeat_.count());
    welcomed_ = true;
    hello_pending_.reset();
    resend_unacknowledged();
}

void worker_loop::on_credit(const std::string& body) {
    // Only the answer to CREDIT 0: one to an earlier resize may still be on its way.
    auto c = protocol::decode_control(body);
    drain_acked_ = draining_ && c && c->slots == 0;
}

void worker_loop::on_error(const std::string& body) {
    auto c = protocol::decode_control(body);
    if (c && c->error_code == "not_leader") {
        const std::string from = link_->endpoint();
        if (link_->follow(c->leader, steady::now())) moved("the broker at " + from + " does not lead the cluster");
        return;
    }
    const std::string why = protocol::printable(c ? c->error : c.error().message);
    s_.log->error("broker refused a message from this worker: {}", why);
    fail_refused_outcomes(why);
}

// An ERROR does not say which message it refuses (a RESULTS carries no
// `req`), and a refused RESULTS would leave its tasks RUNNING for good. Any
// outcome not yet acknowledged that is big enough to have been refused is
// sent again as a small failure naming it; the broker ignores an outcome
// for an attempt that already ended, so one it did take is not changed.
void worker_loop::fail_refused_outcomes(const std::string& why) {
    constexpr std::size_t small = 64 * 1024;
    protocol::results r;
    for (auto& sent : unacked_) {
        for (auto& o : sent.items) {
            auto size = protocol::size_bound(o);
            if (size <= small) continue;
            protocol::outcome f;
            f.id = o.id;
            f.attempt = o.attempt;
            f.version = o.version;
            f.status = "fail";
            f.error = "the broker refused this outcome (" + std::to_string(size) + " bytes): " + why;
            s_.log->warn("task={} outcome of {} bytes may have been refused; reporting it failed",
                         protocol::printable(o.id), size);
            o = f;  // should it be resent after a new WELCOME, the small one goes
            r.items.push_back(std::move(f));
        }
    }
    if (!r.items.empty()) send_results(r);
}

// An outcome the broker could not take (over its body limit) would leave
// the task RUNNING for good: it goes as a failure naming the size instead.
// set_result and set_error keep outcomes under the limit; this is the last
// guard, for whatever else could make one too big.
protocol::outcome worker_loop::deliverable(protocol::outcome o) const {
    const std::size_t limit = protocol::default_max_body - protocol::envelope_bound;
    auto size = protocol::size_bound(o);
    if (size <= limit) return o;
    protocol::outcome f;
    f.id = std::move(o.id);
    f.attempt = o.attempt;
    f.version = std::move(o.version);
    f.error_code = o.error_code;
    f.status = "fail";
    f.error = "outcome too large (" + std::to_string(size) + " bytes, limit " + std::to_string(limit) + ")";
    s_.log->error("task={} {}", protocol::printable(f.id), f.error);
    return f;
}

void worker_loop::on_unknown(const std::string& /*body*/) {
    // Every message queued while the broker was away earns one UNKNOWN: one
    // HELLO answers them all (each HELLO would make the broker requeue what
    // it had just dispatched to us).
    if (hello_pending_ && steady::now() - *hello_pending_ < std::max(2 * heartbeat_, milliseconds(1000))) return;
    s_.log->warn("broker does not know this worker; sending HELLO again");
    send_hello();
}

void worker_loop::on_heartbeat(const std::string& body) {
    if (auto c = protocol::decode_control(body)) acknowledged(c->req);
}

void worker_loop::send_results() {
    send_results(results_);  // numbered; its outcomes move to unacked_
    results_.started.clear();
}

// One RESULTS per drain (more if they would not fit in one): the outcomes, and the tasks started since the last
// drain that have no outcome yet (an outcome implies the start, so a task
// that starts and ends between two drains is not listed as started).
void worker_loop::on_mailbox() {
    auto& batch = batch_;
    s_.mail.drain(batch);
    for (auto& [command, body] : batch.messages) send(command, body);
    for (auto& run : batch.started) {
        if (!run->reported.load()) results_.started.push_back(run->item.id);
    }
    batch.started.clear();
    if (batch.outcomes.empty() && results_.started.empty()) return;
    // The broker drops a body over its limit (the tasks would stay RUNNING
    // until their lease ends): results that do not fit go in another RESULTS.
    std::size_t bytes = protocol::envelope_bound + results_.started.size() * 64;
    for (auto& o : batch.outcomes) {
        if (auto it = running_.find(o.id); it != running_.end()) running_.erase(it);
        ++completed_;
        o = deliverable(std::move(o));
        auto size = protocol::size_bound(o);
        if (!results_.items.empty() && bytes + size > protocol::default_max_body) {
            send_results();
            bytes = protocol::envelope_bound;
        }
        bytes += size;
        results_.items.push_back(std::move(o));
    }
    send_results();
    if (batch.outcomes.empty()) return;
    resize_prefetch();
    if (!draining_ && o_.max_tasks > 0 && completed_ >= o_.max_tasks) {
        start_drain(drain_kind::recycle, "max-tasks reached (" + std::to_string(completed_) + ")");
    } else if (!draining_ && o_.max_rss_mb > 0) {
        if (auto mb = rss_bytes() / (uint64_t{1024} * 1024); mb >= o_.max_rss_mb) {
            start_drain(drain_kind::recycle, "max-rss-mb reached (" + std::to_string(mb) + " MB)");
        }
    }
}

// Auto prefetch: a new size goes to the broker as CREDIT (HELLO's `prefetch`,
// which the broker uses to charge a crash, stays: the slots are unchanged).
void worker_loop::resize_prefetch() {
    if (draining_) return;
    auto p = prefetch_.update(steady::now());
    if (!p) return;
    s_.log->debug("prefetch now {} (from the run time of recent tasks)", *p);
    protocol::control c;
    c.slots = o_.concurrency + *p;
    send(protocol::cmd::credit, protocol::encode(c));
}

void worker_loop::start_drain(drain_kind kind, const std::string& why) {
    if (draining_) {
        // A stop during a retire: tasks with a deadline are cancelled too,
        // at the grace's end or, if it is over, now.
        if (kind == drain_kind::stop && drain_kind_ == drain_kind::retire) {
            drain_kind_ = kind;
            if (handback_after_) grace_over();
        }
        return;
    }
    draining_ = true;
    drain_kind_ = kind;
    drain_deadline_ = steady::now() + milliseconds(o_.grace_ms);
    drain_ack_deadline_ = steady::now() + std::max(2 * heartbeat_, milliseconds(1000));
    s_.log->info("draining: {} running={}", why, running_.size());
    protocol::control c;
    c.slots = 0;
    send(protocol::cmd::credit, protocol::encode(c));
}

void worker_loop::on_signal() {
    signalfd_siginfo info{};
    while (::read(signal_fd_, &info, sizeof info) == static_cast<ssize_t>(sizeof info)) {
        const auto sig = static_cast<int>(info.ssi_signo);
        if (sig == SIGUSR1) start_drain(drain_kind::retire, "retired (signal " + std::to_string(sig) + ")");
        else start_drain(drain_kind::stop, "signal " + std::to_string(sig));
    }
}

// --grace-ms is over: the tasks still running see is_cancelled() (on a
// retire, only those without a deadline: the others may use their own
// time), and tasks not started yet are not run. What has not returned
// --kill-grace-ms later is handed back (check_drain).
void worker_loop::grace_over() {
    std::size_t n = 0;
    for (auto& [id, run] : running_) {
        if (run->finished.load()) continue;
        if (drain_kind_ == drain_kind::retire && run->deadline_unix_ms.load() > 0) continue;
        run->stopping = true;
        ++n;
    }
    s_.log->info("grace period over: {} task(s) told to stop; {} ms for them to return", n, o_.kill_grace_ms);
    handback_after_ = steady::now() + milliseconds(o_.kill_grace_ms);
}

// Every task still held was handed back by its slot (or never started).
bool worker_loop::only_handed_back_left() const {
    return std::all_of(running_.begin(), running_.end(),
                       [](const auto& e) { return e.second->finished.load() && !e.second->reported.load(); });
}

// A task that runs with a deadline: check_deadlines() bounds it.
bool worker_loop::deadline_bound_running() const {
    return std::any_of(running_.begin(), running_.end(), [](const auto& e) {
        return !e.second->finished.load() && e.second->deadline_unix_ms.load() > 0;
    });
}

// BYE: the broker requeues what this worker still holds, without counting a crash.
void worker_loop::leave(int code, const std::string& why) {
    send(protocol::cmd::bye, protocol::encode(protocol::control{}));
    s_.log->log(code == exit_worker_ok ? spdlog::level::info : spdlog::level::warn,
                "worker exiting id={} completed={} handed_back={}: {}", id_, completed_, running_.size(), why);
    exit_code_ = code;
}

void worker_loop::check_drain() {
    if (!draining_ || exit_code_ >= 0) return;
    const auto now = steady::now();
    const bool acked = drain_acked_ || now >= drain_ack_deadline_;
    if (acked && only_handed_back_left()) {
        leave(exit_worker_ok, running_.empty() ? "drained" : "the rest handed back");
    } else if (drain_deadline_ && now >= *drain_deadline_ && !handback_after_) {
        grace_over();
    } else if (handback_after_ && now >= *handback_after_ && !deadline_bound_running()) {
        // The slot threads may be stuck in plugin code: the process ends without joining them.
        leave(exit_handed_back, "task(s) still running after the grace and kill grace; handed back");
    }
}

// A task past deadline + kill grace is stuck in plugin code we cannot stop:
// report it as timed out and end the process (the supervisor restarts it and
// the broker requeues what else it held).
void worker_loop::check_deadlines() {
    int64_t now = detail::unix_now_ms();
    // The kill grace is seconds: a look every 10 ms is plenty, and this loop
    // runs after every message otherwise.
    if (now < next_deadline_check_ms_) return;
    next_deadline_check_ms_ = now + 10;
    protocol::results r;
    for (auto& [id, run] : running_) {
        int64_t deadline = run->deadline_unix_ms.load(std::memory_order_relaxed);  // 0 until a slot starts it
        if (deadline == 0 || now < deadline + o_.kill_grace_ms) continue;
        if (run->reported.exchange(true)) continue;
        r.items.push_back(protocol::outcome{std::string(id),
                                            run->item.attempt,
                                            "timeout",
                                            {},
                                            "did not stop within the kill grace after its deadline",
                                            std::nullopt,
                                            run->handler != nullptr ? run->handler->version : "",
                                            std::nullopt,
                                            std::nullopt});
        s_.log->error("task={} handler={} stuck past its deadline; restarting the worker", protocol::printable(id),
                      protocol::printable(run->item.handler));
    }
    if (!r.items.empty()) {
        // CREDIT 0 first: the broker must not hand this dying process
        // anything more, such as the retry of the stuck task itself (its
        // crash would then be charged to that next attempt).
        protocol::control c;
        c.slots = 0;
        send(protocol::cmd::credit, protocol::encode(c));
        send_results(r);
        exit_code_ = exit_task_stuck;
    }
}

void worker_loop::warn_if_unwelcomed() {
    auto now = steady::now();
    if (welcomed_ || now < next_unwelcomed_warning_) return;
    s_.log->warn(
        "no WELCOME from a broker at {} after {} s: is the broker running, is this its backend endpoint, "
        "and do the CURVE keys match? still trying",
        o_.broker, std::chrono::duration_cast<std::chrono::seconds>(now - hello_sent_).count());
    next_unwelcomed_warning_ = now + unwelcomed_repeat;
}

milliseconds worker_loop::next_timeout() const {
    auto now = steady::now();
    auto until = next_heartbeat_ - now;
    if (!welcomed_) until = std::min<steady::duration>(until, next_unwelcomed_warning_ - now);
    // While tasks are held, look every 10 ms: for deadlines, and for starts,
    // which are posted without a wake (mailbox::post_started).
    if (!running_.empty()) until = std::min<steady::duration>(until, milliseconds(10));
    if (drain_deadline_ && !handback_after_) until = std::min<steady::duration>(until, *drain_deadline_ - now);
    if (handback_after_) until = std::min<steady::duration>(until, *handback_after_ - now);
    if (draining_ && !drain_acked_) until = std::min<steady::duration>(until, drain_ack_deadline_ - now);
    until = std::min<steady::duration>(until, link_->silent_at(heartbeat_ + milliseconds(o_.failover_ms)) - now);
    return std::max(milliseconds(0), std::chrono::duration_cast<milliseconds>(until) + milliseconds(1));
}

int worker_loop::run() {
    load_plugins();
    detail::mark_worker(o_.run_dir, "loaded");  // for the supervisor: see worker_marker.hpp
    connect();
    send_hello();
    detail::mark_worker(o_.run_dir, "ready");
    hello_sent_ = steady::now();
    next_unwelcomed_warning_ = hello_sent_ + unwelcomed_first;
    s_.log->info("worker ready id={} slots={} prefetch={} generation={} broker={}", id_, o_.concurrency,
                 prefetch_text(o_), o_.generation, o_.broker);
    open_running_file();
    detail::slot_pool slots(s_, o_.concurrency);
    while (exit_code_ < 0) {
        zmq::pollitem_t items[] = {{link_->socket().handle(), 0, ZMQ_POLLIN, 0},
                                   {nullptr, s_.mail.fd(), ZMQ_POLLIN, 0},
                                   {nullptr, signal_fd_, ZMQ_POLLIN, 0}};
        const int ready = zmq::poll(items, signal_fd_ >= 0 ? 3 : 2, next_timeout());
        if ((items[0].revents & ZMQ_POLLIN) != 0) on_broker_message();
        if ((items[1].revents & ZMQ_POLLIN) != 0 || ready == 0) on_mailbox();  // a timeout: starts posted since
        if (signal_fd_ >= 0 && (items[2].revents & ZMQ_POLLIN) != 0) on_signal();
        s_.queue.nudge(steady::now());  // queued tasks behind slots all busy with long ones
        check_deadlines();
        warn_if_unwelcomed();
        check_broker();
        if (steady::now() >= next_heartbeat_) send_heartbeat();
        check_drain();
    }
    s_.calls.fail_all("worker stopping");
    link_.reset();
    zctx_.close();                                // flushes what is queued (linger), then returns
    if (exit_code_ != 0) std::_Exit(exit_code_);  // slot threads may be stuck in plugin code
    for (auto& [id, run] : running_) run->cancelled = true;
    s_.running.remove();  // a clean exit: nothing for the supervisor to charge
    return exit_code_;
}

}  // namespace

// A hard cap on the worker's address space, so one runaway handler cannot
// take the node's memory: past it allocations fail (a C++ handler sees
// std::bad_alloc, reported with the limit as the reason). The soft
// --max-rss-mb recycling is what keeps well-behaved workers under it.
namespace {
void apply_memory_limit(const options& o, spdlog::logger& log) {
    if (o.memory_limit_mb == 0) {
        return;
    }
    rlimit lim{};
    lim.rlim_cur = lim.rlim_max = static_cast<rlim_t>(o.memory_limit_mb) << 20;
    if (::setrlimit(RLIMIT_AS, &lim) != 0) {
        log.warn("memory limit not applied: setrlimit(RLIMIT_AS, {} MB): {}", o.memory_limit_mb, std::strerror(errno));
        return;
    }
    log.info("memory limit applied: {} MB of address space", o.memory_limit_mb);
}
}  // namespace

std::string worker_id() { return hostname() + ":" + std::to_string(::getpid()); }

std::string supervisor_id(long pid) { return hostname() + ":" + std::to_string(pid) + ":supervisor"; }

int run_worker(const options& o) {
    logging::log_fields process_fields;
    process_fields.worker = worker_id();  // on every JSON line of this process
    logging::set_process_log_fields(process_fields);
    auto log = logging::make_stderr_logger("worker", *logging::parse_log_format(o.log_format));
    log->set_level(spdlog::level::from_str(o.log_level));
    // Signals are read from a signalfd; they must be blocked before any thread starts.
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGUSR1);  // retire (a reload of the plugins)
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    int sfd = ::signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    apply_memory_limit(o, *log);
    try {
        worker_loop loop(o, log, sfd);
        int rc = loop.run();
        ::close(sfd);
        return rc;
    } catch (const std::exception& e) {
        log->critical("worker failed: {}", e.what());
        return 1;
    }
}

}  // namespace taskmill::host
