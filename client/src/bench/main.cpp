// taskmill-bench MODE [options]: one measurement against a running broker,
// printed as one JSON object on stdout. Exit 0 if the run went right, 1 if
// it did not (the object says why), 2 on a usage error.
#include <iostream>

#include <boost/program_options.hpp>

#include "bench.hpp"

namespace po = boost::program_options;
using taskmill::bench::bench_options;

namespace {

constexpr const char* usage =
    "usage: taskmill-bench MODE [options]\n"
    "  throughput  submit --count no-op tasks pipelined, wait for every result\n"
    "  latency     --count sequential submit-and-wait round trips\n"
    "  backlog     submit --count tasks to --queue (one no host serves)\n"
    "  drain       wait until --queue is empty, report the drain rate\n"
    "  ready       wait until the broker answers PING and STATS\n"
    "  wire        --count round trips over a bare socket, no client library:\n"
    "              PING, SUBMIT to a queue nobody serves, SUBMIT until DONE\n"
    "  wake        --count thread wake-ups through an eventfd: to another CPU\n"
    "              and on the same CPU (no broker needed)\n";

nlohmann::json run(const bench_options& o) {
    using namespace taskmill::bench;
    if (o.mode == "throughput") return run_throughput(o);
    if (o.mode == "latency") return run_latency(o);
    if (o.mode == "backlog") return run_backlog(o);
    if (o.mode == "drain") return run_drain(o);
    if (o.mode == "ready") return run_ready(o);
    if (o.mode == "wire") return run_wire(o);
    if (o.mode == "wake") return run_wake(o);
    throw po::error("unknown mode '" + o.mode + "'");
}

}  // namespace

int main(int argc, char** argv) {
    bench_options o;
    long deadline_s = 120;
    po::options_description desc("options");
    desc.add_options()("help,h", "this text")("broker", po::value(&o.endpoint),
                                              "broker frontend (default $TASKMILL_BROKER, else tcp://127.0.0.1:5555)")(
        "handler", po::value(&o.handler)->default_value(o.handler), "handler of the submitted tasks")(
        "queue", po::value(&o.queue)->default_value(o.queue), "queue of the submitted or watched tasks")(
        "count,n", po::value(&o.count)->default_value(o.count), "tasks, or round trips for latency")(
        "batch", po::value(&o.batch)->default_value(o.batch), "tasks per submit batch")(
        "window", po::value(&o.window)->default_value(o.window), "submit batches awaiting their ack at once")(
        "warmup", po::value(&o.warmup)->default_value(o.warmup), "untimed round trips first")(
        "deadline", po::value(&deadline_s)->default_value(deadline_s), "give up after this many seconds");
    po::options_description hidden;
    hidden.add_options()("mode", po::value(&o.mode));
    po::options_description all;
    all.add(desc).add(hidden);
    po::positional_options_description pos;
    pos.add("mode", 1);
    try {
        po::variables_map vm;
        po::store(po::command_line_parser(argc, argv).options(all).positional(pos).run(), vm);
        po::notify(vm);
        if (vm.count("help") || o.mode.empty()) {
            std::cout << usage << desc;
            return vm.count("help") ? 0 : 2;
        }
        if (deadline_s <= 0) {
            throw po::error("--deadline must be positive");
        }
        o.deadline = std::chrono::seconds(deadline_s);
        auto j = run(o);
        std::cout << j.dump() << std::endl;
        return j.value("ok", false) ? 0 : 1;
    } catch (const po::error& e) {
        std::cerr << "taskmill-bench: " << e.what() << "\n" << usage;
        return 2;
    } catch (const std::exception& e) {
        std::cout << nlohmann::json{{"mode", o.mode}, {"ok", false}, {"error", e.what()}}.dump() << std::endl;
        return 1;
    }
}
