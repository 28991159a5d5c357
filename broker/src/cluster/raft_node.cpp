#include "cluster/raft_node.hpp"

#include <algorithm>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <type_traits>

#include <uv.h>

#include "cluster/nodelay_transport.hpp"
#include "cluster/raft_c.hpp"
#include "replication/apply.hpp"
#include "replication/image.hpp"

namespace taskmill::broker::cluster {
namespace {

// A proposal, alive from raft_apply until its callback.
struct proposal {
    struct raft_apply req {};
    std::size_t* in_flight = nullptr;
    raft_node::done_fn done;
};

struct barrier_request {
    struct raft_barrier req {};
    raft_node::done_fn done;
};

// The raft_io and who owns it: libraft keeps raft_io's `data` for itself,
// so async_work finds its owner from the io's address (the first member).
struct owned_io {
    raft_io io{};
    void* owner = nullptr;
};

// libuv's thread pool running libraft's work (0.15's raft_uv has none).
struct pool_work {
    uv_work_t work{};
    raft_io_async_work* req = nullptr;
    raft_io_async_work_cb cb = nullptr;
    int status = 0;
};

void proposal_done(struct raft_apply* req, int status, void*) {
    auto* p = static_cast<proposal*>(req->data);
    --*p->in_flight;
    auto done = std::move(p->done);
    delete p;
    done(status == 0);
}

void barrier_done(struct raft_barrier* req, int status) {
    auto* b = static_cast<barrier_request*>(req->data);
    auto done = std::move(b->done);
    delete b;
    done(status == 0);
}

std::string_view view(const raft_buffer& b) { return {static_cast<const char*>(b.base), b.len}; }

// libraft 0.15 sends entries back to back but reads them as if each were
// padded to 8 bytes (uvEncodeMessage against uvDecodeEntriesBatch): an
// entry whose length is not a multiple of 8 shifts the ones after it in
// the same message. So an entry is its payload's length (8 bytes,
// big-endian), the payload, and zeros up to a multiple of 8.
constexpr std::size_t frame_header = 8;

std::size_t framed_size(std::size_t payload) { return (frame_header + payload + 7) / 8 * 8; }

void frame(std::string_view payload, char* out) {
    const uint64_t n = payload.size();
    for (std::size_t i = 0; i < frame_header; ++i) {
        out[i] = static_cast<char>(n >> (8 * (frame_header - 1 - i)));
    }
    std::memcpy(out + frame_header, payload.data(), payload.size());
    std::memset(out + frame_header + payload.size(), 0, framed_size(payload.size()) - frame_header - payload.size());
}

result<std::string_view> unframe(std::string_view entry) {
    if (entry.size() < frame_header || entry.size() % 8 != 0) {
        return fail(errc::corrupt, "a log entry of " + std::to_string(entry.size()) + " bytes is not framed");
    }
    uint64_t n = 0;
    for (std::size_t i = 0; i < frame_header; ++i) {
        n = n << 8 | static_cast<uint8_t>(entry[i]);
    }
    if (n > entry.size() - frame_header || framed_size(n) != entry.size()) {
        return fail(errc::corrupt,
                    "a log entry of " + std::to_string(entry.size()) + " bytes says it holds " + std::to_string(n));
    }
    return entry.substr(frame_header, n);
}

// "1.2.3.4:5": libraft 0.15's transport reads dotted IPv4 addresses only.
bool ipv4_and_port(const std::string& a) {
    const auto colon = a.rfind(':');
    if (colon == std::string::npos || colon + 1 >= a.size() || a.size() - colon - 1 > 5) {
        return false;
    }
    int dots = 0;
    for (std::size_t i = 0; i < colon; ++i) {
        if (a[i] == '.') {
            ++dots;
        } else if (a[i] < '0' || a[i] > '9') {
            return false;
        }
    }
    const auto port = a.substr(colon + 1);
    if (dots != 3 || port.find_first_not_of("0123456789") != std::string::npos) {
        return false;
    }
    const int n = std::stoi(port);
    return n > 0 && n < 65536;
}

}  // namespace

const char* to_string(role r) {
    switch (r) {
        case role::follower: return "follower";
        case role::candidate: return "candidate";
        case role::leader: return "leader";
        case role::unavailable: break;
    }
    return "unavailable";
}

struct raft_node::impl {
    raft_settings cfg;
    store& st;
    spdlog::logger& log;
    uv_loop_t loop{};
    std::unique_ptr<nodelay_transport> transport;
    owned_io io;
    raft_fsm fsm{};
    ::raft r{};
    bool io_open = false;
    bool raft_open = false;
    bool closed = false;
    std::size_t in_flight = 0;
    bool snapshot_wanted = false;
    uint64_t snapshots = 0;
    uint64_t installed = 0;
    std::unique_ptr<transaction> snapshot_txn;  // begun on the loop, read in the pool
    std::optional<std::string> failed;

    // The membership change under way. libraft's callbacks only note their
    // status; advance() acts on it after uv_run has returned, so the next
    // step is never taken from inside libraft.
    enum class stage { none, adding, standby, catching_up, promoting, removing, transferring };
    struct change_state {
        stage at = stage::none;
        uint64_t id = 0;
        std::string address;
        uint64_t target = 0;    // catching_up: the index it must hold
        uint64_t deadline = 0;  // catching_up: uv_now() limit
        bool fired = false;     // libraft's callback came
        int status = 0;
        raft_node::change_fn done;
        struct raft_change req {};
        struct raft_transfer transfer {};
    };
    change_state change;

    impl(raft_settings s, store& store, spdlog::logger& logger) : cfg(std::move(s)), st(store), log(logger) {
        if (int rc = uv_loop_init(&loop); rc != 0) {
            throw std::runtime_error(std::string("cluster: uv_loop_init: ") + uv_strerror(rc));
        }
        try {
            start();
        } catch (...) {
            close();
            throw;
        }
    }

    ~impl() { close(); }
    impl(const impl&) = delete;
    impl& operator=(const impl&) = delete;

    void start() {
        // libuv writes to peers' sockets without MSG_NOSIGNAL: a member that
        // dies mid-write would otherwise kill this process with SIGPIPE.
        std::signal(SIGPIPE, SIG_IGN);
        std::filesystem::create_directories(cfg.dir);
        transport = std::make_unique<nodelay_transport>(&loop);
        if (transport->init_status() != 0) {
            throw std::runtime_error("cluster: cannot set up the Raft transport: " +
                                     std::string(raft_strerror(transport->init_status())));
        }
        if (int rc = raft_uv_init(&io.io, &loop, cfg.dir.c_str(), transport->get()); rc != 0) {
            throw std::runtime_error("cluster: cannot open the Raft log in " + cfg.dir + ": " + io.io.errmsg);
        }
        io_open = true;
        io.io.version = 2;  // + async_work, which raft_uv 0.15 lacks: ours runs it in libuv's pool
        io.owner = this;
        io.io.async_work = &impl::async_work;
        fsm.version = 3;
        fsm.data = this;
        fsm.apply = &impl::apply;
        fsm.snapshot = &impl::snapshot;
        fsm.snapshot_async = &impl::snapshot_async;
        fsm.snapshot_finalize = &impl::snapshot_finalize;
        fsm.restore = &impl::restore;
        if (int rc = raft_init(&r, &io.io, &fsm, cfg.id, cfg.address.c_str()); rc != 0) {
            throw std::runtime_error("cluster: raft_init: " + std::string(raft_errmsg(&r)));
        }
        raft_open = true;
        r.data = this;
        if (cfg.bootstrap) {
            bootstrap();
        }
        raft_set_election_timeout(&r, cfg.election_timeout_ms);
        raft_set_heartbeat_timeout(
            &r, cfg.heartbeat_ms != 0 ? cfg.heartbeat_ms : std::max(1u, cfg.election_timeout_ms / 10));
        // Without pre-vote a member that was cut off comes back with a
        // higher term and deposes a working leader; and libraft 0.15 turns
        // votes down while it knows a leader, so the first election after a
        // leader dies wastes a term.
        raft_set_pre_vote(&r, true);
        raft_set_snapshot_threshold(&r, cfg.snapshot_threshold);
        raft_set_snapshot_trailing(&r, cfg.snapshot_trailing);
        raft_set_install_snapshot_timeout(&r, cfg.install_snapshot_timeout_ms);
        if (int rc = raft_start(&r); rc != 0) {
            throw std::runtime_error("cluster: cannot start member " + std::to_string(cfg.id) + " at " + cfg.address +
                                     ": " + start_error(rc));
        }
    }

    // The first configuration, written once: every first member bootstraps
    // with the same one, so their first entries are the same.
    void bootstrap() {
        raft_configuration conf;
        raft_configuration_init(&conf);
        for (const auto& m : cfg.members) {
            if (int rc = raft_configuration_add(&conf, m.id, m.address.c_str(), RAFT_VOTER); rc != 0) {
                raft_configuration_close(&conf);
                throw std::runtime_error("cluster: member " + std::to_string(m.id) + ": " + raft_strerror(rc));
            }
        }
        int rc = raft_bootstrap(&r, &conf);
        raft_configuration_close(&conf);
        if (rc != 0 && rc != RAFT_CANTBOOTSTRAP) {  // CANTBOOTSTRAP: the log has its first entries
            throw std::runtime_error("cluster: bootstrap: " + std::string(raft_errmsg(&r)));
        }
    }

    void close() {
        change.done = nullptr;  // the owner is going: nobody to tell
        if (raft_open) {
            raft_close(&r, [](::raft* rr) { static_cast<impl*>(rr->data)->closed = true; });
            while (!closed) {
                uv_run(&loop, UV_RUN_ONCE);
            }
            raft_open = false;
        }
        if (io_open) {
            raft_uv_close(&io.io);
            io_open = false;
        }
        transport.reset();
        uv_walk(
            &loop,
            [](uv_handle_t* h, void*) {
                if (!uv_is_closing(h)) {
                    uv_close(h, nullptr);
                }
            },
            nullptr);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
    }

    static impl& of(raft_fsm* f) { return *static_cast<impl*>(f->data); }

    // The entry's index: libraft 0.15 applies in order and does not say.
    static int apply(raft_fsm* f, const raft_buffer* buf, void** result) {
        auto& self = of(f);
        *result = nullptr;
        const uint64_t index = self.r.last_applied + 1;
        auto payload = unframe(view(*buf));
        if (!payload) {
            self.fail("cannot apply entry " + std::to_string(index) + ": " + payload.error().message);
            return RAFT_MALFORMED;
        }
        auto rc = replication::apply_entry(self.st, index, *payload);
        if (!rc) {
            // libraft tries the entry again at the next commit; the owner
            // sees failed() and stops the member.
            // libraft tries the entry again at the next commit; the owner
            // sees failed() and stops the member.
            self.fail("cannot apply entry " + std::to_string(index) + ": " + rc.error().message);
            return RAFT_IOERR;
        }
        return 0;
    }

    static int snapshot(raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
        auto& self = of(f);
        *bufs = nullptr;
        *n = 0;
        if (self.in_flight > 0) {
            // A leader's store holds its proposals in flight: an image of
            // it now could hold an entry that is never committed.
            self.snapshot_wanted = true;
            return RAFT_BUSY;  // libraft asks again after the next commit
        }
        self.snapshot_wanted = false;
        self.snapshot_txn = self.st.begin(false);
        return 0;
    }

    // In the pool: reads the image from the transaction begun above.
    static int snapshot_async(raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
        auto& self = of(f);
        auto image = replication::read_image(*self.snapshot_txn);
        self.snapshot_txn.reset();
        if (!image) {
            return RAFT_IOERR;
        }
        auto* b = static_cast<raft_buffer*>(raft_malloc(sizeof(raft_buffer)));
        void* base = raft_malloc(image->size());
        if (b == nullptr || base == nullptr) {
            raft_free(b);
            raft_free(base);
            return RAFT_NOMEM;
        }
        std::memcpy(base, image->data(), image->size());
        b->base = base;
        b->len = image->size();
        *bufs = b;
        *n = 1;
        return 0;
    }

    static int snapshot_finalize(raft_fsm* f, raft_buffer* bufs[], unsigned* n) {
        auto& self = of(f);
        self.snapshot_txn.reset();
        if (*bufs != nullptr) {
            for (unsigned i = 0; i < *n; ++i) {
                raft_free((*bufs)[i].base);
            }
            raft_free(*bufs);
            ++self.snapshots;
        }
        *bufs = nullptr;
        *n = 0;
        return 0;
    }

    // At start (the member's own last snapshot) and when a leader sends one.
    static int restore(raft_fsm* f, raft_buffer* buf) {
        auto& self = of(f);
        auto rc = replication::install_image(self.st, view(*buf));
        if (!rc) {
            self.fail("cannot install a snapshot: " + rc.error().message);
            return RAFT_IOERR;  // libraft keeps the buffer
        }
        if (*rc) {
            ++self.installed;
            self.log.info("cluster: installed a snapshot of {} bytes at index {}", buf->len,
                          replication::image_index(view(*buf)).value());
        }
        raft_free(buf->base);
        return 0;
    }

    // libraft 0.15 leaves its own message empty when the transport cannot
    // listen (the address is taken): the io's message, else the code's.
    std::string start_error(int rc) {
        for (const char* said : {raft_errmsg(&r), static_cast<const char*>(io.io.errmsg)}) {
            if (said != nullptr && *said != '\0') {
                return said;
            }
        }
        return std::string(raft_strerror(rc)) + (rc == RAFT_IOERR ? " (is the Raft address in use?)" : "");
    }

    static int async_work(raft_io* io, raft_io_async_work* req, raft_io_async_work_cb cb) {
        static_assert(std::is_standard_layout_v<owned_io>);
        auto& self = *static_cast<impl*>(reinterpret_cast<owned_io*>(io)->owner);
        auto* w = new pool_work;
        w->work.data = w;
        w->req = req;
        w->cb = cb;
        int rc = uv_queue_work(
            &self.loop, &w->work,
            [](uv_work_t* u) {
                auto* job = static_cast<pool_work*>(u->data);
                job->status = job->req->work(job->req);
            },
            [](uv_work_t* u, int status) {
                auto* job = static_cast<pool_work*>(u->data);
                job->cb(job->req, status == UV_ECANCELED ? RAFT_CANCELED : job->status);
                delete job;
            });
        if (rc != 0) {
            delete w;
            return RAFT_IOERR;
        }
        return 0;
    }

    // Libraft's text for a call that failed: its errmsg when the call set
    // one (cleared before each call), else the code's.
    std::string raft_error(int rc) const {
        return r.errmsg[0] != '\0' ? std::string(r.errmsg) : std::string(raft_strerror(rc));
    }

    static void change_cb(struct raft_change* req, int status) {
        auto& self = *static_cast<impl*>(req->data);
        self.change.fired = true;
        self.change.status = status;
    }

    static void transfer_cb(struct raft_transfer* req) {
        auto& self = *static_cast<impl*>(req->data);
        self.change.fired = true;
        self.change.status = 0;
    }

    const raft_server* server(uint64_t id) const {
        for (unsigned i = 0; i < r.configuration.n; ++i) {
            if (r.configuration.servers[i].id == id) {
                return &r.configuration.servers[i];
            }
        }
        return nullptr;
    }

    uint64_t match_index(uint64_t id) const {
        for (unsigned i = 0; i < r.configuration.n; ++i) {
            if (r.configuration.servers[i].id == id && r.leader_state.progress != nullptr) {
                return r.leader_state.progress[i].match_index;
            }
        }
        return 0;
    }

    std::string describe_change() const {
        const auto who = "member " + std::to_string(change.id);
        switch (change.at) {
            case stage::adding: return "adding " + who + " at " + change.address;
            case stage::standby: return "adding " + who + " as a standby";
            case stage::catching_up:
                return "adding " + who + ": it holds entry " + std::to_string(match_index(change.id)) + " of " +
                       std::to_string(change.target);
            case stage::promoting: return "making " + who + " a voter";
            case stage::removing: return "removing " + who;
            case stage::transferring: return "handing leadership to " + who;
            case stage::none: break;
        }
        return {};
    }

    result<void> can_change() {
        if (raft_state(&r) != RAFT_LEADER) {
            return taskmill::fail(errc::not_leader, "this member does not lead");
        }
        if (change.at != stage::none) {
            return taskmill::fail(errc::conflict, "a membership change is under way (" + describe_change() +
                                                      "); one at a time: wait for it to end");
        }
        if (r.transfer != nullptr || r.configuration_uncommitted_index != 0 || r.leader_state.promotee_id != 0) {
            return taskmill::fail(errc::conflict,
                                  "a membership change is under way; one at a time: wait for it to end");
        }
        return {};
    }

    // Starts a role change of `id`; the stage waits for its callback.
    result<void> assign(uint64_t id, int role, stage next) {
        r.errmsg[0] = '\0';
        change.req = {};
        change.req.data = this;
        change.fired = false;
        if (int rc = raft_assign(&r, &change.req, id, role, &impl::change_cb); rc != 0) {
            return taskmill::fail(rc == RAFT_NOTLEADER ? errc::not_leader : errc::unavailable,
                                  "cannot make member " + std::to_string(id) +
                                      (role == RAFT_VOTER ? " a voter" : " a standby") + ": " + raft_error(rc));
        }
        change.at = next;
        return {};
    }

    void finish(result<void> outcome) {
        auto done = std::move(change.done);
        // req and transfer stay as they are: libraft's I/O may still hold
        // them (a TimeoutNow being sent).
        change.done = nullptr;
        change.at = stage::none;
        change.fired = false;
        change.address.clear();
        if (outcome) {
            log.info("cluster: membership change done");
        } else {
            log.warn("cluster: membership change failed: {}", outcome.error().message);
        }
        if (done) {
            done(std::move(outcome));
        }
    }

    // After uv_run: the next step of the change under way, if its callback
    // came or the member it waits for has caught up.
    void advance() {
        if (change.at == stage::none) {
            return;
        }
        const auto who = "member " + std::to_string(change.id);
        if (change.fired) {
            change.fired = false;
            const int status = change.status;
            const auto failed_with = [&](const std::string& what) {
                return taskmill::fail(status == RAFT_LEADERSHIPLOST ? errc::not_leader : errc::unavailable,
                                      what + ": " + raft_strerror(status));
            };
            switch (change.at) {
                case stage::adding:
                    if (status != 0) {
                        return finish(failed_with("cannot add " + who));
                    }
                    if (auto rc = assign(change.id, RAFT_STANDBY, stage::standby); !rc) {
                        return finish(rc);
                    }
                    return;
                case stage::standby:
                    if (status != 0) {
                        return finish(failed_with("cannot make " + who + " a standby"));
                    }
                    change.at = stage::catching_up;
                    change.target = raft_last_index(&r);
                    change.deadline = uv_now(&loop) + cfg.catch_up_timeout_ms;
                    break;  // it may have caught up already
                case stage::promoting:
                    return finish(status == 0 ? result<void>{} : failed_with("cannot make " + who + " a voter"));
                case stage::removing: return finish(status == 0 ? result<void>{} : failed_with("cannot remove " + who));
                case stage::transferring: {
                    raft_id leader = 0;
                    const char* address = nullptr;
                    raft_leader(&r, &leader, &address);
                    if (leader == change.id) {
                        return finish({});
                    }
                    return finish(
                        taskmill::fail(errc::unavailable, who + " did not take over within the election timeout (" +
                                                              std::to_string(r.election_timeout) + " ms)"));
                }
                case stage::catching_up:
                case stage::none: break;
            }
        }
        if (change.at != stage::catching_up) {
            return;
        }
        if (raft_state(&r) != RAFT_LEADER) {
            return finish(taskmill::fail(errc::not_leader, "this member stopped leading while " + describe_change() +
                                                               "; it stays a standby: ask the new leader"));
        }
        if (match_index(change.id) >= change.target) {
            if (auto rc = assign(change.id, RAFT_VOTER, stage::promoting); !rc) {
                return finish(rc);
            }
            return;
        }
        if (uv_now(&loop) >= change.deadline) {
            return finish(taskmill::fail(errc::unavailable,
                                         who + " did not catch up within " + std::to_string(cfg.catch_up_timeout_ms) +
                                             " ms (it holds entry " + std::to_string(match_index(change.id)) + " of " +
                                             std::to_string(change.target) +
                                             "); it stays a standby: start it, or remove it"));
        }
    }

    void fail(std::string why) {
        if (!failed) {
            log.error("cluster: {}", why);
            failed = std::move(why);
        }
    }
};

raft_node::raft_node(raft_settings settings, store& st, spdlog::logger& log)
    : impl_(std::make_unique<impl>(std::move(settings), st, log)) {}

raft_node::~raft_node() = default;

int raft_node::poll_fd() const { return uv_backend_fd(&impl_->loop); }

int raft_node::timeout_ms() const { return uv_backend_timeout(&impl_->loop); }

void raft_node::run_ready() {
    uv_run(&impl_->loop, UV_RUN_NOWAIT);
    impl_->advance();
}

bool raft_node::is_leader() const { return raft_state(&impl_->r) == RAFT_LEADER; }

uint64_t raft_node::term() const { return impl_->r.current_term; }

uint64_t raft_node::leader_id() const {
    raft_id leader = 0;
    const char* address = nullptr;
    raft_leader(&impl_->r, &leader, &address);
    return leader;
}

uint64_t raft_node::next_index() const { return raft_last_index(&impl_->r) + 1; }

std::size_t raft_node::in_flight() const { return impl_->in_flight; }

bool raft_node::snapshot_waiting() const { return impl_->snapshot_wanted; }

const std::optional<std::string>& raft_node::failed() const { return impl_->failed; }

raft_status raft_node::status() const {
    auto& r = impl_->r;
    raft_status s;
    s.id = r.id;
    s.state = static_cast<role>(raft_state(&r));
    s.term = r.current_term;
    raft_id leader = 0;
    const char* address = nullptr;
    raft_leader(&r, &leader, &address);
    s.leader_id = leader;
    s.leader_address = address != nullptr ? address : "";
    s.last_index = raft_last_index(&r);
    s.commit_index = r.commit_index;
    s.applied_index = raft_last_applied(&r);
    s.snapshots = impl_->snapshots;
    s.snapshots_installed = impl_->installed;
    for (unsigned i = 0; i < r.configuration.n; ++i) {
        const auto& server = r.configuration.servers[i];
        member_status m;
        m.id = server.id;
        m.address = server.address;
        m.kind = server.role == RAFT_VOTER ? "voter" : server.role == RAFT_STANDBY ? "standby" : "spare";
        if (s.state == role::leader && r.leader_state.progress != nullptr) {
            m.match_index = server.id == r.id ? s.last_index : r.leader_state.progress[i].match_index;
        }
        s.members.push_back(std::move(m));
    }
    return s;
}

result<void> raft_node::propose(std::string_view entry, done_fn done) {
    if (!is_leader()) {
        return fail(errc::conflict, "not the leader");
    }
    raft_buffer buf{};
    buf.len = framed_size(entry.size());
    buf.base = raft_malloc(buf.len);
    if (buf.base == nullptr) {
        return fail(errc::unavailable, "out of memory for an entry of " + std::to_string(entry.size()) + " bytes");
    }
    frame(entry, static_cast<char*>(buf.base));
    auto* p = new proposal;
    p->req.data = p;
    p->in_flight = &impl_->in_flight;
    p->done = std::move(done);
    int rc = raft_apply(&impl_->r, &p->req, &buf, 1, &proposal_done);
    if (rc != 0) {
        raft_free(buf.base);
        delete p;
        return fail(rc == RAFT_NOTLEADER ? errc::conflict : errc::unavailable,
                    std::string("cannot propose: ") + raft_strerror(rc));
    }
    ++impl_->in_flight;
    return {};
}

result<void> raft_node::add(uint64_t id, const std::string& address, change_fn done) {
    auto& m = *impl_;
    if (auto rc = m.can_change(); !rc) {
        return rc;
    }
    if (id == 0) {
        return fail(errc::invalid_argument, "a member's id is a positive number");
    }
    if (!ipv4_and_port(address)) {
        return fail(errc::invalid_argument,
                    "'" + address + "' is not a Raft address: IPv4:PORT (libraft 0.15 reads no host names)");
    }
    if (const auto* s = m.server(id)) {
        if (s->role == RAFT_VOTER || address != s->address) {
            return fail(errc::conflict, "member " + std::to_string(id) + " is already in the cluster, at " +
                                            s->address + (s->role == RAFT_VOTER ? ", a voter" : ""));
        }
        // Left a spare or a standby by an earlier add (its leader lost,
        // or it did not catch up in time): go on from there.
        m.change.id = id;
        m.change.address = address;
        m.change.done = std::move(done);
        m.log.info("cluster: adding member {} at {} again, from where an earlier add left it", id, address);
        if (s->role == RAFT_SPARE) {
            if (auto rc = m.assign(id, RAFT_STANDBY, impl::stage::standby); !rc) {
                m.change.done = nullptr;
                return rc;
            }
            return {};
        }
        m.change.at = impl::stage::catching_up;
        m.change.target = raft_last_index(&m.r);
        m.change.deadline = uv_now(&m.loop) + m.cfg.catch_up_timeout_ms;
        return {};
    }
    for (unsigned i = 0; i < m.r.configuration.n; ++i) {
        if (address == m.r.configuration.servers[i].address) {
            return fail(errc::conflict,
                        "member " + std::to_string(m.r.configuration.servers[i].id) + " is already at " + address);
        }
    }
    m.r.errmsg[0] = '\0';
    m.change.req = {};
    m.change.req.data = impl_.get();
    m.change.fired = false;
    if (int rc = raft_add(&m.r, &m.change.req, id, address.c_str(), &impl::change_cb); rc != 0) {
        return fail(rc == RAFT_NOTLEADER ? errc::not_leader : errc::unavailable,
                    "cannot add member " + std::to_string(id) + ": " + m.raft_error(rc));
    }
    m.change.at = impl::stage::adding;
    m.change.id = id;
    m.change.address = address;
    m.change.done = std::move(done);
    m.log.info("cluster: adding member {} at {}", id, address);
    return {};
}

result<void> raft_node::remove(uint64_t id, change_fn done) {
    auto& m = *impl_;
    if (auto rc = m.can_change(); !rc) {
        return rc;
    }
    if (id == 0) {
        return fail(errc::invalid_argument, "a member's id is a positive number");
    }
    if (m.server(id) == nullptr) {
        return fail(errc::not_found, "member " + std::to_string(id) + " is not in the cluster");
    }
    if (id == m.r.id) {
        return fail(errc::conflict, "member " + std::to_string(id) +
                                        " leads: hand leadership to another member first (taskmill cluster "
                                        "transfer), then remove it from the new leader");
    }
    m.r.errmsg[0] = '\0';
    m.change.req = {};
    m.change.req.data = impl_.get();
    m.change.fired = false;
    if (int rc = raft_remove(&m.r, &m.change.req, id, &impl::change_cb); rc != 0) {
        return fail(rc == RAFT_NOTLEADER ? errc::not_leader : errc::unavailable,
                    "cannot remove member " + std::to_string(id) + ": " + m.raft_error(rc));
    }
    m.change.at = impl::stage::removing;
    m.change.id = id;
    m.change.done = std::move(done);
    m.log.info("cluster: removing member {}", id);
    return {};
}

result<void> raft_node::transfer(uint64_t id, change_fn done) {
    auto& m = *impl_;
    if (auto rc = m.can_change(); !rc) {
        return rc;
    }
    if (id != 0) {
        const auto* s = m.server(id);
        if (s == nullptr) {
            return fail(errc::not_found, "member " + std::to_string(id) + " is not in the cluster");
        }
        if (id == m.r.id) {
            return fail(errc::invalid_argument, "member " + std::to_string(id) + " leads already");
        }
        if (s->role != RAFT_VOTER) {
            return fail(errc::invalid_argument, "member " + std::to_string(id) + " does not vote: it cannot lead");
        }
    }
    m.r.errmsg[0] = '\0';
    m.change.transfer = {};
    m.change.transfer.data = impl_.get();
    m.change.fired = false;
    if (int rc = raft_transfer(&m.r, &m.change.transfer, id, &impl::transfer_cb); rc != 0) {
        return fail(rc == RAFT_NOTFOUND    ? errc::not_found
                    : rc == RAFT_NOTLEADER ? errc::not_leader
                                           : errc::unavailable,
                    "cannot hand leadership over: " + m.raft_error(rc));
    }
    m.change.at = impl::stage::transferring;
    m.change.id = m.change.transfer.id;  // the one libraft picked, for 0
    m.change.done = std::move(done);
    m.log.info("cluster: handing leadership to member {}", m.change.id);
    return {};
}

bool raft_node::changing() const {
    const auto& r = impl_->r;
    return impl_->change.at != impl::stage::none || r.transfer != nullptr;
}

std::string raft_node::change_text() const { return impl_->describe_change(); }

result<void> raft_node::barrier(done_fn done) {
    auto* b = new barrier_request;
    b->req.data = b;
    b->done = std::move(done);
    int rc = raft_barrier(&impl_->r, &b->req, &barrier_done);
    if (rc != 0) {
        delete b;
        return fail(rc == RAFT_NOTLEADER ? errc::conflict : errc::unavailable,
                    std::string("cannot place a barrier: ") + raft_strerror(rc));
    }
    return {};
}

}  // namespace taskmill::broker::cluster
