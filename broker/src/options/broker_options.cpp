#include "options/broker_options.hpp"

#include <limits>

#include <taskmill/config/loader.hpp>
#include <taskmill/logging/stderr_logger.hpp>
#include <taskmill/protocol/curve_keys.hpp>
#include <taskmill/protocol/duration.hpp>

#include "http/http_server.hpp"

namespace taskmill::broker {
namespace {

constexpr auto int64_max = std::numeric_limits<int64_t>::max();
const std::vector<std::string> log_levels{"trace", "debug", "info", "warn", "error", "critical", "off"};

// What the flags and the file hold before it becomes a broker_config.
struct raw {
    std::string config_file;
    std::string durability = "sync";
    std::string curve_key_file;
    std::vector<std::string> allow_client;
    std::vector<std::string> allow_host;
    bool help = false;
    bool print_config = false;
    bool check_store = false;
    // retention-* as written; parsed by load_retention.
    std::string retention_succeeded = "24h";
    std::string retention_failed = "7d";
    std::string retention_cancelled = "7d";
    std::string retention_expired = "7d";
    std::string handler_memory = "7d";  // parsed by load_handler_memory
    std::string peers;                  // parsed by load_cluster
};

void declare_server(config::loader& l, broker_config& g, std::string& log_level, raw& r) {
    l.add("data-dir", config::text(g.data_dir), "LMDB and endpoints.json folder");
    l.add("frontend", config::text(g.frontend), "client endpoint (ROUTER)");
    l.add("backend", config::text(g.backend), "worker endpoint (ROUTER)");
    l.add("events", config::text(g.events), "events endpoint (PUB); empty = off");
    l.add("durability", config::choice(r.durability, {"sync", "none"}), "sync | none");
    l.add("heartbeat-ms", config::number(g.heartbeat_ms, int64_t{1}), "heartbeat interval");
    l.add("liveness-ms", config::number(g.liveness_ms, int64_t{1}), "silence before a worker is dropped");
    // The map size is kept in bytes: more than 2^44 MiB would overflow.
    l.add("map-size-mb", config::number(g.map_size_mb, uint64_t{1}, uint64_t{1} << 43), "LMDB map size (MiB)");
    l.add("max-body-bytes", config::number(g.max_body_bytes, std::size_t{1}),
          "largest message body received; what the broker sends stays under it and under 16 MiB");
    l.add("default-retries", config::number(g.default_retries, 0, 1000), "retries when a task sets none (0..1000)");
    l.add("max-crashes", config::number(g.max_crashes, uint32_t{1}), "worker deaths before a task is poison");
    l.add("backoff-base-ms", config::number(g.backoff_base_ms, int64_t{0}), "first retry delay");
    l.add("backoff-factor", config::real(g.backoff_factor, 1.0, 1000.0), "retry delay growth (1..1000)");
    l.add("backoff-cap-ms", config::number(g.backoff_cap_ms, int64_t{0}), "longest retry delay");
    l.add("lease-grace-ms", config::number(g.lease_grace_ms, int64_t{0}, int64_max / 4),
          "a lease lasts timeout (if any) + this + liveness-ms; see PROTOCOL.md 5.2");
    l.add("batch", config::number(g.batch, std::size_t{1}), "messages drained per socket per turn");
    l.add("log-level", config::choice(log_level, log_levels), "trace debug info warn error critical off");
}

void declare_limits_and_security(config::loader& l, broker_config& g, raw& r) {
    l.add("curve-key-file", config::text(r.curve_key_file), "broker key pair (taskmill keygen); turns CURVE on");
    l.add("allow-client", config::list(r.allow_client),
          "client public key or .pub file allowed on the frontend (repeat; * = any)");
    l.add("allow-host", config::list(r.allow_host),
          "host public key or .pub file allowed on the backend (repeat; * = any)");
    auto& frame = l.add("max-frame-bytes", config::number(g.max_frame_bytes),
                        "largest frame; a peer sending more is disconnected (0 = max-body-bytes + 1 MiB)");
    // --print-config shows the limit in force, not the 0 that derives it.
    frame.v.show = [&g] { return std::vector<std::string>{std::to_string(frame_limit(g))}; };
    l.add("client-hwm", config::number(g.client_hwm, 0),
          "replies queued to a client that does not read them; past it they are dropped (0 = no limit)");
    l.add("max-waits-per-client", config::number(g.max_waits_per_client, std::size_t{1}),
          "STATUS requests with wait_ms one client may have parked");
    l.add("max-waits", config::number(g.max_waits, std::size_t{1}), "STATUS requests with wait_ms parked in all");
    l.add("http", config::text(g.http), "HTTP API, /metrics and dashboard on ADDR:PORT (port 0 = pick); off if unset");
    l.add("http-token", config::list(g.http_tokens), "API token NAME:ROLE:SECRET, ROLE = read | write (repeat)")
        .secret = true;
    l.add("http-anonymous", config::choice(g.http_anonymous, {"none", "read", "write"}),
          "role of HTTP requests without a token: none | read | write");
    l.add("allow-empty-store", config::switch_flag(g.allow_empty_store),
          "start even when data.mdb is empty (0 bytes) where a store was before");
}

void declare_retention(config::loader& l, raw& r) {
    l.add("retention-succeeded", config::text(r.retention_succeeded),
          "keep SUCCEEDED tasks this long, then delete them (30s 5m 24h 7d; 0 = for ever)");
    l.add("retention-failed", config::text(r.retention_failed),
          "keep FAILED (dead-letter) tasks this long (0 = for ever)");
    l.add("retention-cancelled", config::text(r.retention_cancelled), "keep CANCELLED tasks this long (0 = for ever)");
    l.add("retention-expired", config::text(r.retention_expired), "keep EXPIRED tasks this long (0 = for ever)");
}

void declare_handler_memory(config::loader& l, raw& r) {
    l.add("handler-memory", config::text(r.handler_memory),
          "warn at submit (refuse with --strict) when no worker has offered the handler for this long (7d; at least "
          "1s)");
}

void load_handler_memory(broker_config& g, const raw& r) {
    auto v = protocol::parse_duration_ms(r.handler_memory);
    if (!v) throw config::error("handler-memory: " + v.error().message);
    if (*v < 1000) throw config::error("handler-memory: must be at least 1s, not '" + r.handler_memory + "'");
    g.handler_memory_ms = *v;
}

void load_retention(retention_config& out, const raw& r) {
    auto ms = [](const char* name, const std::string& text) {
        auto v = protocol::parse_duration_ms(text);
        if (!v) throw config::error(std::string(name) + ": " + v.error().message);
        return *v;
    };
    out.succeeded_ms = ms("retention-succeeded", r.retention_succeeded);
    out.failed_ms = ms("retention-failed", r.retention_failed);
    out.cancelled_ms = ms("retention-cancelled", r.retention_cancelled);
    out.expired_ms = ms("retention-expired", r.retention_expired);
}

void declare_cluster(config::loader& l, cluster_config& c, raw& r) {
    l.add("node-id", config::number(c.node_id, uint64_t{0}),
          "this broker's id in a cluster (docs/CLUSTER.md); 0 = a single broker");
    l.add("raft-address", config::text(c.raft_address),
          "IPv4:PORT of this member's Raft transport; empty = its entry in peers");
    l.add("peers", config::text(r.peers), "every member's Raft transport: ID=IPv4:PORT,...");
    l.add("election-timeout-ms", config::number(c.election_timeout_ms, int64_t{50}, int64_t{60000}),
          "silence from the leader before a member stands for election (50..60000)");
    l.add("join", config::boolean(c.join),
          "true: this member joins a running cluster, whose leader adds it (taskmill cluster add); "
          "false: a first member, starting the cluster with peers");
}

// "1.2.3.4:5" with a dotted IPv4 address (all libraft 0.15's transport reads).
bool ipv4_and_port(const std::string& a) {
    auto colon = a.rfind(':');
    if (colon == std::string::npos) return false;
    int dots = 0;
    for (std::size_t i = 0; i < colon; ++i) {
        if (a[i] == '.') ++dots;
        else if (a[i] < '0' || a[i] > '9') return false;
    }
    const auto port = a.substr(colon + 1);
    if (dots != 3 || port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        return false;
    return std::stoi(port) > 0 && std::stoi(port) < 65536;
}

void load_cluster(cluster_config& c, const raw& r) {
    if (c.node_id == 0) {
        if (!r.peers.empty() || !c.raft_address.empty() || c.join)
            throw config::error("peers / raft-address / join need node-id");
        return;
    }
    std::size_t from = 0;
    while (from <= r.peers.size() && !r.peers.empty()) {
        auto comma = r.peers.find(',', from);
        auto item = r.peers.substr(from, comma == std::string::npos ? std::string::npos : comma - from);
        auto eq = item.find('=');
        if (eq == std::string::npos || eq == 0 ||
            item.substr(0, eq).find_first_not_of("0123456789") != std::string::npos)
            throw config::error("peers: '" + item + "' is not ID=IPv4:PORT");
        cluster_member m{std::stoull(item.substr(0, eq)), item.substr(eq + 1)};
        if (m.id == 0 || !ipv4_and_port(m.address))
            throw config::error("peers: '" + item + "' is not ID=IPv4:PORT with ID > 0");
        for (const auto& other : c.peers) {
            if (other.id == m.id || other.address == m.address)
                throw config::error("peers: '" + item + "' repeats an id or an address");
        }
        c.peers.push_back(m);
        if (comma == std::string::npos) break;
        from = comma + 1;
    }
    const cluster_member* self = nullptr;
    for (const auto& m : c.peers) {
        if (m.id == c.node_id) self = &m;
    }
    if (self == nullptr) throw config::error("peers must list node-id " + std::to_string(c.node_id));
    if (c.raft_address.empty()) c.raft_address = self->address;
    if (c.raft_address != self->address)
        throw config::error("raft-address " + c.raft_address + " is not node " + std::to_string(c.node_id) +
                            "'s address in peers (" + self->address + ")");
}

void declare_commands(config::loader& l, raw& r) {
    l.add("help", config::switch_flag(r.help), "show this help", config::scope::flag_only).short_name = 'h';
    l.add("config", config::text(r.config_file), "INI file; every option not marked may be set there",
          config::scope::flag_or_environment);
    l.add("print-config", config::switch_flag(r.print_config),
          "print the effective configuration (an INI file, with where each value came from) and exit",
          config::scope::flag_only);
    l.add("check-store", config::switch_flag(r.check_store),
          "check the store in data-dir and exit: 0 healthy, 3 in use, 4 damaged", config::scope::flag_only);
}

// The CURVE keys named in the options, read and checked.
void load_keys(broker_config& g, const raw& r) {
    auto need = [](auto res) {
        if (!res) throw config::error(res.error().message);
        return *res;
    };
    if (r.curve_key_file.empty()) {
        if (!r.allow_client.empty() || !r.allow_host.empty()) {
            throw config::error("allow-client / allow-host need curve-key-file");
        }
        return;
    }
    auto kp = need(taskmill::curve::load_key_pair(r.curve_key_file));
    g.curve_public_key = kp.public_key;
    g.curve_secret_key = kp.secret_key;
    for (const auto& k : r.allow_client)
        g.allow_clients.push_back(k == "*" ? k : need(taskmill::curve::load_public_key(k)));
    for (const auto& k : r.allow_host)
        g.allow_hosts.push_back(k == "*" ? k : need(taskmill::curve::load_public_key(k)));
}

// The checks that involve more than one option.
void check_together(const broker_config& g) {
    if (g.liveness_ms <= g.heartbeat_ms) throw config::error("need 0 < --heartbeat-ms < --liveness-ms");
    if (!g.http.empty() || !g.http_tokens.empty()) {
        http_options h;
        h.listen = g.http.empty() ? "127.0.0.1:0" : g.http;  // tokens without --http are checked too
        h.tokens = g.http_tokens;
        h.anonymous = g.http_anonymous;
        try {
            http::check_options(h);
        } catch (const std::exception& e) {
            throw config::error(e.what());
        }
    }
}

}  // namespace

broker_options load_broker_options(int argc, const char* const* argv, const std::map<std::string, std::string>& env) {
    broker_options out;
    raw r;
    config::loader l("taskmill-broker");
    declare_commands(l, r);
    declare_server(l, out.cfg, out.log_level, r);
    l.add("log-format", config::choice(out.log_format, logging::log_format_names),
          "text | json (one JSON object a line; docs/OPERATIONS.md, \"Logs as JSON\")");
    declare_limits_and_security(l, out.cfg, r);
    l.file_option("config");
    declare_retention(l, r);
    declare_handler_memory(l, r);
    declare_cluster(l, out.cfg.cluster, r);
    l.sections("schedule.", [&](const config::section& s) { out.cfg.schedules.push_back(read_schedule_section(s)); });
    l.sections("queue.", [&](const config::section& s) { out.cfg.queues.push_back(read_queue_section(s)); });
    l.sections("handler.", [&](const config::section& s) { out.cfg.handlers.push_back(read_handler_section(s)); });
    l.load(argc, argv, env);
    if (r.help) {
        out.mode = broker_mode::help;
        out.text = l.help("usage: taskmill-broker [options]");
        return out;
    }
    load_keys(out.cfg, r);
    load_retention(out.cfg.retention, r);
    load_handler_memory(out.cfg, r);
    load_cluster(out.cfg.cluster, r);
    out.cfg.mode = r.durability == "sync" ? durability::sync : durability::none;
    check_together(out.cfg);
    if (r.print_config) {
        out.mode = broker_mode::print_config;
        out.text = l.print_config();
    } else if (r.check_store) {
        out.mode = broker_mode::check_store;
    }
    return out;
}

}  // namespace taskmill::broker
