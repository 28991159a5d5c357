// Prometheus text exposition format 0.0.4: families (HELP and TYPE once
// each), samples, histograms and the figures every taskmill process shows
// (taskmill_build_info, process_*).
#pragma once

#include <string>
#include <string_view>

#include "taskmill/metrics/histogram.hpp"

namespace taskmill::metrics {

// `key="value"`, the value escaped (backslash, double quote, newline).
std::string label(std::string_view key, std::string_view value);

class text_writer {
public:
    // HELP and TYPE of a family; its samples follow.
    void family(std::string_view name, std::string_view type, std::string_view help);
    // `labels`: comma-separated label() pairs, or empty.
    void sample(std::string_view name, std::string_view labels, double value);
    // The _bucket (cumulative, le in seconds), _sum and _count lines.
    void histogram(std::string_view name, std::string_view labels, const seconds_histogram& h);
    std::string take() { return std::move(out_); }

private:
    std::string out_;
};

// taskmill_build_info{version,revision} 1 (revision: the commit given to
// CMake as TASKMILL_REVISION; the label is absent when it was not given).
void write_build_info(text_writer& w);
// The standard process_* figures of this process, from /proc/self; the
// ones /proc does not answer are left out.
void write_process(text_writer& w);

}  // namespace taskmill::metrics
