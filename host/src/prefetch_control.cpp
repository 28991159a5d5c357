// The auto prefetch: see prefetch_control.hpp.
#include "prefetch_control.hpp"

#include <algorithm>
#include <cmath>

namespace taskmill::host::detail {

prefetch_control::prefetch_control(uint32_t concurrency, uint32_t initial, uint32_t max, bool fixed)
    : concurrency_(concurrency), max_(std::max<uint32_t>(max, 1)), current_(initial), fixed_(fixed) {}

uint32_t prefetch_control::target(uint32_t concurrency, double mean_ns, uint32_t max) {
    const double cover_ns = std::chrono::duration<double, std::nano>(cover).count();
    const double want = std::ceil(static_cast<double>(concurrency) * cover_ns / std::max(mean_ns, 1.0));
    return static_cast<uint32_t>(std::clamp(want, 1.0, static_cast<double>(std::max<uint32_t>(max, 1))));
}

std::optional<uint32_t> prefetch_control::update(clock::time_point now) {
    if (now - last_ < min_interval) {
        return std::nullopt;
    }
    const uint64_t runs = runs_.load(std::memory_order_relaxed);
    const uint64_t ns = run_ns_.load(std::memory_order_relaxed);
    if (runs - seen_runs_ < min_sample) {
        return std::nullopt;  // too few to judge; keep counting from the same point
    }
    mean_ns_ = static_cast<double>(ns - seen_ns_) / static_cast<double>(runs - seen_runs_);
    seen_runs_ = runs;
    seen_ns_ = ns;
    last_ = now;
    if (fixed_) {
        return std::nullopt;
    }
    const uint32_t want = target(concurrency_, mean_ns_, max_);
    const bool grow = want >= current_ + (current_ + 1) / 2;  // >= 1.5x
    const bool shrink = want <= current_ / 2;
    if (!grow && !shrink) {
        return std::nullopt;
    }
    current_ = want;
    return want;
}

}  // namespace taskmill::host::detail
