// Flood control's token buckets (parley/chat/core/flood.hpp), time passed in.
#include <parley/chat/core/flood.hpp>

#include <doctest/doctest.h>

using parley::chat::core::flood_bucket;
using parley::chat::core::flood_rates;
using namespace std::chrono_literals;

TEST_CASE("flood bucket: a burst passes, then the rate; the first drop is told apart") {
    const flood_rates r{.messages_per_second = 2, .burst_messages = 3, .bytes_per_second = 1000,
                        .burst_bytes = 4000};
    const auto t0 = std::chrono::steady_clock::time_point(1h);
    flood_bucket b(r, t0);
    for (int i = 0; i < 3; ++i)
        CHECK(b.admit(r, 10, t0) == flood_bucket::verdict::admitted);
    CHECK(b.admit(r, 10, t0) == flood_bucket::verdict::dropped_first);
    CHECK(b.admit(r, 10, t0) == flood_bucket::verdict::dropped);
    CHECK(b.dropped() == 2);
    CHECK(b.admit(r, 10, t0 + 500ms) == flood_bucket::verdict::admitted); // one token back
    // A pause long enough to fill the bucket forgives the drops.
    CHECK(b.admit(r, 10, t0 + 3s) == flood_bucket::verdict::admitted);
    CHECK(b.dropped() == 0);
}

TEST_CASE("flood bucket: bytes count too; an input over the byte burst passes only when full") {
    const flood_rates r{.messages_per_second = 100, .burst_messages = 100, .bytes_per_second = 100,
                        .burst_bytes = 1000};
    const auto t0 = std::chrono::steady_clock::time_point(1h);
    flood_bucket b(r, t0);
    CHECK(b.admit(r, 5000, t0) == flood_bucket::verdict::admitted); // full: passes, empties it
    CHECK(b.admit(r, 10, t0) == flood_bucket::verdict::dropped_first);
    CHECK(b.admit(r, 10, t0 + 200ms) == flood_bucket::verdict::admitted);
    CHECK(b.admit(r, 5000, t0 + 1s) == flood_bucket::verdict::dropped_first); // messages full again: a new spell
    CHECK(b.admit(r, 5000, t0 + 20s) == flood_bucket::verdict::admitted);
}

TEST_CASE("flood bucket: rate 0 turns it off; time going backwards refills nothing") {
    const flood_rates off{.messages_per_second = 0, .burst_messages = 1, .bytes_per_second = 1,
                          .burst_bytes = 1};
    const auto t0 = std::chrono::steady_clock::time_point(1h);
    flood_bucket b(off, t0);
    for (int i = 0; i < 100; ++i)
        CHECK(b.admit(off, 1 << 20, t0) == flood_bucket::verdict::admitted);
    const flood_rates r{.messages_per_second = 1, .burst_messages = 1, .bytes_per_second = 100,
                        .burst_bytes = 100};
    flood_bucket c(r, t0);
    CHECK(c.admit(r, 1, t0) == flood_bucket::verdict::admitted);
    CHECK(c.admit(r, 1, t0 - 10s) == flood_bucket::verdict::dropped_first);
}
