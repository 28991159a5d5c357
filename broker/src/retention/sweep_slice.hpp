// The bound of one retention sweep slice: the sweep runs inside the loop's
// turn, so it stops after max_sweep_deletes tasks or max_sweep_us of
// steady-clock time, whichever comes first, and goes on in the next turn;
// but never before `pace` deletions (as many as the turn gave deletion
// times to), so that under a sustained load deletion keeps up with
// finishing and the store stays the same size. That part grows with the
// turn's own work, never with the backlog. The walk of a state's finished
// tasks deletes in batches of up to 128 (sized to room()), checking the
// bounds between batches.
#pragma once

#include <chrono>
#include <cstdint>

namespace taskmill::broker {

inline constexpr uint32_t max_sweep_deletes = 1000;
inline constexpr int64_t max_sweep_us = 1000;

struct sweep_slice {
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    uint32_t pace = 0;     // deletions made whatever the time (due ones permitting)
    uint32_t deleted = 0;  // tasks deleted in this slice
    bool spent() const;
    // Deletions left before the count bound (the time bound aside).
    uint32_t room() const;
};

}  // namespace taskmill::broker
