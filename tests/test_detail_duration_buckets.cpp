// Tests for include/parley/detail/duration_buckets.hpp. Included first: the
// header must stand on its own.
#include <parley/detail/duration_buckets.hpp>

#include <doctest/doctest.h>

#include <array>
#include <atomic>
#include <cstdint>

TEST_CASE("detail::count_duration: the first bucket whose bound the duration does not exceed") {
    constexpr std::array<double, 3> bounds{0.001, 0.01, 0.1}; // 1 ms, 10 ms, 100 ms
    std::array<std::atomic<std::uint64_t>, 3> within{};
    parley::detail::count_duration(bounds, within, 0);            // 0 ns
    parley::detail::count_duration(bounds, within, 1'000'000);    // 1 ms: at the bound
    parley::detail::count_duration(bounds, within, 1'000'001);    // just above it
    parley::detail::count_duration(bounds, within, 100'000'000);  // 100 ms
    parley::detail::count_duration(bounds, within, 100'000'001);  // above every bound
    CHECK(within[0] == 2);
    CHECK(within[1] == 1);
    CHECK(within[2] == 1);
}
