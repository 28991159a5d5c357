// seconds_histogram: observing and reading back a quantile.
#include "taskmill/metrics/histogram.hpp"

#include <algorithm>

namespace taskmill::metrics {

void seconds_histogram::observe(double seconds) {
    if (!(seconds >= 0)) {
        seconds = 0;  // clock steps and NaN land in the first bucket
    }
    auto it = std::lower_bound(bounds.begin(), bounds.end(), seconds);
    ++buckets[static_cast<std::size_t>(it - bounds.begin())];
    sum += seconds;
    ++count;
}

std::optional<double> seconds_histogram::quantile(double q) const {
    if (count == 0) {
        return std::nullopt;
    }
    const double rank = std::clamp(q, 0.0, 1.0) * static_cast<double>(count);
    uint64_t below = 0;
    for (std::size_t i = 0; i < bounds.size(); ++i) {
        const uint64_t in = buckets[i];
        if (in > 0 && static_cast<double>(below + in) >= rank) {
            const double lower = i == 0 ? 0.0 : bounds[i - 1];
            return lower + (bounds[i] - lower) * (rank - static_cast<double>(below)) / static_cast<double>(in);
        }
        below += in;
    }
    return bounds.back();  // in +Inf: as histogram_quantile, the highest finite bound
}

}  // namespace taskmill::metrics
