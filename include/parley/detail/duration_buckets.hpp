// parley internals: counting a duration into a Prometheus-style histogram
// kept in atomics (one writer or many; readers take relaxed snapshots).
#ifndef PARLEY_DETAIL_DURATION_BUCKETS_HPP
#define PARLEY_DETAIL_DURATION_BUCKETS_HPP

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace parley::detail {

/// Counts `ns` in within[i] for the first upper bound (in seconds) it does
/// not exceed; a duration above the last bound is counted nowhere (the
/// histogram's total count holds it). The caller adds to its count and sum.
template <std::size_t N>
void count_duration(const std::array<double, N>& upper_bounds_s,
                    std::array<std::atomic<std::uint64_t>, N>& within, std::uint64_t ns) noexcept {
    const double seconds = static_cast<double>(ns) * 1e-9;
    for (std::size_t b = 0; b < N; ++b)
        if (seconds <= upper_bounds_s[b]) {
            within[b].fetch_add(1, std::memory_order_relaxed);
            return;
        }
}

} // namespace parley::detail

#endif
