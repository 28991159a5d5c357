// The Prometheus text writer, taskmill_build_info and process_*.
#include "taskmill/metrics/text.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "taskmill/metrics/process.hpp"

namespace taskmill::metrics {

namespace {

std::string number(double v) {
    if (std::isinf(v)) {
        return v > 0 ? "+Inf" : "-Inf";
    }
    if (std::isnan(v)) {
        return "NaN";
    }
    // The shortest text that reads back as `v`, in plain decimals where
    // they stay short: bucket bounds print as written (0.1, not
    // 0.10000000000000001; 0.0001, not 1e-04), so `le="0.1"` matches.
    const double a = std::fabs(v);
    const auto format = a != 0 && (a < 1e-6 || a >= 1e15) ? std::chars_format::general : std::chars_format::fixed;
    char buf[64];
    auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v, format);
    return ec == std::errc() ? std::string(buf, end) : std::string("NaN");
}

}  // namespace

std::string label(std::string_view key, std::string_view value) {
    std::string out(key);
    out += "=\"";
    for (char c : value) {
        if (c == '\\' || c == '"') {
            out.push_back('\\');
            out.push_back(c);
        } else if (c == '\n') {
            out += "\\n";
        } else {
            out.push_back(c);
        }
    }
    out.push_back('"');
    return out;
}

void text_writer::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    out_ += help;
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void text_writer::sample(std::string_view name, std::string_view labels, double value) {
    out_ += name;
    if (!labels.empty()) {
        out_ += '{';
        out_ += labels;
        out_ += '}';
    }
    out_ += ' ';
    out_ += number(value);
    out_ += '\n';
}

void text_writer::histogram(std::string_view name, std::string_view labels, const seconds_histogram& h) {
    const std::string bucket = std::string(name) + "_bucket";
    const std::string prefix = labels.empty() ? std::string() : std::string(labels) + ",";
    uint64_t cumulative = 0;
    for (std::size_t i = 0; i < seconds_histogram::bounds.size(); ++i) {
        cumulative += h.buckets[i];
        sample(bucket, prefix + label("le", number(seconds_histogram::bounds[i])), static_cast<double>(cumulative));
    }
    cumulative += h.buckets.back();
    sample(bucket, prefix + label("le", "+Inf"), static_cast<double>(cumulative));
    sample(std::string(name) + "_sum", labels, h.sum);
    sample(std::string(name) + "_count", labels, static_cast<double>(h.count));
}

void write_build_info(text_writer& w) {
    w.family("taskmill_build_info", "gauge", "Always 1; the labels name the build.");
    std::string labels = label("version", TASKMILL_VERSION);
    if (std::string_view(TASKMILL_REVISION).size() > 0) {
        labels += "," + label("revision", TASKMILL_REVISION);
    }
    w.sample("taskmill_build_info", labels, 1);
}

void write_process(text_writer& w) {
    if (auto p = read_process(0)) {
        w.family("process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        w.sample("process_cpu_seconds_total", "", p->cpu_seconds);
        w.family("process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        w.sample("process_resident_memory_bytes", "", static_cast<double>(p->resident_bytes));
        w.family("process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        w.sample("process_virtual_memory_bytes", "", static_cast<double>(p->virtual_bytes));
        w.family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
        w.sample("process_start_time_seconds", "", p->start_time_seconds);
    }
    if (auto n = open_fds()) {
        w.family("process_open_fds", "gauge", "Number of open file descriptors.");
        w.sample("process_open_fds", "", static_cast<double>(*n));
    }
    if (auto n = max_fds()) {
        w.family("process_max_fds", "gauge", "Maximum number of open file descriptors.");
        w.sample("process_max_fds", "", static_cast<double>(*n));
    }
}

}  // namespace taskmill::metrics
