// `taskmill queues`, `taskmill queue pause|resume|limit Q ...` and
// `taskmill handler limit H ...`: queue control and flow limits.
#include <iostream>
#include <map>

#include <boost/program_options.hpp>

#include <taskmill/client/json.hpp>
#include <taskmill/protocol/rate.hpp>

#include "cli.hpp"
#include "output.hpp"

namespace po = boost::program_options;

namespace taskmill::cli {

int queue_purge(global_options& g, const std::vector<std::string>& args);  // bulk_cmds.cpp

namespace {

// args[0] is the subcommand ("pause"), `what` names it in messages.
po::variables_map parse_sub(global_options& g, const std::vector<std::string>& args, const std::string& what,
                            po::options_description& desc) {
    desc.add_options()("name", po::value<std::string>())("json", po::bool_switch(), "print JSON");
    po::positional_options_description pos;
    pos.add("name", 1);
    po::variables_map vm;
    try {
        std::vector<std::string> rest(args.begin() + 1, args.end());
        po::store(po::command_line_parser(rest).options(desc).positional(pos).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(what + ": " + e.what());
    }
    if (vm["json"].as<bool>()) {
        g.json = true;
    }
    if (!vm.count("name")) {
        throw usage_error(what + ": missing name");
    }
    return vm;
}

client::client connect(const global_options& g) {
    client::client_options o;
    o.endpoint = g.broker;
    o.request_timeout = seconds_arg("--timeout", g.timeout_s);
    apply_curve(g, o);
    return client::client(o);
}

// --rate N/s (0 removes), --burst N, --max-running N (0 removes).
struct limit_flags {
    std::string rate;
    uint32_t burst = 0;
    uint32_t max_running = 0;
};

void add_limit_flags(po::options_description& desc, limit_flags& f) {
    desc.add_options()("rate", po::value<std::string>(&f.rate))("burst", po::value<uint32_t>(&f.burst))(
        "max-running", po::value<uint32_t>(&f.max_running));
}

client::limit_change limit_change_of(const po::variables_map& vm, const limit_flags& f, const std::string& what) {
    client::limit_change c;
    if (vm.count("rate")) {
        auto r = protocol::parse_rate_or_zero(f.rate);
        if (!r) {
            throw usage_error(what + ": --rate: " + r.error().message);
        }
        c.rate = *r;
    }
    if (vm.count("burst")) {
        c.burst = f.burst;
    }
    if (vm.count("max-running")) {
        c.max_running = f.max_running;
    }
    if (!c.rate && !c.burst && !c.max_running) {
        throw usage_error(what + ": give --rate N/s, --burst N or --max-running N (0 removes a limit)");
    }
    return c;
}

void print_one(const global_options& g, const client::queue_stats& q, const std::string& verb) {
    if (g.json) {
        std::cout << client::to_json(q).dump() << "\n";
    } else if (!verb.empty()) {
        std::cout << "queue " << q.name << " " << verb << "\n";
    } else {
        print_queues(std::cout, {q}, false);
    }
}

int queue_pause(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    auto vm = parse_sub(g, args, "queue pause", desc);
    auto r = connect(g).pause(vm["name"].as<std::string>());
    if (!r) {
        return report(r.error());
    }
    print_one(g, *r, "paused");
    return exit_ok;
}

int queue_resume(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    auto vm = parse_sub(g, args, "queue resume", desc);
    auto r = connect(g).resume(vm["name"].as<std::string>());
    if (!r) {
        return report(r.error());
    }
    print_one(g, *r, "resumed");
    return exit_ok;
}

int queue_limit(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    limit_flags f;
    add_limit_flags(desc, f);
    auto vm = parse_sub(g, args, "queue limit", desc);
    auto change = limit_change_of(vm, f, "queue limit");
    auto r = connect(g).limit_queue(vm["name"].as<std::string>(), change);
    if (!r) {
        return report(r.error());
    }
    print_one(g, *r, "");
    return exit_ok;
}

int handler_limit(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    limit_flags f;
    add_limit_flags(desc, f);
    auto vm = parse_sub(g, args, "handler limit", desc);
    auto change = limit_change_of(vm, f, "handler limit");
    auto r = connect(g).limit_handler(vm["name"].as<std::string>(), change);
    if (!r) {
        return report(r.error());
    }
    print_handler_limits(std::cout, *r, g.json);
    return exit_ok;
}

using subcommand = int (*)(global_options&, const std::vector<std::string>&);

// Runs args[1] of a command group from `table`.
int run_group(global_options& g, const std::vector<std::string>& args, const std::map<std::string, subcommand>& table) {
    if (args.size() < 2) {
        throw usage_error(args[0] + ": missing subcommand");
    }
    auto it = table.find(args[1]);
    if (it == table.end()) {
        throw usage_error(args[0] + ": unknown subcommand '" + args[1] + "'");
    }
    return it->second(g, std::vector<std::string>(args.begin() + 1, args.end()));
}

}  // namespace

// `taskmill queue SUBCOMMAND Q ...`: one line per subcommand.
int run_queue(global_options& g, const std::vector<std::string>& args) {
    static const std::map<std::string, subcommand> table = {
        {"pause", queue_pause},
        {"resume", queue_resume},
        {"limit", queue_limit},
        {"purge", queue_purge},  // bulk_cmds.cpp
    };
    return run_group(g, args, table);
}

int run_handler(global_options& g, const std::vector<std::string>& args) {
    static const std::map<std::string, subcommand> table = {
        {"limit", handler_limit},
    };
    return run_group(g, args, table);
}

int run_queues(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    desc.add_options()("json", po::bool_switch(), "print JSON");
    po::variables_map vm;
    try {
        std::vector<std::string> rest(args.begin() + 1, args.end());
        po::store(po::command_line_parser(rest).options(desc).run(), vm);
    } catch (const po::error& e) {
        throw usage_error("queues: " + std::string(e.what()));
    }
    if (vm["json"].as<bool>()) {
        g.json = true;
    }
    auto r = connect(g).queues();
    if (!r) {
        return report(r.error());
    }
    print_queues(std::cout, *r, g.json);
    return exit_ok;
}

}  // namespace taskmill::cli
