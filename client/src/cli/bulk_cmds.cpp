// The operator verbs: `taskmill queue purge Q`, cancel/retry/delete by
// filter, `delete ID...`, `run-now ID` and `job ID`. A bulk verb waits for
// its job and prints the count unless --no-wait (then it prints the job id).
#include <chrono>
#include <iostream>
#include <map>

#include <boost/program_options.hpp>

#include <taskmill/client/json.hpp>

#include "cli.hpp"

namespace po = boost::program_options;

namespace taskmill::cli {

namespace {

client::client connect_bulk(const global_options& g) {
    client::client_options o;
    o.endpoint = g.broker;
    o.request_timeout = seconds_arg("--timeout", g.timeout_s);
    apply_curve(g, o);
    return client::client(o);
}

po::variables_map parse_bulk(global_options& g, const std::vector<std::string>& args, std::size_t skip,
                             po::options_description& desc, const po::positional_options_description& pos) {
    desc.add_options()("json", po::bool_switch());
    po::variables_map vm;
    try {
        std::vector<std::string> rest(args.begin() + static_cast<std::ptrdiff_t>(skip), args.end());
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

void add_filter_options(po::options_description& desc) {
    desc.add_options()("state", po::value<std::string>())("queue", po::value<std::string>())(
        "handler", po::value<std::string>())("tag", po::value<std::string>())("since", po::value<std::string>())(
        "until", po::value<std::string>())("before", po::value<std::string>())("all", po::bool_switch())(
        "no-wait", po::bool_switch());
}

client::bulk_filter filter_of(const po::variables_map& vm) {
    client::bulk_filter f;
    auto text = [&](const char* name) { return vm.count(name) ? vm[name].as<std::string>() : std::string(); };
    f.state = text("state");
    for (auto& ch : f.state) {
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
    }
    f.queue = text("queue");
    f.handler = text("handler");
    f.tag = text("tag");
    if (vm.count("since")) f.since = time_arg("--since", text("since"));
    if (vm.count("until") && vm.count("before")) {
        throw usage_error("give --until or --before (the same), not both");
    }
    if (vm.count("until")) f.until = time_arg("--until", text("until"));
    if (vm.count("before")) f.until = time_arg("--before", text("before"));
    f.all = vm["all"].as<bool>();
    return f;
}

const std::map<std::string, std::string>& past_tense() {
    static const std::map<std::string, std::string> words = {
        {"purge", "purged"}, {"cancel", "cancelled"}, {"retry", "retried"}, {"delete", "deleted"}};
    return words;
}

nlohmann::json job_json(const client::job_info& j) {
    nlohmann::json out = {{"id", j.id},
                          {"kind", j.kind},
                          {"filter", j.filter},
                          {"state", j.state},
                          {"matched", j.matched},
                          {"changed", j.changed},
                          {"skipped", j.skipped()},
                          {"started", client::iso8601_or_null(j.started)},
                          {"finished", client::iso8601_or_null(j.finished)}};
    if (!j.ids.empty()) {
        out["ids"] = j.ids;
    }
    return out;
}

void print_job(const global_options& g, const client::job_info& j) {
    if (g.json) {
        std::cout << job_json(j).dump() << "\n";
        return;
    }
    if (!j.done()) {
        std::cout << "job " << j.id << " " << j.state << ": " << j.changed << " of " << j.matched << " so far\n";
        return;
    }
    auto word = past_tense().find(j.kind);
    std::cout << (word == past_tense().end() ? j.kind : word->second) << " " << j.changed << " task(s)";
    if (j.skipped() > 0) {
        std::cout << ", " << j.skipped() << " skipped";
    }
    std::cout << "\n";
}

// Waits for the job (unless --no-wait) and prints it.
int finish(const global_options& g, client::client& c, result<client::job_info> j, bool no_wait) {
    if (!j) {
        return report(j.error());
    }
    if (no_wait && j->id != 0) {
        if (g.json) {
            std::cout << job_json(*j).dump() << "\n";
        } else {
            std::cout << j->id << "\n";
        }
        return exit_ok;
    }
    if (!j->done()) {
        j = c.wait_job(j->id);
        if (!j) {
            return report(j.error());
        }
    }
    print_job(g, *j);
    return exit_ok;
}

}  // namespace

// `taskmill queue purge Q`: args from "purge" on (the queue group's table).
int queue_purge(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    desc.add_options()("queue", po::value<std::string>())("no-wait", po::bool_switch());
    po::positional_options_description pos;
    pos.add("queue", 1);
    auto vm = parse_bulk(g, args, 1, desc, pos);
    if (!vm.count("queue") || vm["queue"].as<std::string>().empty()) {
        throw usage_error("queue purge: missing QUEUE");
    }
    auto c = connect_bulk(g);
    return finish(g, c, c.purge(vm["queue"].as<std::string>()), vm["no-wait"].as<bool>());
}

bool bulk_flags(const std::vector<std::string>& args) {
    for (std::size_t i = 1; i < args.size(); ++i) {
        const auto& a = args[i];
        for (const char* flag :
             {"--state", "--queue", "--handler", "--since", "--until", "--before", "--all", "--no-wait"}) {
            if (a == flag || a.rfind(std::string(flag) + "=", 0) == 0) {
                return true;
            }
        }
    }
    return false;
}

int run_bulk(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    add_filter_options(desc);
    auto vm = parse_bulk(g, args, 1, desc, {});
    auto f = filter_of(vm);
    auto c = connect_bulk(g);
    const auto& verb = args[0];
    auto j = verb == "cancel" ? c.cancel(f) : verb == "retry" ? c.retry(f) : c.remove(f);
    return finish(g, c, std::move(j), vm["no-wait"].as<bool>());
}

int cmd_delete(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    add_filter_options(desc);
    desc.add_options()("id", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("id", -1);
    auto vm = parse_bulk(g, args, 1, desc, pos);
    if (!vm.count("id")) {
        return run_bulk(g, args);
    }
    for (const char* filter : {"state", "queue", "handler", "tag", "since", "until", "before"}) {
        if (vm.count(filter)) {
            throw usage_error("delete: give task IDs or filters, not both");
        }
    }
    if (vm["all"].as<bool>()) {
        throw usage_error("delete: give task IDs or filters, not both");
    }
    auto c = connect_bulk(g);
    return finish(g, c, c.remove(vm["id"].as<std::vector<std::string>>()), vm["no-wait"].as<bool>());
}

int cmd_run_now(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    desc.add_options()("id", po::value<std::string>());
    po::positional_options_description pos;
    pos.add("id", 1);
    auto vm = parse_bulk(g, args, 1, desc, pos);
    if (!vm.count("id")) {
        throw usage_error("run-now: missing task ID");
    }
    auto c = connect_bulk(g);
    auto r = c.run_now(vm["id"].as<std::string>());
    if (!r) {
        return report(r.error());
    }
    if (g.json) {
        std::cout << nlohmann::json{{"ids", r->ids}}.dump() << "\n";
    } else {
        for (const auto& id : r->ids) {
            std::cout << id << " queued\n";
        }
    }
    return exit_ok;
}

int cmd_job(global_options& g, const std::vector<std::string>& args) {
    po::options_description desc;
    desc.add_options()("id", po::value<uint64_t>())("wait", po::bool_switch());
    po::positional_options_description pos;
    pos.add("id", 1);
    auto vm = parse_bulk(g, args, 1, desc, pos);
    if (!vm.count("id")) {
        throw usage_error("job: missing job ID");
    }
    auto c = connect_bulk(g);
    auto id = vm["id"].as<uint64_t>();
    auto j = vm["wait"].as<bool>() ? c.wait_job(id) : c.job(id);
    if (!j) {
        return report(j.error());
    }
    if (g.json) {
        std::cout << job_json(*j).dump() << "\n";
    } else {
        std::cout << "job " << j->id << " " << j->kind << " (" << j->filter << "): " << j->state << ", matched "
                  << j->matched << ", changed " << j->changed << ", skipped " << j->skipped() << "\n";
    }
    return exit_ok;
}

}  // namespace taskmill::cli
