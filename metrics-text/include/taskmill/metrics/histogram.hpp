// A Prometheus histogram of durations in seconds, with fixed bounds from
// 100 µs to 5 min. Plain integers: the owner serialises access (the broker's
// loop thread, or the host supervisor's), so observing costs no lock.
#pragma once

#include <array>
#include <cstdint>
#include <optional>

namespace taskmill::metrics {

struct seconds_histogram {
    static constexpr std::array<double, 20> bounds = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                      0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5,
                                                      5,      10,      30,     60,    120,    300};
    std::array<uint64_t, bounds.size() + 1> buckets{};  // per bucket (not cumulative); last = +Inf
    double sum = 0;
    uint64_t count = 0;

    // Negative values and NaN (a clock step) count as 0.
    void observe(double seconds);
    // The q-quantile (0..1) estimated as Prometheus' histogram_quantile
    // does: linear within the bucket it falls in; the highest finite bound
    // when it falls in +Inf. nullopt when nothing was observed.
    std::optional<double> quantile(double q) const;
};

}  // namespace taskmill::metrics
