// The host's /metrics (see host_metrics.hpp).
#include "host_metrics.hpp"

#include <httplib.h>

#include <taskmill/metrics/process.hpp>
#include <taskmill/metrics/text.hpp>

namespace taskmill::host::detail {

namespace {

using metrics::label;
using metrics::text_writer;

void counter(text_writer& w, const char* name, const char* help, uint64_t v) {
    w.family(name, "counter", help);
    w.sample(name, "", static_cast<double>(v));
}

void render_handlers(text_writer& w, const std::map<std::string, handler_figures>& by_handler) {
    struct outcome_def {
        const char* outcome;
        uint64_t handler_figures::*field;
    };
    static const outcome_def outcomes[] = {{"succeeded", &handler_figures::succeeded},
                                           {"failed", &handler_figures::failed},
                                           {"retried", &handler_figures::retried},
                                           {"cancelled", &handler_figures::cancelled},
                                           {"timeout", &handler_figures::timeouts}};
    w.family("taskmill_host_tasks_total", "counter",
             "Attempts this host's workers ran, by handler and outcome (succeeded failed retried cancelled "
             "timeout).");
    for (const auto& [name, f] : by_handler) {
        for (const auto& o : outcomes) {
            w.sample("taskmill_host_tasks_total", label("handler", name) + "," + label("outcome", o.outcome),
                     static_cast<double>(f.*(o.field)));
        }
    }
    w.family("taskmill_host_task_run_seconds", "histogram",
             "Handler run time in seconds on this host's workers, from the start in a slot, by handler.");
    for (const auto& [name, f] : by_handler) {
        w.histogram("taskmill_host_task_run_seconds", label("handler", name), f.run);
    }
}

}  // namespace

host_metrics::host_metrics(std::string run_dir, std::string host, uint32_t concurrency)
    : run_dir_(std::move(run_dir)), host_(std::move(host)), concurrency_(concurrency) {}

void host_metrics::worker_started(pid_t pid, bool restart) {
    std::lock_guard lock(mu_);
    t_.live.insert(pid);
    ++t_.starts;
    if (restart) ++t_.restarts;
}

void host_metrics::worker_gone(pid_t pid, bool crashed) {
    auto last = read_worker_stats(worker_stats_path(run_dir_, pid));
    std::lock_guard lock(mu_);
    t_.live.erase(pid);
    if (crashed) ++t_.crashes;
    if (last) {
        for (const auto& [name, f] : last->handlers) t_.gone[name].add(f);
    }
}

void host_metrics::plugins_judged(std::size_t accepted, std::size_t refused) {
    std::lock_guard lock(mu_);
    t_.plugin_loads += accepted;
    t_.plugin_refusals += refused;
}

std::string host_metrics::render() {
    text_writer w;
    metrics::write_build_info(w);
    tally t;
    {
        std::lock_guard lock(mu_);
        t = t_;
    }
    auto& by_handler = t.gone;
    uint64_t busy = 0;
    w.family("taskmill_host_worker_resident_memory_bytes", "gauge", "Resident memory of each worker process in bytes.");
    for (pid_t pid : t.live) {
        if (auto f = read_worker_stats(worker_stats_path(run_dir_, pid))) {
            busy += f->busy;
            for (const auto& [name, h] : f->handlers) by_handler[name].add(h);
        }
        if (auto p = metrics::read_process(pid)) {
            w.sample("taskmill_host_worker_resident_memory_bytes", label("worker", host_ + ":" + std::to_string(pid)),
                     static_cast<double>(p->resident_bytes));
        }
    }
    render_handlers(w, by_handler);
    w.family("taskmill_host_workers", "gauge", "Worker processes running (the current and retiring generations).");
    w.sample("taskmill_host_workers", "", static_cast<double>(t.live.size()));
    w.family("taskmill_host_slots", "gauge", "Task slots over this host's workers.");
    w.sample("taskmill_host_slots", "", static_cast<double>(t.live.size()) * concurrency_);
    w.family("taskmill_host_slots_busy", "gauge", "Task slots running a handler now.");
    w.sample("taskmill_host_slots_busy", "", static_cast<double>(busy));
    counter(w, "taskmill_host_worker_starts_total", "Worker processes started.", t.starts);
    counter(w, "taskmill_host_worker_restarts_total", "Worker processes started in place of one that exited.",
            t.restarts);
    counter(w, "taskmill_host_worker_crashes_total",
            "Worker processes that exited other than cleanly (crash, kill, failed start).", t.crashes);
    counter(w, "taskmill_host_plugin_loads_total", "Plugin files accepted by the checks (start and reloads).",
            t.plugin_loads);
    counter(w, "taskmill_host_plugin_refusals_total", "Plugin files refused (checks, strict modes, crash loops).",
            t.plugin_refusals);
    metrics::write_process(w);
    return w.take();
}

result<std::unique_ptr<metrics_server>> metrics_server::start(const std::string& address, host_metrics& figures) {
    auto colon = address.rfind(':');
    int port = -1;
    if (colon != std::string::npos && colon > 0) {
        try {
            port = std::stoi(address.substr(colon + 1));
        } catch (const std::exception&) {
            port = -1;
        }
    }
    if (port < 0 || port > 65535) return fail(errc::invalid_argument, "metrics: '" + address + "' is not HOST:PORT");
    const std::string host = address.substr(0, colon);
    std::unique_ptr<metrics_server> s(new metrics_server());
    s->srv_ = std::make_unique<httplib::Server>();
    s->srv_->Get("/metrics", [&figures](const httplib::Request&, httplib::Response& res) {
        res.set_content(figures.render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    int bound = port == 0 ? s->srv_->bind_to_any_port(host) : (s->srv_->bind_to_port(host, port) ? port : -1);
    if (bound < 0) return fail(errc::unavailable, "metrics: cannot listen on " + address);
    s->url_ = "http://" + host + ":" + std::to_string(bound) + "/metrics";
    s->thread_ = std::thread([srv = s->srv_.get()] { srv->listen_after_bind(); });
    return result<std::unique_ptr<metrics_server>>(std::move(s));
}

metrics_server::~metrics_server() {
    if (srv_) srv_->stop();
    if (thread_.joinable()) thread_.join();
}

}  // namespace taskmill::host::detail
