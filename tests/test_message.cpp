// Tests for include/parley/message.hpp. Included first: the header must
// stand on its own.
#include <parley/hub/message.hpp>

#include <doctest/doctest.h>

#include <asio/buffer.hpp>

#include <cstddef>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace {

std::string text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

} // namespace

TEST_CASE("message: make_frame_message frames a payload once, header and bytes together") {
    std::error_code ec;
    const auto m = parley::make_frame_message("hello", ec);
    REQUIRE_FALSE(ec);
    REQUIRE(m);
    CHECK(m->size() == 9);
    CHECK(text(m->wire()) == std::string("\0\0\0\x05hello", 9));
    CHECK(text(m->payload()) == "hello");
    CHECK(m->frame_count() == 1);
    CHECK(m->data() == m->wire().data());
    CHECK(m->buffer().data() == m->data());
    CHECK(m->buffer().size() == 9);

    // An empty payload is a frame too: a header alone.
    const auto empty = parley::make_frame_message(std::string_view(), ec);
    REQUIRE_FALSE(ec);
    CHECK(text(empty->wire()) == std::string(4, '\0'));
    CHECK(empty->payload().empty());
}

TEST_CASE("message: other frame formats, and payloads over the limit") {
    constexpr parley::frame_format le16{.length_bytes = 2, .order = parley::byte_order::little,
                                        .max_payload = 8};
    std::error_code ec;
    const std::string payload = "8 bytes!";
    const auto m = parley::make_frame_message(parley::frame_codec<le16>{},
                                              std::as_bytes(std::span(payload)), ec);
    REQUIRE_FALSE(ec);
    CHECK(text(m->wire()) == std::string("\x08\0" "8 bytes!", 10));
    CHECK(text(m->payload()) == payload);

    const std::string nine = "9 bytes!!";
    const auto too_big = parley::make_frame_message(parley::frame_codec<le16>{},
                                                    std::as_bytes(std::span(nine)), ec);
    CHECK(ec == parley::error::frame_too_large);
    CHECK_FALSE(too_big);

    ec.clear();
    CHECK_FALSE(parley::make_frame_message(std::string(1024 * 1024 + 1, 'x'), ec));
    CHECK(ec == parley::error::frame_too_large);
}

TEST_CASE("message: make_raw_message keeps the bytes as given, with a frame count") {
    const auto line = parley::make_raw_message("hi there\n");
    CHECK(text(line->wire()) == "hi there\n");
    CHECK(text(line->payload()) == "hi there\n"); // no header
    CHECK(line->frame_count() == 1);

    const std::string two_frames("\0\0\0\x01" "a\0\0\0\x01" "b", 10);
    const auto batch = parley::make_raw_message(std::as_bytes(std::span(two_frames)), 2);
    CHECK(batch->frame_count() == 2);
    CHECK(text(batch->wire()) == two_frames);

    const auto nothing = parley::make_raw_message(std::string_view());
    CHECK(nothing->size() == 0);
}

TEST_CASE("message_ptr: copies share one message; the last owner frees it") {
    std::error_code ec;
    auto a = parley::make_frame_message("shared", ec);
    const parley::message* raw = a.get();
    CHECK(a->use_count() == 1);
    {
        auto b = a; // copy
        CHECK(b.get() == raw);
        CHECK(a->use_count() == 2);
        parley::message_ptr c;
        CHECK_FALSE(c);
        c = b; // assignment
        CHECK(raw->use_count() == 3);
        auto d = std::move(c);
        CHECK_FALSE(c); // moved from: empty, and no count changed
        CHECK(raw->use_count() == 3);
        d.reset();
        CHECK_FALSE(d);
        CHECK(raw->use_count() == 2);
    }
    CHECK(a->use_count() == 1);

    // The manual counts a queue of raw pointers uses.
    raw->add_refs(5);
    CHECK(raw->use_count() == 6);
    raw->release_refs(4);
    raw->release_refs(0);
    CHECK(raw->use_count() == 2);
    raw->add_ref();
    raw->release();
    raw->release();
    CHECK(raw->use_count() == 1);

    parley::message_ptr other = parley::make_raw_message("other");
    a.swap(other);
    CHECK(other.get() == raw);
    CHECK(text(a->wire()) == "other");
    // Leaving scope frees both; AddressSanitizer's leak check (asan preset)
    // says whether they were.
}
