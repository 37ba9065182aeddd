// Tests for include/parley/detail/heap_trim.hpp. Included first: the header
// must stand on its own.
#include <parley/detail/heap_trim.hpp>

#include "support/skip.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <memory>
#include <vector>

using parley::detail::heap_figures;
using parley::detail::heap_trimmer;

TEST_CASE("detail::heap_trimmer: once per quiet period after activity, when enough is free") {
    heap_trimmer t(1000, 0);
    int looks = 0;
    const auto lots_free = [&] {
        ++looks;
        return heap_figures{8000, 4000};
    };
    CHECK(t.due(false, lots_free)); // the start counts as activity
    CHECK_FALSE(t.due(false, lots_free)); // still the same quiet period
    CHECK_FALSE(t.due(false, lots_free));
    CHECK(looks == 1); // the figures are not read in vain
    CHECK_FALSE(t.due(true, lots_free));  // busy: never during activity
    CHECK_FALSE(t.due(true, lots_free));
    CHECK(looks == 1);
    CHECK(t.due(false, lots_free));       // quiet again after it
    CHECK_FALSE(t.due(false, lots_free));
    // Too little free, absolutely or next to what is in use: not worth it.
    CHECK_FALSE(t.due(true, lots_free));
    CHECK_FALSE(t.due(false, [] { return heap_figures{8000, 999}; }));
    CHECK_FALSE(t.due(true, lots_free));
    CHECK_FALSE(t.due(false, [] { return heap_figures{80000, 9000}; }));
    CHECK_FALSE(t.due(true, lots_free));
    CHECK(t.due(false, [] { return heap_figures{80000, 10000}; }));
}

TEST_CASE("detail::heap_trimmer: at least min_gap periods between two trims") {
    heap_trimmer t(1000, 3);
    const auto lots_free = [] { return heap_figures{8000, 4000}; };
    CHECK(t.due(false, lots_free));       // the start counts as activity
    CHECK_FALSE(t.due(true, lots_free));  // period 1 after the trim: busy
    CHECK_FALSE(t.due(false, lots_free)); // 2: quiet after activity, but too soon
    CHECK(t.due(false, lots_free));       // 3: the gap is over, still armed
    CHECK_FALSE(t.due(false, lots_free)); // once per quiet period
    CHECK_FALSE(t.due(true, lots_free));  // 2 periods after the trim
    CHECK(t.due(false, lots_free));       // 3: quiet after activity, the gap is over
}

TEST_CASE("detail::heap_release: freed blocks between live ones are given back (glibc)") {
    const heap_figures start = parley::detail::heap_now();
    if (start.in_use == 0 && start.free == 0) {
        parley::test::skip("no heap figures from this C library (or a sanitizer's allocator)");
        return;
    }
    // Large blocks interleaved with small live ones, as a burst leaves them:
    // freeing the large ones leaves free pages the heap's top cannot give
    // back.
    std::vector<void*> large, small;
    for (int i = 0; i < 2000; ++i) {
        large.push_back(std::malloc(8192));
        small.push_back(std::malloc(64));
    }
    for (void* p : large)
        std::free(p);
    const heap_figures after_free = parley::detail::heap_now();
    CHECK(after_free.free >= start.free + 2000 * 8192 / 2);
    CHECK(parley::detail::heap_release()); // whole pages went back
    for (void* p : small)
        std::free(p);
}
