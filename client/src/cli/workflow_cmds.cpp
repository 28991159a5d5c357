// `taskmill workflow submit FILE.json [--wait S] | status ID | cancel ID`,
// `taskmill workflows`, `taskmill schedules` and `taskmill schedule
// trigger|pause|resume NAME`, over taskmill::client::workflow_client.
#include <cctype>
#include <charconv>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>

#include <taskmill/client/json.hpp>
#include <taskmill/client/workflow.hpp>
#include <taskmill/protocol/nesting.hpp>

#include "cli.hpp"

namespace taskmill::cli {
namespace {

using nlohmann::json;

client::workflow_client connect_wf(const global_options& g) {
    client::client_options o;
    o.endpoint = g.broker;
    o.request_timeout = seconds_arg("--timeout", g.timeout_s);
    apply_curve(g, o);
    return client::workflow_client(o);
}

std::string when(const json& ms) {
    if (!ms.is_number_integer() || ms.get<int64_t>() <= 0) {
        return "-";
    }
    return client::iso8601(client::time_point(client::milliseconds(ms.get<int64_t>())));
}

std::string text_or(const json& j, const std::string& dash = "-") {
    return j.is_string() ? j.get<std::string>() : (j.is_null() ? dash : j.dump());
}

void print_status(const global_options& g, const json& s) {
    if (g.json) {
        std::cout << s.dump() << "\n";
        return;
    }
    std::cout << "workflow " << text_or(s["id"]) << " " << text_or(s["name"], "") << " " << text_or(s["state"])
              << " (on_failure=" << text_or(s["on_failure"]) << ")\n";
    for (const auto& st : s["steps"]) {
        std::cout << "  " << std::left << std::setw(16) << text_or(st["name"]) << std::setw(10) << text_or(st["state"])
                  << " " << std::setw(32) << text_or(st["task"]);
        if (!st["error"].is_null()) std::cout << " " << text_or(st["error"]);
        std::cout << "\n";
    }
    if (s["state"] != "RUNNING") {
        std::cout << "result: " << s["result"].dump() << "\n";
    }
}

// One schedule as a line: name, handler, expression, last and next fire,
// pause and misfires.
void print_schedule(const json& s) {
    std::string expr = s["cron"].is_string() ? "cron \"" + s["cron"].get<std::string>() + "\" " + text_or(s["timezone"])
                                             : "every " + text_or(s["every"]);
    std::cout << std::left << std::setw(20) << text_or(s["name"]) << std::setw(20) << text_or(s["handler"])
              << std::setw(30) << expr << " last " << when(s["last_fire_ms"]) << "  next "
              << (s.value("paused", false) ? std::string("paused") : when(s["next_fire_ms"])) << "  misfires "
              << s.value("misfires", uint64_t{0}) << "\n";
}

json summary_json(const client::workflow_summary& w) {
    return {{"id", w.id},     {"name", w.name},     {"state", w.state},           {"steps", w.steps},
            {"done", w.done}, {"failed", w.failed}, {"created_ms", w.created_ms}, {"finished_ms", w.finished_ms}};
}

void print_workflows(const std::vector<client::workflow_summary>& list) {
    if (list.empty()) {
        std::cout << "no workflows\n";
        return;
    }
    std::cout << std::left << std::setw(34) << "ID" << std::setw(11) << "STATE" << std::setw(10) << "DONE"
              << std::setw(8) << "FAILED" << std::setw(26) << "CREATED"
              << "NAME\n";
    for (const auto& w : list) {
        std::cout << std::left << std::setw(34) << w.id << std::setw(11) << w.state << std::setw(10)
                  << (std::to_string(w.done) + "/" + std::to_string(w.steps)) << std::setw(8) << w.failed
                  << std::setw(26) << when(w.created_ms) << w.name << "\n";
    }
}

std::string upper(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    return s;
}

uint32_t limit_arg(const std::string& v) {
    uint32_t n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    if (ec != std::errc() || p != v.data() + v.size() || n < 1 || n > 1000) {
        throw usage_error("--limit must be an integer from 1 to 1000");
    }
    return n;
}

int final_exit(const json& s) {
    if (s["state"] == "SUCCEEDED") return exit_ok;
    std::cerr << "taskmill: workflow " << text_or(s["id"]) << " " << text_or(s["state"]) << "\n";
    return exit_task_failed;
}

int wf_submit(global_options& g, const std::vector<std::string>& args) {
    if (args.size() < 3) throw usage_error("workflow submit: missing FILE.json");
    std::optional<double> wait_s;
    for (std::size_t i = 3; i < args.size(); ++i) {
        if (args[i] == "--wait" && i + 1 < args.size()) {
            try {
                wait_s = std::stod(args[++i]);
            } catch (const std::exception&) {
                throw usage_error("workflow submit: --wait needs seconds");
            }
        } else if (args[i] == "--json") {
            g.json = true;
        } else {
            throw usage_error("workflow submit: unexpected argument '" + args[i] + "'");
        }
    }
    std::ifstream in(args[2]);
    if (!in) throw usage_error("workflow submit: cannot read " + args[2]);
    std::stringstream text;
    text << in.rdbuf();
    auto parsed = protocol::parse_json<json>(text.str(), args[2]);
    if (!parsed) throw usage_error("workflow submit: " + parsed.error().message);
    const auto& def = *parsed;
    auto wc = connect_wf(g);
    auto id = wc.submit(def);
    if (!id) return report(id.error());
    if (!wait_s) {
        std::cout << (g.json ? json{{"id", *id}}.dump() : *id) << "\n";
        return exit_ok;
    }
    auto s = wc.wait(*id, seconds_arg("--wait", *wait_s));
    if (!s) {
        if (s.error().code == errc::conflict) {
            std::cerr << "taskmill: workflow " << *id << " not finished within --wait\n";
            return exit_task_failed;
        }
        return report(s.error());
    }
    print_status(g, *s);
    return final_exit(*s);
}

int wf_status_or_cancel(global_options& g, const std::vector<std::string>& args) {
    if (args.size() < 3) throw usage_error("workflow " + args[1] + ": missing workflow ID");
    for (std::size_t i = 3; i < args.size(); ++i) {
        if (args[i] != "--json") throw usage_error("workflow " + args[1] + ": unexpected argument '" + args[i] + "'");
        g.json = true;
    }
    auto wc = connect_wf(g);
    if (args[1] == "cancel") {
        auto note = wc.cancel(args[2]);
        if (!note) return report(note.error());
        std::cout << (g.json ? json{{"ids", {args[2]}}, {"note", *note}}.dump()
                             : args[2] + (note->empty() ? "" : "\n" + *note))
                  << "\n";
        return exit_ok;
    }
    auto s = wc.status(args[2]);
    if (!s) return report(s.error());
    print_status(g, *s);
    return exit_ok;
}

}  // namespace

int run_workflow(global_options& g, const std::vector<std::string>& args) {
    if (args.size() < 2) throw usage_error("workflow: expected submit FILE.json | status ID | cancel ID");
    if (args[1] == "submit") return wf_submit(g, args);
    if (args[1] == "status" || args[1] == "cancel") return wf_status_or_cancel(g, args);
    throw usage_error("workflow: unknown subcommand '" + args[1] + "' (submit, status, cancel)");
}

int run_schedules(global_options& g, const std::vector<std::string>& args) {
    for (std::size_t i = 1; i < args.size(); ++i) {
        if (args[i] != "--json") throw usage_error("schedules: unexpected argument '" + args[i] + "'");
        g.json = true;
    }
    auto wc = connect_wf(g);
    auto r = wc.schedules();
    if (!r) return report(r.error());
    const auto& list = (*r)["schedules"];
    if (g.json) {
        json out = json::array();
        for (auto s : list) {
            s["last_fire"] = s["last_fire_ms"].get<int64_t>() > 0 ? json(when(s["last_fire_ms"])) : json(nullptr);
            s["next_fire"] = s["next_fire_ms"].get<int64_t>() > 0 ? json(when(s["next_fire_ms"])) : json(nullptr);
            out.push_back(std::move(s));
        }
        std::cout << out.dump() << "\n";
        return exit_ok;
    }
    if (list.empty()) {
        std::cout << "no schedules configured\n";
    }
    for (const auto& s : list) {
        print_schedule(s);
    }
    return exit_ok;
}

// ---- workflow listing and schedule control ----

int run_workflows(global_options& g, const std::vector<std::string>& args) {
    client::workflow_filter f;
    for (std::size_t i = 1; i < args.size(); ++i) {
        const bool has_value = i + 1 < args.size();
        if (args[i] == "--json") {
            g.json = true;
        } else if (args[i] == "--state" && has_value) {
            f.state = upper(args[++i]);
        } else if (args[i] == "--before" && has_value) {
            f.before = args[++i];
        } else if (args[i] == "--limit" && has_value) {
            f.limit = limit_arg(args[++i]);
        } else {
            throw usage_error("workflows: unexpected argument '" + args[i] + "'");
        }
    }
    auto wc = connect_wf(g);
    auto page = wc.workflows(f);
    if (!page) return report(page.error());
    if (g.json) {
        json list = json::array();
        for (const auto& w : page->workflows) list.push_back(summary_json(w));
        std::cout << json{{"workflows", list}, {"next", page->next}}.dump() << "\n";
    } else {
        print_workflows(page->workflows);
    }
    if (!page->next.empty()) {
        // On stderr, so that stdout stays the list (or its JSON).
        std::cerr << "more: taskmill workflows ... --before " << page->next << "\n";
    }
    return exit_ok;
}

int run_schedule(global_options& g, const std::vector<std::string>& args) {
    if (args.size() < 3 || (args[1] != "trigger" && args[1] != "pause" && args[1] != "resume")) {
        throw usage_error("schedule: expected trigger NAME | pause NAME | resume NAME");
    }
    for (std::size_t i = 3; i < args.size(); ++i) {
        if (args[i] != "--json") throw usage_error("schedule " + args[1] + ": unexpected argument '" + args[i] + "'");
        g.json = true;
    }
    auto wc = connect_wf(g);
    if (args[1] == "trigger") {
        auto id = wc.trigger_schedule(args[2]);
        if (!id) return report(id.error());
        std::cout << (g.json ? json{{"id", *id}}.dump() : *id) << "\n";
        return exit_ok;
    }
    auto s = args[1] == "pause" ? wc.pause_schedule(args[2]) : wc.resume_schedule(args[2]);
    if (!s) return report(s.error());
    if (g.json) {
        std::cout << s->dump() << "\n";
    } else {
        print_schedule(*s);
    }
    return exit_ok;
}

}  // namespace taskmill::cli
