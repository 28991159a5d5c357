// Global options and usage text.
#include <cmath>
#include <iostream>

#include <boost/program_options.hpp>

#include <taskmill/protocol/time_text.hpp>

#include "cli.hpp"

namespace po = boost::program_options;

namespace taskmill::cli {

namespace {

bool takes_value(const std::string& flag) {
    return flag == "--broker" || flag == "--timeout" || flag == "--events" || flag == "--server-key" ||
           flag == "--key-file";
}

}  // namespace

void print_usage(std::ostream& out) {
    out << "usage: taskmill [--broker EP] [--json] [--timeout SECONDS] [--events EP] COMMAND [ARGS]\n"
           "\n"
           "commands:\n"
           "  submit HANDLER [--payload JSON] [--queue Q] [--priority N] [--delay S]\n"
           "         [--retries N] [--timeout S] [--ttl S] [--tag T]... [--key K] [--wait]\n"
           "         [--keep DURATION]   keep the finished task this long (30s 24h 7d; 0 = for ever)\n"
           "         [--strict]         refuse (not just warn) a handler no worker offered lately\n"
           "  status ID\n"
           "  result ID [--wait S]\n"
           "  cancel ID | cancel --tag T\n"
           "  retry ID\n"
           "  tasks [--state S] [--queue Q] [--tag T] [--handler H] [--since TIME]\n"
           "        [--until TIME] [--before CURSOR] [--limit N]\n"
           "  stats | workers | ping | version\n"
           "  cluster status               this broker's view of its cluster: role, term, leader, log\n"
           "  cluster add ID=IPv4:PORT     the leader adds a member (started with join = true) as a voter\n"
           "  cluster remove ID            the leader removes a member (not itself: transfer first)\n"
           "  cluster transfer [ID]        the leader hands over to member ID (none: an up-to-date voter)\n"
           "  events [--type T]\n"
           "  keygen PREFIX [--force]      write a CURVE key pair PREFIX.key / PREFIX.pub\n"
           "  workflow submit FILE.json [--wait S] | workflow status ID | workflow cancel ID\n"
           "  schedules                    each schedule: last and next fire, paused, misfires\n"
           "  queues                       each queue: ready, delayed, running, paused, limits\n"
           "  queue pause Q | queue resume Q\n"
           "  queue limit Q [--rate N/s] [--burst N] [--max-running N]   (0 removes a limit)\n"
           "  handler limit NS.NAME [--rate N/s] [--burst N] [--max-running N]\n"
           "  queue purge Q [--no-wait]      cancel every queued and delayed task of Q\n"
           "  cancel|retry|delete FILTERS [--all] [--no-wait]   a bulk job, waited for\n"
           "         FILTERS: --state S --queue Q --handler H --tag T --since TIME\n"
           "         --until TIME (--before TIME); TIME: 2026-01-31T12:00:00Z or 1h, 7d ago\n"
           "  delete ID...                   delete finished tasks\n"
           "  run-now ID                     queue a delayed (PENDING/RETRYING) task now\n"
           "  job ID [--wait]                how a bulk job is going\n"
           "  workflows [--state S] [--limit N] [--before CURSOR]   workflows, newest first\n"
           "  schedule trigger NAME          fire a schedule once now (its cron stays on time)\n"
           "  schedule pause NAME | schedule resume NAME   (a pause survives restarts)\n"
           "\n"
           "The broker is --broker, else $TASKMILL_BROKER, else tcp://127.0.0.1:5555; a cluster's\n"
           "members may be listed comma-separated: the CLI follows the leader (docs/CLUSTER.md).\n"
           "Seconds may be fractional; a task's --delay, --timeout and --ttl are at most\n"
           "10 years (315360000 s), a --payload nests at most 128 levels of arrays/objects.\n"
           "tasks: TIME is an ISO 8601 UTC time (2026-12-01T10:00:00Z, 2026-12-01) or a\n"
           "duration ago (90s, 1h, 7d); it is the finish time for a final --state, else\n"
           "the creation time. When more tasks follow, stderr says the --before CURSOR\n"
           "that lists them.\n"
           "submit --wait prints the id first, then the result (on a terminal, the\n"
           "progress meanwhile, on stderr); warnings go to stderr. status shows the\n"
           "payload (long ones cut), the attempt history, parent and children.\n"
           "Exit codes: 0 ok, 1 task failed/cancelled/expired,\n"
           "2 usage or input error, 3 broker unreachable within --timeout (default 5 s).\n";
}

std::chrono::milliseconds seconds_arg(const std::string& flag, double value) {
    if (!std::isfinite(value) || value < 0 || value > 1e9) {
        throw usage_error(flag + " must be a non-negative number of seconds");
    }
    return std::chrono::milliseconds(static_cast<int64_t>(std::llround(value * 1000.0)));
}

client::time_point time_arg(const std::string& flag, const std::string& text) {
    auto ms = protocol::parse_time_ms(text);
    if (!ms) {
        throw usage_error(flag + ": " + ms.error().message);
    }
    return client::time_point(client::milliseconds(*ms));
}

// The global options are the ones before the command: `submit --timeout`
// is the task's timeout, not the broker's, so argv is split first.
global_options parse_globals(const std::vector<std::string>& argv, std::vector<std::string>& rest) {
    std::size_t i = 0;
    while (i < argv.size() && argv[i].size() > 1 && argv[i][0] == '-') {
        i += (takes_value(argv[i]) && i + 1 < argv.size()) ? 2 : 1;
    }
    std::vector<std::string> prefix(argv.begin(), argv.begin() + static_cast<std::ptrdiff_t>(i));
    rest.assign(argv.begin() + static_cast<std::ptrdiff_t>(i), argv.end());

    global_options g;
    po::options_description desc("global options");
    desc.add_options()("broker", po::value<std::string>(&g.broker), "broker frontend endpoint")(
        "events", po::value<std::string>(&g.events),
        "broker events endpoint (a cluster's: every member's, comma-separated)")(
        "json", po::bool_switch(&g.json), "print JSON")("timeout", po::value<double>(&g.timeout_s),
                                                        "seconds to wait for the broker")(
        "server-key", po::value<std::string>(&g.server_key), "CURVE: broker public key or .pub file")(
        "key-file", po::value<std::string>(&g.key_file), "CURVE: this client's key pair file")("help,h", "this text")(
        "version", "print the version");
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(prefix).options(desc).run(), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        throw usage_error(e.what());
    }
    if (vm.count("help")) {
        rest.assign({"help"});
    } else if (vm.count("version")) {
        rest.assign({"version"});
    }
    (void)seconds_arg("--timeout", g.timeout_s);
    if (rest.empty()) {
        throw usage_error("missing command");
    }
    return g;
}

}  // namespace taskmill::cli
