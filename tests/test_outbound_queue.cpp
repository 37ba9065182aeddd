#include <parley/hub/outbound_queue.hpp>

#include <doctest/doctest.h>

#include <span>
#include <string>
#include <vector>

namespace {

parley::message_ptr msg(const std::string& text) { return parley::make_raw_message(text); }

// Everything the queue would write, as text, without consuming it.
std::string lent_text(parley::outbound_queue& q, std::size_t max_buffers = 64) {
    std::vector<asio::const_buffer> buffers(max_buffers);
    const std::size_t n = q.take(buffers);
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out.append(static_cast<const char*>(buffers[i].data()), buffers[i].size());
    return out;
}

} // namespace

TEST_CASE("outbound_queue: FIFO, byte accounting, partial writes resume mid-message") {
    parley::outbound_queue q;
    CHECK(q.empty());
    REQUIRE(q.push(msg("hello")) == parley::outbound_queue::push_result::queued);
    REQUIRE(q.push(msg("world")) == parley::outbound_queue::push_result::queued);
    CHECK(q.size() == 2);
    CHECK(q.bytes() == 10);

    CHECK(lent_text(q) == "helloworld");
    CHECK(q.consume(3) == 0); // "hel" sent
    CHECK(q.bytes() == 7);
    CHECK(lent_text(q) == "loworld"); // resumes inside the first message
    CHECK(q.consume(4) == 1);         // "lowo": first done, second started
    CHECK(q.size() == 1);
    CHECK(lent_text(q) == "rld");
    CHECK(q.consume(3) == 1);
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
}

TEST_CASE("outbound_queue: take lends at most as many buffers as given") {
    parley::outbound_queue q;
    for (int i = 0; i < 100; ++i)
        q.push(msg(std::to_string(i % 10)));
    CHECK(lent_text(q, 10) == "0123456789");
    q.consume(10);
    CHECK(q.size() == 90);
    std::size_t total = 0;
    while (!q.empty())
        total += q.consume(lent_text(q, 7).size());
    CHECK(total == 90);
}

TEST_CASE("outbound_queue: disconnect policy refuses what exceeds the limits") {
    SUBCASE("bytes") {
        parley::outbound_queue q({.max_bytes = 10, .max_messages = 100});
        CHECK(q.push(msg("12345")) == parley::outbound_queue::push_result::queued);
        CHECK(q.push(msg("12345")) == parley::outbound_queue::push_result::queued);
        CHECK(q.push(msg("1")) == parley::outbound_queue::push_result::overflow);
        CHECK(q.size() == 2); // nothing was queued
        CHECK(q.bytes() == 10);
    }
    SUBCASE("messages") {
        parley::outbound_queue q({.max_bytes = 1000, .max_messages = 3});
        for (int i = 0; i < 3; ++i)
            CHECK(q.push(msg("x")) == parley::outbound_queue::push_result::queued);
        CHECK(q.push(msg("x")) == parley::outbound_queue::push_result::overflow);
        CHECK(q.size() == 3);
    }
}

TEST_CASE("outbound_queue: drop_oldest makes room, never dropping what is being written") {
    using r = parley::outbound_queue::push_result;
    parley::outbound_queue q(
        {.max_bytes = 9, .max_messages = 100, .policy = parley::overflow_policy::drop_oldest});
    q.push(msg("aaa"));
    q.push(msg("bbb"));
    q.push(msg("ccc"));

    SUBCASE("nothing in flight: the oldest goes") {
        std::size_t dropped = 0;
        CHECK(q.push(msg("ddd"), &dropped) == r::dropped_oldest);
        CHECK(dropped == 1);
        CHECK(lent_text(q) == "bbbcccddd");
    }
    SUBCASE("a partly written front message stays whole") {
        (void)lent_text(q);
        q.consume(1); // "a" is on the wire: dropping the rest of "aaa" would cut a frame
        std::size_t dropped = 0;
        CHECK(q.push(msg("ddd"), &dropped) == r::dropped_oldest);
        CHECK(dropped == 1);
        CHECK(lent_text(q) == "aacccddd"); // "bbb" went instead
    }
    SUBCASE("messages lent to a write in progress stay") {
        std::vector<asio::const_buffer> buffers(2);
        REQUIRE(q.take(buffers) == 2); // "aaa" and "bbb" are being written
        std::size_t dropped = 0;
        CHECK(q.push(msg("ddd"), &dropped) == r::dropped_oldest);
        CHECK(dropped == 1); // "ccc"
        q.consume(6);
        CHECK(lent_text(q) == "ddd");
    }
    SUBCASE("when everything left is in flight, the new message is refused") {
        std::vector<asio::const_buffer> buffers(3);
        REQUIRE(q.take(buffers) == 3);
        CHECK(q.push(msg("ddd")) == r::overflow);
    }
    SUBCASE("a message larger than the whole limit is refused") {
        CHECK(q.push(msg("0123456789")) == r::overflow);
        CHECK(q.size() == 3);
    }
}

TEST_CASE("outbound_queue: wraps around its ring many times and clear() empties it") {
    parley::outbound_queue q;
    std::string expected, written;
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 7; ++i) {
            const std::string text = std::to_string(round) + ":" + std::to_string(i) + ";";
            q.push(msg(text));
            expected += text;
        }
        const std::string lent = lent_text(q, 5);
        written += lent;
        q.consume(lent.size());
    }
    while (!q.empty()) {
        const std::string lent = lent_text(q, 5);
        written += lent;
        q.consume(lent.size());
    }
    CHECK(written == expected);
    q.push(msg("x"));
    q.clear();
    CHECK(q.empty());
    CHECK(q.bytes() == 0);
}

TEST_CASE("outbound_queue: push_counted takes over the caller's reference, or leaves it") {
    auto m = msg("abc");
    m->add_refs(2); // for two queues
    parley::outbound_queue q({.max_bytes = 4, .max_messages = 8});
    CHECK(q.push_counted(*m) == parley::outbound_queue::push_result::queued);
    CHECK(m->use_count() == 3);
    // Does not fit: the second reference stays with the caller.
    CHECK(q.push_counted(*m) == parley::outbound_queue::push_result::overflow);
    CHECK(m->use_count() == 3);
    m->release_refs(1);
    CHECK(m->use_count() == 2);
    q.clear();
    CHECK(m->use_count() == 1);
    // push() adds its own reference.
    CHECK(q.push(m) == parley::outbound_queue::push_result::queued);
    CHECK(m->use_count() == 2);
    q.clear();
    CHECK(m->use_count() == 1);
}

TEST_CASE("outbound_queue: a large ring is freed when drained and comes back at its size") {
    parley::outbound_queue q({.max_bytes = 1 << 20, .max_messages = 1 << 16});
    auto m = msg("x");
    const auto drain = [&] {
        std::vector<asio::const_buffer> buffers(4096);
        while (!q.empty()) {
            const std::size_t n = q.take(buffers);
            q.consume(asio::buffer_size(std::span(buffers).first(n)));
        }
    };
    for (int i = 0; i < 3000; ++i)
        q.push(m);
    CHECK(q.capacity() == 4096);
    drain();
    CHECK(q.capacity() == 0); // an idle member pins no large ring
    CHECK(m->use_count() == 1);
    q.push(m);
    CHECK(q.capacity() == 4096); // one allocation, not a doubling series
    drain();
    // That burst needed one slot: the remembered size halves each time.
    q.push(m);
    CHECK(q.capacity() == 2048);
    drain();
    q.push(m);
    CHECK(q.capacity() == 1024);
    drain();
    CHECK(q.capacity() == 1024); // up to 1024 slots stay, to save an allocation per burst
}

TEST_CASE("outbound_queue: release_if_idle frees a small ring only after a period without writes") {
    parley::outbound_queue q;
    auto m = msg("x");
    const auto send_one = [&] {
        q.push(m);
        std::vector<asio::const_buffer> buffers(4);
        const std::size_t n = q.take(buffers);
        q.consume(asio::buffer_size(std::span(buffers).first(n)));
    };
    CHECK_FALSE(q.release_if_idle()); // nothing held
    send_one();
    CHECK(q.capacity() == 16);        // a small ring stays when drained
    CHECK_FALSE(q.release_if_idle()); // written in this period: kept
    CHECK(q.capacity() == 16);
    CHECK(q.release_if_idle());       // a whole period idle: given back
    CHECK(q.capacity() == 0);
    CHECK(m->use_count() == 1);
    // A member written to in every period keeps its ring: no allocation
    // per message.
    send_one();
    for (int period = 0; period < 5; ++period) {
        send_one();
        CHECK_FALSE(q.release_if_idle());
        CHECK(q.capacity() == 16);
    }
    // Never while something is queued.
    q.push(m);
    CHECK_FALSE(q.release_if_idle());
    CHECK_FALSE(q.release_if_idle());
    CHECK(q.capacity() == 16);
    CHECK(q.size() == 1);
    q.clear();
    CHECK(m->use_count() == 1);
}

TEST_CASE("outbound_queue: a message relaying a batch of frames counts them when sent or dropped") {
    parley::outbound_queue q(
        {.max_bytes = 12, .max_messages = 100, .policy = parley::overflow_policy::drop_oldest});
    q.push(parley::make_raw_message(std::as_bytes(std::span(std::string_view("abcdef"))), 3));
    q.push(msg("gh"));
    CHECK(q.size() == 2); // queue entries: the batch is one
    (void)lent_text(q);
    CHECK(q.consume(5) == 0); // the batch is not sent whole yet
    (void)lent_text(q);
    CHECK(q.consume(3) == 4); // its three frames, and "gh"
    CHECK(q.empty());

    q.push(parley::make_raw_message(std::as_bytes(std::span(std::string_view("abcdef"))), 3));
    q.push(msg("gh"));
    std::size_t dropped = 0;
    CHECK(q.push(msg("0123456"), &dropped) ==
          parley::outbound_queue::push_result::dropped_oldest);
    CHECK(dropped == 3); // the whole batch went, and it held three frames
    CHECK(lent_text(q) == "gh0123456");
}

TEST_CASE("outbound_queue: backpressure marks, and a hard cap passed by one message at most") {
    using r = parley::outbound_queue::push_result;
    SUBCASE("marks from max_bytes by default") {
        parley::outbound_queue q({.max_bytes = 4000, .policy = parley::overflow_policy::backpressure});
        CHECK(q.high_water() == 1000);
        CHECK(q.low_water() == 500);
        CHECK_FALSE(q.above_high_water());
        CHECK(q.below_low_water());
    }
    SUBCASE("explicit marks are kept within max_bytes and each other") {
        parley::outbound_queue q({.max_bytes = 100, .policy = parley::overflow_policy::backpressure,
                                  .high_water = 500, .low_water = 700});
        CHECK(q.high_water() == 100);
        CHECK(q.low_water() == 100);
    }
    SUBCASE("hysteresis in bytes; nothing refused or dropped between the marks and the cap") {
        parley::outbound_queue q({.max_bytes = 100, .max_messages = 1000,
                                  .policy = parley::overflow_policy::backpressure,
                                  .high_water = 40, .low_water = 20});
        const std::string ten(10, 'x');
        for (int i = 0; i < 4; ++i)
            REQUIRE(q.push(msg(ten)) == r::queued);
        CHECK_FALSE(q.above_high_water()); // 40: at the mark, not above
        REQUIRE(q.push(msg(ten)) == r::queued);
        CHECK(q.above_high_water());
        CHECK_FALSE(q.below_low_water());
        // Past the cap by the one message that crossed it (a read's batch),
        // then refused: the owner disconnects the reader as with `disconnect`.
        for (int i = 0; i < 5; ++i)
            REQUIRE(q.push(msg(ten)) == r::queued);
        CHECK(q.bytes() == 100);
        CHECK(q.push(msg(std::string(35, 'b'))) == r::overflow);
        CHECK(q.bytes() == 100);
        q.consume(lent_text(q, 1).size()); // 90 left
        CHECK(q.push(msg(std::string(35, 'b'))) == r::queued);
        CHECK(q.bytes() == 125);
        CHECK(q.push(msg("c")) == r::overflow);
        // Drains: not below the low mark until at most 20 bytes are left.
        while (q.size() > 1) {
            CHECK_FALSE(q.below_low_water());
            q.consume(lent_text(q, 1).size());
        }
        CHECK(q.bytes() == 35);
        CHECK_FALSE(q.below_low_water());
        (void)lent_text(q);
        q.consume(15); // partly written: 20 left
        CHECK(q.bytes() == 20);
        CHECK(q.below_low_water());
        CHECK_FALSE(q.above_high_water());
    }
    SUBCASE("in messages: above half of max_messages, below a quarter") {
        parley::outbound_queue q({.max_bytes = 1 << 20, .max_messages = 8,
                                  .policy = parley::overflow_policy::backpressure});
        for (int i = 0; i < 4; ++i)
            REQUIRE(q.push(msg("m")) == r::queued);
        CHECK_FALSE(q.above_high_water());
        REQUIRE(q.push(msg("m")) == r::queued);
        CHECK(q.above_high_water());
        for (int i = 0; i < 3; ++i)
            REQUIRE(q.push(msg("m")) == r::queued);
        CHECK(q.push(msg("m")) == r::overflow); // the message cap holds exactly
        CHECK(q.size() == 8);
        for (int i = 0; i < 6; ++i) {
            CHECK_FALSE(q.below_low_water());
            q.consume(lent_text(q, 1).size());
        }
        CHECK(q.size() == 2);
        CHECK(q.below_low_water());
    }
    SUBCASE("never drops: the messages come out whole and in order") {
        parley::outbound_queue q({.max_bytes = 6, .max_messages = 100,
                                  .policy = parley::overflow_policy::backpressure});
        CHECK(q.push(msg("aaa")) == r::queued);
        CHECK(q.push(msg("bbb")) == r::queued);
        CHECK(q.push(msg("c")) == r::overflow);
        CHECK(lent_text(q) == "aaabbb");
    }
}
