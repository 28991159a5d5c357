// One function per command; each parses its own flags and talks to the
// broker through taskmill::client.
#include <algorithm>
#include <chrono>
#include <iostream>
#include <map>
#include <optional>

#include <unistd.h>

#include <boost/program_options.hpp>

#include <taskmill/client/json.hpp>
#include <taskmill/protocol/duration.hpp>

#include "cli.hpp"
#include "output.hpp"

namespace po = boost::program_options;

namespace taskmill::cli {

int run_events(const global_options& g, const std::vector<std::string>& args);  // events.cpp
int run_workflow(global_options& g, const std::vector<std::string>& args);      // workflow_cmds.cpp
int run_schedules(global_options& g, const std::vector<std::string>& args);     // workflow_cmds.cpp
int run_queues(global_options& g, const std::vector<std::string>& args);        // queue_cmds.cpp
int run_queue(global_options& g, const std::vector<std::string>& args);         // queue_cmds.cpp
int run_handler(global_options& g, const std::vector<std::string>& args);       // queue_cmds.cpp
// Workflow listing and schedule control (workflow_cmds.cpp).
int run_workflows(global_options& g, const std::vector<std::string>& args);
int run_schedule(global_options& g, const std::vector<std::string>& args);
// Operator verbs (bulk_cmds.cpp): bulk_flags says whether cancel/retry got
// filter flags, run_bulk runs cancel/retry/delete by filter.
bool bulk_flags(const std::vector<std::string>& args);
int run_bulk(global_options& g, const std::vector<std::string>& args);
int cmd_delete(global_options& g, const std::vector<std::string>& args);
int cmd_run_now(global_options& g, const std::vector<std::string>& args);
int cmd_job(global_options& g, const std::vector<std::string>& args);

namespace {

using client::milliseconds;

// Parses a command's arguments (args[0] is the command itself). Every
// command also accepts --json after its name.
po::variables_map parse(global_options& g, const std::vector<std::string>& args, po::options_description& desc,
                        const po::positional_options_description& pos) {
    desc.add_options()("json", po::bool_switch(), "print JSON");
    po::variables_map vm;
    try {
        std::vector<std::string> rest(args.begin() + 1, args.end());
        po::store(po::command_line_parser(rest).options(desc).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(args[0] + ": " + e.what());
    }
    if (vm["json"].as<bool>()) {
        g.json = true;
    }
    return vm;
}

std::string need_id(const po::variables_map& vm, const std::string& command) {
    if (!vm.count("id")) {
        throw usage_error(command + ": missing task ID");
    }
    return vm["id"].as<std::string>();
}

client::client connect(const global_options& g, bool strict = false) {
    client::client_options o;
    o.strict = strict;
    o.endpoint = g.broker;
    o.request_timeout = seconds_arg("--timeout", g.timeout_s);
    apply_curve(g, o);
    return client::client(o);
}

// A finished (or unfinished) task's outcome as an exit code, with a line on
// stderr when it did not succeed.
int task_exit(const client::task_info& t) {
    if (t.succeeded()) {
        return exit_ok;
    }
    if (t.is_final()) {
        std::cerr << "taskmill: task " << t.id << " " << t.state << (t.error.empty() ? "" : ": " + t.error) << "\n";
    } else {
        std::cerr << "taskmill: task " << t.id << " is " << t.state << " (not finished)\n";
    }
    return exit_task_failed;
}

void print_change(const global_options& g, const client::change_info& c) {
    if (g.json) {
        std::cout << nlohmann::json{{"ids", c.ids}, {"note", c.note}}.dump() << "\n";
        return;
    }
    for (const auto& id : c.ids) {
        std::cout << id << "\n";
    }
    if (!c.note.empty()) {
        std::cout << c.note << "\n";
    }
}

// Waits for the task's final state; with `live`, shows its state and
// progress on one line of stderr (a terminal) meanwhile, and clears it.
result<client::task_info> wait_showing_progress(const client::task_handle& h, bool live) {
    if (!live) {
        return h.get();
    }
    for (;;) {
        auto t = h.get(milliseconds(500));
        if (t || t.error().code != errc::conflict) {
            std::cerr << "\r\033[K" << std::flush;
            return t;
        }
        if (auto s = h.status()) {
            std::cerr << "\r\033[K" << progress_line(*s) << std::flush;
        }
    }
}

client::task_options submit_options(const po::variables_map& vm) {
    client::task_options o;
    o.handler = vm["handler"].as<std::string>();
    if (vm.count("payload")) {
        auto bytes = client::json_text_to_msgpack(vm["payload"].as<std::string>());
        if (!bytes) {
            throw usage_error("invalid --payload JSON: " + bytes.error().message);
        }
        o.payload = client::payload::raw(std::move(*bytes));
    }
    if (vm.count("queue")) o.queue = vm["queue"].as<std::string>();
    if (vm.count("priority")) {
        auto p = vm["priority"].as<int>();
        if (p < 0 || p > 9) {
            throw usage_error("--priority must be 0..9");
        }
        o.priority = p;
    }
    if (vm.count("retries")) {
        auto r = vm["retries"].as<int>();
        if (r < 0) {
            throw usage_error("--retries must be >= 0");
        }
        o.retries = r;
    }
    if (vm.count("delay")) o.delay = seconds_arg("--delay", vm["delay"].as<double>());
    if (vm.count("timeout")) o.timeout = seconds_arg("--timeout", vm["timeout"].as<double>());
    if (vm.count("ttl")) o.ttl = seconds_arg("--ttl", vm["ttl"].as<double>());
    if (vm.count("tag")) o.tags = vm["tag"].as<std::vector<std::string>>();
    if (vm.count("key")) o.key = vm["key"].as<std::string>();
    if (vm.count("keep")) {
        auto ms = protocol::parse_duration_ms(vm["keep"].as<std::string>());
        if (!ms) {
            throw usage_error("--keep: " + ms.error().message);
        }
        o.keep = std::chrono::milliseconds(*ms);
    }
    return o;
}

int cmd_submit(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    desc.add_options()("handler", po::value<std::string>())("payload", po::value<std::string>())(
        "queue", po::value<std::string>())("priority", po::value<int>())("delay", po::value<double>())(
        "retries", po::value<int>())("timeout", po::value<double>())("ttl", po::value<double>())(
        "tag", po::value<std::vector<std::string>>()->composing())("key", po::value<std::string>())("wait",
                                                                                                    po::bool_switch());
    desc.add_options()("keep", po::value<std::string>());  // retention once finished
    desc.add_options()("strict", po::bool_switch());
    po::positional_options_description pos;
    pos.add("handler", 1);
    auto vm = parse(g, args, desc, pos);
    if (!vm.count("handler") || vm["handler"].as<std::string>().empty()) {
        throw usage_error("submit: missing HANDLER");
    }
    auto options = submit_options(vm);  // input errors before any connection
    auto c = connect(g, vm["strict"].as<bool>());
    auto h = c.submit(options);
    if (!h) {
        return report(h.error());
    }
    for (const auto& w : h->warnings()) {
        std::cerr << "taskmill: warning: " << w << "\n";
    }
    if (!vm["wait"].as<bool>()) {
        if (g.json) {
            std::cout << nlohmann::json{{"id", h->id()}}.dump() << "\n";
        } else {
            std::cout << h->id() << "\n";
        }
        return exit_ok;
    }
    if (!g.json) {
        std::cout << h->id() << std::endl;  // at once: the task may take long
    }
    auto t = wait_showing_progress(*h, !g.json && isatty(STDERR_FILENO) == 1);
    if (!t) {
        return report(t.error());
    }
    if (g.json) {
        print_task(std::cout, *t, true);
    } else if (t->succeeded()) {
        std::cout << client::msgpack_to_json(t->result.value_or("")).dump() << "\n";
    }
    return task_exit(*t);
}

int cmd_status(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    desc.add_options()("id", po::value<std::string>());
    po::positional_options_description pos;
    pos.add("id", 1);
    auto vm = parse(g, args, desc, pos);
    auto id = need_id(vm, "status");
    auto c = connect(g);
    auto t = c.status(id);
    if (!t) {
        return report(t.error());
    }
    print_task(std::cout, *t, g.json);
    return exit_ok;
}

int cmd_result(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    desc.add_options()("id", po::value<std::string>())("wait", po::value<double>());
    po::positional_options_description pos;
    pos.add("id", 1);
    auto vm = parse(g, args, desc, pos);
    auto id = need_id(vm, "result");
    auto c = connect(g);
    auto t = vm.count("wait") ? c.wait(id, seconds_arg("--wait", vm["wait"].as<double>())) : c.status(id);
    if (!t && t.error().code == errc::conflict) {
        t = c.status(id);  // timed out waiting: report the state it is in
    }
    if (!t) {
        return report(t.error());
    }
    if (t->succeeded()) {
        std::cout << client::msgpack_to_json(t->result.value_or("")).dump() << "\n";
    }
    return task_exit(*t);
}

int cmd_cancel(global_options& g, const std::vector<std::string>& args) {
    if (bulk_flags(args)) {
        return run_bulk(g, args);
    }
    po::options_description desc;
    desc.add_options()("id", po::value<std::string>())("tag", po::value<std::string>());
    po::positional_options_description pos;
    pos.add("id", 1);
    auto vm = parse(g, args, desc, pos);
    if (vm.count("id") == vm.count("tag")) {
        throw usage_error("cancel: give either a task ID or --tag T");
    }
    auto c = connect(g);
    auto r = vm.count("id") ? c.cancel(vm["id"].as<std::string>()) : c.cancel_tag(vm["tag"].as<std::string>());
    if (!r) {
        return report(r.error());
    }
    print_change(g, *r);
    return exit_ok;
}

int cmd_retry(global_options& g, const std::vector<std::string>& args) {
    if (std::any_of(args.begin() + 1, args.end(),
                    [](const std::string& a) { return a.rfind("--", 0) == 0 && a != "--json"; })) {
        return run_bulk(g, args);
    }
    po::options_description desc;
    desc.add_options()("id", po::value<std::string>());
    po::positional_options_description pos;
    pos.add("id", 1);
    auto vm = parse(g, args, desc, pos);
    auto id = need_id(vm, "retry");
    auto c = connect(g);
    auto r = c.retry(id);
    if (!r) {
        return report(r.error());
    }
    print_change(g, *r);
    return exit_ok;
}

int cmd_tasks(global_options& g, const std::vector<std::string>& args) {
    client::task_filter f;
    po::options_description desc;
    desc.add_options()("state", po::value<std::string>(&f.state))("queue", po::value<std::string>(&f.queue))(
        "tag", po::value<std::string>(&f.tag))("limit", po::value<unsigned>(&f.limit))(
        "handler", po::value<std::string>(&f.handler))("since", po::value<std::string>())(
        "until", po::value<std::string>())("before", po::value<std::string>(&f.before));
    auto vm = parse(g, args, desc, {});
    for (auto& ch : f.state) {
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    if (vm.count("since")) f.since = time_arg("--since", vm["since"].as<std::string>());
    if (vm.count("until")) f.until = time_arg("--until", vm["until"].as<std::string>());
    auto c = connect(g);
    auto r = c.tasks_page(f);
    if (!r) {
        return report(r.error());
    }
    print_tasks(std::cout, r->tasks, g.json);
    if (!r->next.empty()) {
        // On stderr, so that stdout stays the list (or its JSON).
        std::cerr << "more: taskmill tasks ... --before " << r->next << "\n";
    }
    return exit_ok;
}

int cmd_stats(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    parse(g, args, desc, {});
    auto c = connect(g);
    auto r = c.stats();
    if (!r) {
        return report(r.error());
    }
    print_stats(std::cout, *r, g.json);
    return exit_ok;
}

int cmd_workers(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    parse(g, args, desc, {});
    auto c = connect(g);
    auto r = c.workers();
    if (!r) {
        return report(r.error());
    }
    print_workers(std::cout, *r, g.json);
    return exit_ok;
}

int cmd_ping(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    parse(g, args, desc, {});
    auto c = connect(g);
    auto r = c.ping();
    if (!r) {
        return report(r.error());
    }
    if (g.json) {
        std::cout << nlohmann::json{{"ok", true}, {"broker", c.endpoint()}, {"rtt_ms", r->count()}}.dump() << "\n";
    } else {
        std::cout << "pong from " << c.endpoint() << " in " << r->count() << " ms\n";
    }
    return exit_ok;
}

void print_cluster(const client::cluster_info& c) {
    if (c.node_id == 0) {
        std::cout << "a single broker, in no cluster (node-id 0)\n";
        return;
    }
    std::cout << "member " << c.node_id << ": " << c.role << (c.serving ? ", serving" : "") << ", term " << c.term
              << "\n";
    if (c.leader_id == 0) {
        std::cout << "leader: none known (an election is under way)\n";
    } else {
        std::cout << "leader: member " << c.leader_id << (c.leader_frontend.empty() ? "" : " at " + c.leader_frontend)
                  << "\n";
    }
    std::cout << "log: last " << c.last_index << ", committed " << c.commit_index << ", applied " << c.applied_index
              << "; snapshots " << c.snapshots << "\n";
    for (const auto& m : c.members) {
        std::cout << "  " << m.id << "  " << m.address << "  " << m.kind;
        if (c.role == "leader") {
            std::cout << "  holds " << m.match_index << " (behind "
                      << (c.last_index - std::min(c.last_index, m.match_index)) << ")";
        }
        std::cout << "\n";
    }
}

nlohmann::json cluster_json(const client::cluster_info& c) {
    nlohmann::json members = nlohmann::json::array();
    for (const auto& m : c.members) {
        nlohmann::json one = {{"id", m.id}, {"address", m.address}, {"kind", m.kind}};
        if (c.role == "leader") {
            one["match_index"] = m.match_index;
        }
        members.push_back(one);
    }
    return {
        {"node_id", c.node_id},
        {"role", c.role},
        {"serving", c.serving},
        {"term", c.term},
        {"leader_id", c.leader_id == 0 ? nlohmann::json(nullptr) : nlohmann::json(c.leader_id)},
        {"leader_frontend", c.leader_frontend.empty() ? nlohmann::json(nullptr) : nlohmann::json(c.leader_frontend)},
        {"last_index", c.last_index},
        {"commit_index", c.commit_index},
        {"applied_index", c.applied_index},
        {"snapshots", c.snapshots},
        {"members", members}};
}

// A member id as the operator typed it: a positive number.
uint64_t member_id(const std::string& verb, const std::string& text) {
    if (text.empty() || text.size() > 19 || text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoull(text) == 0) {
        throw usage_error("cluster " + verb + ": '" + text + "' is not a member id (a positive number)");
    }
    return std::stoull(text);
}

// `taskmill cluster status`: what the broker asked knows of its cluster.
// `cluster add ID=IPv4:PORT`, `cluster remove ID`, `cluster transfer [ID]`:
// membership changes, made by the leader; each prints the view after it.
int cmd_cluster(global_options& g, const std::vector<std::string>& args) {
    const std::string verb = args.size() >= 2 ? args[1] : "";
    if (verb != "status" && verb != "add" && verb != "remove" && verb != "transfer") {
        throw usage_error(
            "cluster: the command is `cluster status`, `cluster add ID=IPv4:PORT`, `cluster remove ID` or "
            "`cluster transfer [ID]`");
    }
    po::options_description desc;
    desc.add_options()("member", po::value<std::string>());
    po::positional_options_description pos;
    if (verb != "status") {
        pos.add("member", 1);
    }
    auto vm = parse(g, std::vector<std::string>(args.begin() + 1, args.end()), desc, pos);
    const std::string arg = vm.count("member") ? vm["member"].as<std::string>() : "";
    if (arg.empty() && (verb == "add" || verb == "remove")) {
        throw usage_error("cluster " + verb + ": missing " + (verb == "add" ? "ID=IPv4:PORT" : "ID"));
    }
    uint64_t id = 0;  // transfer without one: the leader picks
    std::string address;
    if (verb == "add") {
        const auto eq = arg.find('=');
        if (eq == std::string::npos || eq + 1 == arg.size()) {
            throw usage_error("cluster add: '" + arg + "' is not ID=IPv4:PORT");
        }
        id = member_id(verb, arg.substr(0, eq));
        address = arg.substr(eq + 1);
    } else if (!arg.empty()) {
        id = member_id(verb, arg);
    }
    auto c = connect(g);
    auto r = verb == "status"   ? c.cluster_status()
             : verb == "add"    ? c.cluster_add(id, address)
             : verb == "remove" ? c.cluster_remove(id)
                                : c.cluster_transfer(id);
    if (!r) {
        return report(r.error());
    }
    if (g.json) {
        std::cout << cluster_json(*r).dump() << "\n";
    } else {
        print_cluster(*r);
    }
    return exit_ok;
}

int cmd_version(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    parse(g, args, desc, {});
    auto endpoint = client::resolve_endpoint(g.broker);
    if (g.json) {
        std::cout << nlohmann::json{{"version", TASKMILL_VERSION},
                                    {"protocol", "TASKMILL1"},
                                    {"broker", endpoint},
                                    {"events", g.events},
                                    {"timeout_s", g.timeout_s}}
                         .dump()
                  << "\n";
    } else {
        std::cout << "taskmill " << TASKMILL_VERSION << " (protocol TASKMILL1)\nbroker: " << endpoint
                  << "\nevents: " << g.events << "\ntimeout: " << g.timeout_s << " s\n";
    }
    return exit_ok;
}

int cmd_help(global_options&, const std::vector<std::string>&) {
    print_usage(std::cout);
    return exit_ok;
}

}  // namespace

int report(const error& e) {
    std::cerr << "taskmill: " << to_string(e.code) << ": " << e.message << "\n";
    return e.code == errc::unavailable ? exit_unreachable : exit_usage;
}

int run_command(global_options& g, const std::vector<std::string>& args) {
    using fn = int (*)(global_options&, const std::vector<std::string>&);
    static const std::map<std::string, fn> commands = {
        {"submit", cmd_submit},
        {"status", cmd_status},
        {"result", cmd_result},
        {"cancel", cmd_cancel},
        {"retry", cmd_retry},
        {"tasks", cmd_tasks},
        {"stats", cmd_stats},
        {"workers", cmd_workers},
        {"ping", cmd_ping},
        {"cluster", cmd_cluster},
        {"version", cmd_version},
        {"help", cmd_help},
        {"workflow", run_workflow},
        {"schedules", run_schedules},
        {"keygen", run_keygen},
        {"delete", cmd_delete},
        {"run-now", cmd_run_now},
        {"job", cmd_job},
        {"events", [](global_options& gl, const std::vector<std::string>& a) { return run_events(gl, a); }},
        // queue control and flow limits (queue_cmds.cpp)
        {"queues", run_queues},
        {"queue", run_queue},
        {"handler", run_handler},
        // workflow listing and schedule control (workflow_cmds.cpp)
        {"workflows", run_workflows},
        {"schedule", run_schedule},
    };
    auto it = commands.find(args[0]);
    if (it == commands.end()) {
        throw usage_error("unknown command '" + args[0] + "'");
    }
    return it->second(g, args);
}

}  // namespace taskmill::cli
