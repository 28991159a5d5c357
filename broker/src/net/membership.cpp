#include "net/membership.hpp"

#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <utility>

#include <nlohmann/json.hpp>

#include "replication/recording_store.hpp"

namespace taskmill::broker {
namespace {

namespace fs = std::filesystem;

// Left in the data folder while this member's store may hold turns it led
// that the cluster has not confirmed.
constexpr const char* led_mark = "cluster-led";
// meta: who leads, written by each new leader (replicated), read by
// followers to redirect clients.
constexpr std::string_view meta_leader = "cluster-leader";
// Entries in flight at most: enough that a commit's fsync does not bound
// the turns, few enough that a lost leadership refuses little.
constexpr std::size_t max_in_flight = 8;

// An endpoint to tell clients on other machines: a frontend bound to every
// interface (tcp://*:5555) is reached at this member's Raft address, which
// the other members reach too; the bound endpoint names 127.0.0.1 then.
std::string advertised(const std::string& configured, const std::string& bound, const std::string& raft_address) {
    const bool wildcard =
        configured.find("://*:") != std::string::npos || configured.find("://0.0.0.0:") != std::string::npos;
    const auto port = bound.rfind(':');
    if (!wildcard || port == std::string::npos) {
        return bound;
    }
    return "tcp://" + raft_address.substr(0, raft_address.rfind(':')) + bound.substr(port);
}

void empty_store(store& st) {
    auto txn = st.begin(true);
    for (int t = 0; t < table_count; ++t) {
        if (auto rc = txn->clear(static_cast<table>(t)); !rc) {
            throw std::runtime_error("cluster: cannot empty the store: " + rc.error().message);
        }
    }
    if (auto rc = txn->commit(); !rc) {
        throw std::runtime_error("cluster: cannot empty the store: " + rc.error().message);
    }
}

}  // namespace

membership::membership(const broker_config& cfg, store& st, spdlog::logger& log, send_fn send, refuse_fn refuse)
    : cfg_(cfg), st_(st), log_(log), send_(std::move(send)), refuse_(std::move(refuse)) {
    if (fs::exists(fs::path(cfg_.data_dir) / led_mark)) {
        rebuild("it was leading when it stopped");
    }
    node_ = make_node();
    // Each write transaction's entry is proposed as it commits, so the
    // index it recorded is the one the log gives it.
    recording_ = replication::make_recording_store(
        st_, [this](std::string entry) { propose(std::move(entry)); }, [this] { return node_->next_index(); });
}

membership::~membership() {
    // A leader stopped with every entry confirmed holds nothing the others
    // lack: no rebuild at its next start.
    if (state_ == state::leading && !lost_entry_ && proposed_ == confirmed_) {
        std::error_code ec;
        fs::remove(fs::path(cfg_.data_dir) / led_mark, ec);
    }
}

std::unique_ptr<cluster::raft_node> membership::make_node() {
    cluster::raft_settings s;
    s.id = cfg_.cluster.node_id;
    s.address = cfg_.cluster.raft_address;
    for (const auto& p : cfg_.cluster.peers) {
        s.members.push_back({p.id, p.address});
    }
    // A joining member writes no first configuration: the leader that adds
    // it sends it the cluster's log (a first configuration of its own would
    // be a different entry at the same index as the cluster's).
    s.bootstrap = !cfg_.cluster.join;
    s.dir = (fs::path(cfg_.data_dir) / "raft").string();
    s.election_timeout_ms = static_cast<unsigned>(cfg_.cluster.election_timeout_ms);
    return std::make_unique<cluster::raft_node>(s, st_, log_);
}

void membership::run_ready() {
    node_->run_ready();
    if (const auto& failed = node_->failed()) {
        throw std::runtime_error("cluster member " + std::to_string(cfg_.cluster.node_id) + ": " + *failed);
    }
    // A leader in a new term took over (itself again, maybe, after losing it).
    if (const auto leader = node_->leader_id(); leader != 0 && node_->term() != leader_term_) {
        leader_term_ = node_->term();
        ++leader_changes_;
    }
    const bool raft_leads = node_->is_leader();
    if (state_ == state::following && raft_leads) {
        state_ = state::catching_up;
        const uint64_t gen = generation_;
        // Only noted here: this runs inside libraft's callback, and what
        // start_leading() does may throw (a full store), which must not
        // cross libraft's C frames.
        auto rc = node_->barrier([this, gen](bool ok) { barrier_passed_ = gen == generation_ && ok; });
        if (!rc) {
            state_ = state::following;
        }
    } else if (state_ != state::following && !raft_leads) {
        stop_leading("this member no longer leads");
    }
    if (std::exchange(barrier_passed_, false) && state_ == state::catching_up && raft_leads) {
        start_leading();
    }
    if (asked_ && asked_->outcome) {
        auto outcome = std::move(*asked_->outcome);
        end_change(std::move(outcome));
    }
    start_change();
}

void membership::request_change(change_kind kind, uint64_t id, std::string address, change_fn done) {
    if (asked_) {
        const auto doing = node_->change_text();
        done(fail(errc::conflict, "a membership change is under way" + (doing.empty() ? "" : " (" + doing + ")") +
                                      "; one at a time: wait for it to end"));
        return;
    }
    // Built, then moved in: clang 14 does not see the nested struct as
    // default-constructible for optional::emplace() inside its class.
    change_request r;
    r.kind = kind;
    r.id = id;
    r.address = std::move(address);
    r.done = std::move(done);
    r.seq = ++asked_seq_;
    asked_ = std::move(r);
}

// Hands the change asked to the Raft member: between turns, a transfer
// only once the entries in flight have committed.
void membership::start_change() {
    if (!asked_ || asked_->started) {
        return;
    }
    if (state_ != state::leading) {
        end_change(fail(errc::not_leader, leader_text()));
        return;
    }
    if (asked_->kind == change_kind::transfer && node_->in_flight() > 0) {
        return;  // no turn is taken meanwhile (can_take_turn)
    }
    asked_->started = true;
    auto answer = [this, seq = asked_->seq](result<void> outcome) {
        if (asked_ && asked_->seq == seq) {
            asked_->outcome = std::move(outcome);
        }
    };
    result<void> rc;
    switch (asked_->kind) {
        case change_kind::add: rc = node_->add(asked_->id, asked_->address, answer); break;
        case change_kind::remove: rc = node_->remove(asked_->id, answer); break;
        case change_kind::transfer: rc = node_->transfer(asked_->id, answer); break;
    }
    if (!rc) {
        end_change(std::move(rc));
    }
}

void membership::end_change(result<void> outcome) {
    auto done = std::move(asked_->done);
    asked_.reset();
    done(std::move(outcome));
}

void membership::start_leading() {
    mark_led(true);
    state_ = state::leading;
    change_ = change::lead;
    proposed_ = confirmed_ = 0;
    lost_entry_ = false;
    log_.info("cluster: member {} leads (term {})", cfg_.cluster.node_id, node_->status().term);
    announce_leader();
}

// The first entry of a leadership: where clients and hosts find it.
void membership::announce_leader() {
    const auto& raft = cfg_.cluster.raft_address;
    nlohmann::json j = {{"id", cfg_.cluster.node_id},
                        {"frontend", advertised(cfg_.frontend, eps_.frontend, raft)},
                        {"backend", advertised(cfg_.backend, eps_.backend, raft)},
                        {"events", advertised(cfg_.events, eps_.events, raft)},
                        {"http", eps_.http}};
    auto txn = recording_->begin(true);
    if (!txn->put(table::meta, meta_leader, j.dump()) || !txn->commit()) {
        throw std::runtime_error("cluster: cannot record the leader in the store");
    }
    outbox none;
    after_turn(none);
}

void membership::stop_leading(const std::string& why) {
    ++generation_;
    const bool unconfirmed = lost_entry_ || proposed_ != confirmed_;
    for (auto& h : held_) {
        refuse_(h.out, why);
    }
    held_.clear();
    if (state_ == state::leading) {
        change_ = change::follow;
    }
    state_ = state::following;
    log_.warn("cluster: member {} stops leading: {}", cfg_.cluster.node_id, why);
    // A transfer under way ends by itself (the target leads, or the
    // election timeout passes), unless the Raft member is closed below.
    if (asked_ && !asked_->outcome && (asked_->kind != change_kind::transfer || !asked_->started || unconfirmed)) {
        end_change(fail(errc::not_leader, "this member stopped leading before the change ended (" + why +
                                              "); it may still take effect: see cluster status at the new leader"));
    }
    if (unconfirmed) {
        node_.reset();
        rebuild("entries it led were not confirmed");
        node_ = make_node();
    } else {
        mark_led(false);
    }
}

// Empties the store: the member's log and snapshots fill it again.
void membership::rebuild(const std::string& why) {
    log_.warn("cluster: member {} rebuilds its store from its log and snapshots: {}", cfg_.cluster.node_id, why);
    empty_store(st_);
    mark_led(false);
}

void membership::mark_led(bool led) {
    const auto path = fs::path(cfg_.data_dir) / led_mark;
    if (!led) {
        fs::remove(path);
        return;
    }
    std::ofstream out(path, std::ios::trunc);
    out << cfg_.cluster.node_id << "\n";
    out.flush();
    if (!out) {
        throw std::runtime_error("cluster: cannot write " + path.string());
    }
}

membership::change membership::take_change() { return std::exchange(change_, change::none); }

bool membership::can_take_turn() const {
    // During a transfer libraft refuses new entries: no turn may write one.
    const bool transferring = asked_ && asked_->kind == change_kind::transfer;
    return state_ == state::leading && !transferring && node_->in_flight() < max_in_flight &&
           !node_->snapshot_waiting();
}

void membership::after_turn(outbox& out) {
    if (proposed_ == confirmed_ && held_.empty()) {
        send_(out);
        out.clear();
        return;
    }
    if (!out.messages.empty() || !out.events.empty()) {
        held_.push_back({proposed_, std::move(out)});
    }
    out.clear();
}

void membership::propose(std::string entry) {
    if (state_ != state::leading) {
        // Written while not leading: only an engine of an ended leadership
        // could; its store is rebuilt.
        lost_entry_ = true;
        return;
    }
    const uint64_t seq = ++proposed_;
    const uint64_t gen = generation_;
    auto rc = node_->propose(entry, [this, seq, gen](bool ok) {
        if (gen != generation_) {
            return;
        }
        if (ok) {
            committed(seq);
        } else {
            lost_entry_ = true;
        }
    });
    if (!rc) {
        // Committed to the store, never in the log: the store is ahead.
        lost_entry_ = true;
        log_.warn("cluster: {}", rc.error().message);
    }
}

void membership::committed(uint64_t seq) {
    confirmed_ = seq;
    while (!held_.empty() && held_.front().after <= seq) {
        send_(held_.front().out);
        held_.pop_front();
    }
}

std::string membership::leader_frontend() const { return leader_endpoint("frontend"); }
std::string membership::leader_backend() const { return leader_endpoint("backend"); }
std::string membership::leader_http() const { return leader_endpoint("http"); }

std::string membership::leader_endpoint(const char* which) const {
    auto txn = st_.begin(false);
    auto v = txn->get(table::meta, meta_leader);
    if (!v) {
        return {};
    }
    auto j = nlohmann::json::parse(*v, nullptr, false);
    if (j.is_discarded() || j.value("id", uint64_t{0}) != node_->status().leader_id) {
        return {};  // an older leader's: the new one has not written yet
    }
    return j.value(which, std::string{});
}

cluster_figures membership::figures() const {
    const auto st = node_->status();
    cluster_figures f;
    f.node_id = cfg_.cluster.node_id;
    f.leading = leading();
    f.term = st.term;
    f.leader_changes = leader_changes_;
    f.last_index = st.last_index;
    f.commit_index = st.commit_index;
    f.applied_index = st.applied_index;
    f.snapshots = st.snapshots;
    f.snapshots_installed = st.snapshots_installed;
    if (f.leading) {
        for (const auto& m : st.members) {
            if (m.id != f.node_id) {
                f.lag[m.id] = st.last_index > m.match_index ? st.last_index - m.match_index : 0;
            }
        }
    }
    return f;
}

std::string membership::describe() const {
    const auto st = node_->status();
    nlohmann::json members = nlohmann::json::array();
    for (const auto& m : st.members) {
        members.push_back({{"id", m.id}, {"address", m.address}, {"kind", m.kind}, {"match_index", m.match_index}});
    }
    nlohmann::json j = {{"node_id", cfg_.cluster.node_id},
                        {"role", cluster::to_string(st.state)},
                        {"serving", state_ == state::leading},
                        {"term", st.term},
                        {"leader_id", st.leader_id},
                        {"leader_frontend", leader_frontend()},
                        {"last_index", st.last_index},
                        {"commit_index", st.commit_index},
                        {"applied_index", st.applied_index},
                        {"snapshots", st.snapshots},
                        {"members", members}};
    auto bytes = nlohmann::json::to_msgpack(j);
    return {bytes.begin(), bytes.end()};
}

std::string membership::leader_text() const {
    auto s = node_->status();
    if (s.leader_id == 0) {
        return "member " + std::to_string(cfg_.cluster.node_id) + " knows no leader now (an election is under way)";
    }
    auto fe = leader_frontend();
    return "member " + std::to_string(cfg_.cluster.node_id) + " does not lead; the leader is member " +
           std::to_string(s.leader_id) + (fe.empty() ? "" : " at " + fe);
}

}  // namespace taskmill::broker
