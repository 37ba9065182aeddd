// Tests for include/parley/frame_codec.hpp. Included first: the header must
// stand on its own.
#include <parley/codec/frame_codec.hpp>

#include <doctest/doctest.h>

#include <asio/buffer.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <vector>

namespace {

using parley::byte_order;
using parley::frame_format;
using bytes = std::vector<std::byte>;

// A frame_format as a type, so doctest can iterate over configurations.
template <frame_format F>
struct format_tag {
    static constexpr frame_format value = F;
};

// Every width in both byte orders. A 1- or 2-byte field cannot express the
// default 1 MiB limit, so those formats lower it to what fits.
using fmt_1_big = format_tag<frame_format{1, byte_order::big, 255}>;
using fmt_1_little = format_tag<frame_format{1, byte_order::little, 255}>;
using fmt_2_big = format_tag<frame_format{2, byte_order::big, 65535}>;
using fmt_2_little = format_tag<frame_format{2, byte_order::little, 65535}>;
using fmt_4_big = format_tag<frame_format{4, byte_order::big}>;
using fmt_4_little = format_tag<frame_format{4, byte_order::little}>;
using fmt_8_big = format_tag<frame_format{8, byte_order::big}>;
using fmt_8_little = format_tag<frame_format{8, byte_order::little}>;

#define PARLEY_ALL_FORMATS                                                                      \
    fmt_1_big, fmt_1_little, fmt_2_big, fmt_2_little, fmt_4_big, fmt_4_little, fmt_8_big,        \
        fmt_8_little

bytes to_bytes(std::string_view s) {
    const auto b = std::as_bytes(std::span(s));
    return {b.begin(), b.end()};
}

std::string to_string(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

bytes pattern(std::size_t n, unsigned seed = 0) {
    bytes b(n);
    for (std::size_t i = 0; i < n; ++i)
        b[i] = static_cast<std::byte>((i * 131 + seed * 7 + (i >> 8)) & 0xFF);
    return b;
}

// The length field, written out by hand the long way.
template <frame_format F>
bytes reference_header(std::uint64_t size) {
    bytes h(F.length_bytes);
    for (std::size_t i = 0; i < F.length_bytes; ++i) {
        const auto byte = static_cast<std::byte>((size >> (8 * i)) & 0xFF); // i-th least significant
        if (F.order == byte_order::little)
            h[i] = byte;
        else
            h[F.length_bytes - 1 - i] = byte;
    }
    return h;
}

template <frame_format F>
bytes reference_frame(const bytes& payload) {
    bytes out = reference_header<F>(payload.size());
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
}

// What decoding the whole input in one piece should give: the frames in
// order, then at most one outcome: a frame_too_large with the announced
// size, or truncated_frame at finish() when the input ends mid-frame.
struct reference_result {
    std::vector<bytes> frames;
    std::error_code error;          // sticky decoding error, if any
    std::error_code finish_error;   // what finish() reports
    std::uint64_t announced = 0;    // length of the offending frame
};

template <frame_format F>
reference_result reference_decode(const bytes& input, std::uint64_t limit) {
    reference_result r;
    std::size_t pos = 0;
    while (pos < input.size()) {
        if (input.size() - pos < F.length_bytes) {
            r.finish_error = parley::error::truncated_frame;
            return r;
        }
        std::uint64_t length = 0;
        for (std::size_t i = 0; i < F.length_bytes; ++i) {
            const std::uint64_t b = std::to_integer<std::uint64_t>(input[pos + i]);
            length |= F.order == byte_order::big ? b << (8 * (F.length_bytes - 1 - i)) : b << (8 * i);
        }
        if (length > limit) {
            r.error = r.finish_error = parley::error::frame_too_large;
            r.announced = length;
            return r;
        }
        if (input.size() - pos - F.length_bytes < length) {
            r.finish_error = parley::error::truncated_frame;
            return r;
        }
        const auto begin = input.begin() + static_cast<std::ptrdiff_t>(pos + F.length_bytes);
        r.frames.emplace_back(begin, begin + static_cast<std::ptrdiff_t>(length));
        pos += F.length_bytes + length;
    }
    return r;
}

// Feeds `input` in chunks of the given sizes. Each chunk is copied into
// storage that dies once the chunk is drained, so a view kept too long is
// caught by AddressSanitizer.
template <frame_format F>
reference_result decode_in_chunks(parley::frame_decoder<F>& decoder, const bytes& input,
                                  const std::vector<std::size_t>& sizes) {
    reference_result r;
    std::size_t pos = 0;
    for (std::size_t n : sizes) {
        const bytes chunk(input.begin() + static_cast<std::ptrdiff_t>(pos),
                          input.begin() + static_cast<std::ptrdiff_t>(pos + n));
        pos += n;
        decoder.feed(chunk);
        std::error_code ec;
        while (auto payload = decoder.next(ec))
            r.frames.emplace_back(payload->begin(), payload->end());
        if (ec) {
            r.error = ec;
            r.announced = decoder.announced_size();
        }
    }
    REQUIRE(pos == input.size());
    decoder.finish(r.finish_error);
    return r;
}

template <frame_format F>
std::vector<bytes> decode_all(parley::frame_decoder<F>& decoder, const bytes& input) {
    return decode_in_chunks(decoder, input, {input.size()}).frames;
}

} // namespace

// --- frame_format ------------------------------------------------------------

// frame_codec<Format> static_asserts Format.valid()'s two conditions, so an
// invalid format is a compile error wherever it is used as a template
// argument. A failed static_assert cannot be observed from a test (nor
// detected by a requires-expression: it fires while instantiating the class
// body, outside any SFINAE context), so this checks the predicate instead.
static_assert(parley::default_frame_format.valid());
static_assert(parley::default_frame_format.length_bytes == 4);
static_assert(parley::default_frame_format.order == byte_order::big);
static_assert(parley::default_frame_format.max_payload == 1024 * 1024);
static_assert(frame_format{1, byte_order::big, 255}.valid());
static_assert(!frame_format{1, byte_order::big, 256}.valid());
static_assert(!frame_format{.length_bytes = 1}.valid()); // 1 MiB does not fit in one byte
static_assert(frame_format{2, byte_order::little, 65535}.valid());
static_assert(!frame_format{2, byte_order::little, 65536}.valid());
static_assert(frame_format{4, byte_order::big, 0xFFFFFFFF}.valid());
static_assert(!frame_format{4, byte_order::big, 0x100000000}.valid());
static_assert(frame_format{8, byte_order::big, 0x100000000}.valid());
static_assert(!frame_format{.length_bytes = 0}.valid());
static_assert(!frame_format{.length_bytes = 3}.valid());
static_assert(!frame_format{.length_bytes = 16}.valid());
static_assert(frame_format{.length_bytes = 1, .max_payload = 0}.valid());
static_assert(frame_format{.length_bytes = 2}.max_expressible() == 65535);
static_assert(frame_format{.length_bytes = 4}.max_expressible() == 0xFFFFFFFF);

// frame_codec is usable at compile time and is an empty-ish value type.
static_assert(parley::frame_codec<>::header_size == 4);
static_assert(parley::frame_codec<>{}.max_payload() == 1024 * 1024);
static_assert(parley::frame_codec<>::read_length(std::array<std::byte, 4>{
                  std::byte{0x12}, std::byte{0x34}, std::byte{0x56}, std::byte{0x78}}
                                                         .data()) == 0x12345678);
static_assert(asio::is_const_buffer_sequence<parley::encoded_frame<>>::value);
static_assert(asio::is_const_buffer_sequence<parley::encoded_frame<fmt_2_little::value>>::value);

// --- codec ---------------------------------------------------------------------

TEST_CASE_TEMPLATE("frame_codec: header bytes are exact", T, PARLEY_ALL_FORMATS) {
    constexpr frame_format F = T::value;
    using codec = parley::frame_codec<F>;
    static_assert(codec::header_size == F.length_bytes);

    // Known values, compared with bytes spelled out rather than computed.
    const std::uint64_t value = F.length_bytes == 1   ? 0xAB
                                : F.length_bytes == 2 ? 0xABCD
                                : F.length_bytes == 4 ? 0x0A0B0C
                                                      : 0x0A0B0C;
    std::vector<unsigned> expected;
    if constexpr (F.length_bytes == 1)
        expected = {0xAB};
    else if constexpr (F.length_bytes == 2)
        expected = {0xAB, 0xCD};
    else if constexpr (F.length_bytes == 4)
        expected = {0x00, 0x0A, 0x0B, 0x0C};
    else
        expected = {0, 0, 0, 0, 0, 0x0A, 0x0B, 0x0C};
    if (F.order == byte_order::little)
        std::reverse(expected.begin(), expected.end());

    std::error_code ec = parley::error::timed_out; // cleared on success
    const auto header = codec{}.encode_header(value, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(header.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(i);
        CHECK(std::to_integer<unsigned>(header[i]) == expected[i]);
    }
    CHECK(codec::read_length(header.data()) == value);

    // The whole width, through write_length (which has no limit).
    std::array<std::byte, F.length_bytes> raw{};
    const std::uint64_t wide = 0x0102030405060708ull & F.max_expressible();
    codec::write_length(wide, raw.data());
    const bytes want = reference_header<F>(wide);
    CHECK(bytes(raw.begin(), raw.end()) == want);
    CHECK(codec::read_length(raw.data()) == wide);
    // All ones: the field's own maximum (for 8 bytes, more than a limit may
    // be; see the 2^64 test below).
    const std::uint64_t all_ones =
        F.length_bytes == 8 ? ~std::uint64_t{0} : (std::uint64_t{1} << (8 * F.length_bytes)) - 1;
    codec::write_length(all_ones, raw.data());
    CHECK(std::all_of(raw.begin(), raw.end(), [](std::byte b) { return b == std::byte{0xFF}; }));
    CHECK(codec::read_length(raw.data()) == all_ones);
    codec::write_length(0, raw.data());
    CHECK(std::all_of(raw.begin(), raw.end(), [](std::byte b) { return b == std::byte{0}; }));
}

TEST_CASE_TEMPLATE("frame_codec: every configuration round-trips", T, PARLEY_ALL_FORMATS) {
    constexpr frame_format F = T::value;
    const parley::frame_codec<F> codec;
    const std::size_t max = static_cast<std::size_t>(F.max_payload);
    // Small sizes, the largest, and (where it is cheap) one below it.
    std::vector<std::size_t> sizes{0, 1, 2, 3, 17, 255 < max ? 256 : 254};
    if (max <= 65535)
        sizes.push_back(max - 1);
    sizes.insert(sizes.end(), {max, 0});

    bytes wire;
    std::vector<bytes> payloads;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
        payloads.push_back(pattern(sizes[i], static_cast<unsigned>(i)));
        std::error_code ec;
        parley::append_frame(codec, payloads.back(), wire, ec);
        REQUIRE_FALSE(ec);
    }
    bytes expected_wire;
    for (const auto& p : payloads) {
        const bytes f = reference_frame<F>(p);
        expected_wire.insert(expected_wire.end(), f.begin(), f.end());
    }
    CHECK(wire == expected_wire);

    parley::frame_decoder<F> decoder;
    CHECK(decode_all(decoder, wire) == payloads);
    std::error_code ec;
    decoder.finish(ec);
    CHECK_FALSE(ec);
    CHECK(decoder.buffered() == 0);
    CHECK(decoder.announced_size() == 0); // the last frame was empty

    // Mostly one byte at a time, through the partial-frame path (with a
    // larger piece now and then, or a 1 MiB frame would take a million
    // chunks).
    std::vector<std::size_t> pieces;
    static constexpr std::size_t cycle[] = {1, 1, 2, 1, 3, 1, 1, 4093};
    for (std::size_t left = wire.size(), i = 0; left > 0; ++i) {
        const std::size_t n = std::min(left, cycle[i % std::size(cycle)]);
        pieces.push_back(n);
        left -= n;
    }
    parley::frame_decoder<F> bytewise;
    reference_result r = decode_in_chunks(bytewise, wire, pieces);
    CHECK(r.frames == payloads);
    CHECK_FALSE(r.error);
    CHECK_FALSE(r.finish_error);

    // Over the limit by one: refused when encoding and when decoding.
    const bytes over(max + 1);
    bytes out{std::byte{0x42}};
    parley::append_frame(codec, over, out, ec);
    CHECK(ec == parley::error::frame_too_large);
    CHECK(out == bytes{std::byte{0x42}}); // nothing appended
    // A 1- or 2-byte field cannot even announce max + 1 (its limit is all
    // the field holds), so there a limit one lower refuses a full frame.
    if constexpr (F.max_payload < F.max_expressible()) {
        // The header alone is refused; the payload never matters.
        bytes over_frame = reference_header<F>(max + 1);
        over_frame.resize(over_frame.size() + 10);
        parley::frame_decoder<F> refusing;
        r = decode_in_chunks(refusing, over_frame, {over_frame.size()});
        CHECK(r.frames.empty());
        CHECK(r.error == parley::error::frame_too_large);
        CHECK(r.announced == max + 1);
    } else {
        const bytes full_frame = reference_frame<F>(pattern(max));
        parley::frame_decoder<F> refusing(max - 1);
        r = decode_in_chunks(refusing, full_frame, {full_frame.size()});
        CHECK(r.frames.empty());
        CHECK(r.error == parley::error::frame_too_large);
        CHECK(r.announced == max);
    }
}

// --- limits --------------------------------------------------------------------

TEST_CASE("frame_codec: a 4 GiB announcement is refused before any allocation") {
    parley::frame_decoder<> decoder;
    // The header, one byte at a time, then some payload that never matters.
    const bytes header{std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}};
    std::error_code ec;
    for (std::size_t i = 0; i < 3; ++i) {
        decoder.feed(std::span(header).subspan(i, 1));
        CHECK_FALSE(decoder.next(ec));
        CHECK_FALSE(ec);
        CHECK(decoder.buffered() == i + 1); // only what arrived is held
    }
    const bytes rest{std::byte{0xFF}, std::byte{'a'}, std::byte{'b'}};
    decoder.feed(rest);
    CHECK_FALSE(decoder.next(ec));
    CHECK(ec == parley::error::frame_too_large);
    CHECK(decoder.buffered() <= 4); // nothing reserved for the announced size
    CHECK(decoder.announced_size() == 0xFFFFFFFFu);
    CHECK(decoder.error_message() == "frame of 4294967295 bytes exceeds the 1048576-byte limit");
    CHECK(parley::describe_oversize_frame(4294967295u, 1048576) ==
          "frame of 4294967295 bytes exceeds the 1048576-byte limit");

    // The same in one chunk.
    parley::frame_decoder<> whole;
    const bytes all{std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF}, std::byte{0xFF},
                    std::byte{'x'}};
    whole.feed(all);
    CHECK_FALSE(whole.next(ec));
    CHECK(ec == parley::error::frame_too_large);
    CHECK(whole.buffered() == 0);
    CHECK(whole.error_message() == "frame of 4294967295 bytes exceeds the 1048576-byte limit");
}

TEST_CASE("frame_codec: the limit is checked exactly at max and max + 1") {
    for (std::uint64_t limit : {std::uint64_t{0}, std::uint64_t{1}, std::uint64_t{100},
                                std::uint64_t{1024 * 1024}}) {
        CAPTURE(limit);
        parley::frame_decoder<> decoder(limit);
        CHECK(decoder.max_payload() == limit);
        const bytes at = reference_frame<parley::default_frame_format>(pattern(limit));
        auto r = decode_in_chunks(decoder, at, {at.size()});
        REQUIRE(r.frames.size() == 1);
        CHECK(r.frames[0].size() == limit);
        CHECK_FALSE(r.error);

        // Only the header of the bigger frame is needed to refuse it.
        const bytes over = reference_header<parley::default_frame_format>(limit + 1);
        r = decode_in_chunks(decoder, over, {over.size()});
        CHECK(r.error == parley::error::frame_too_large);
        CHECK(decoder.error_message() == "frame of " + std::to_string(limit + 1) +
                                             " bytes exceeds the " + std::to_string(limit) +
                                             "-byte limit");

        parley::frame_codec<> codec(limit);
        std::error_code ec;
        codec.encode_header(limit, ec);
        CHECK_FALSE(ec);
        codec.encode_header(limit + 1, ec);
        CHECK(ec == parley::error::frame_too_large);
        CHECK(codec.frame_size(over, ec) == 0);
        CHECK(ec == parley::error::frame_too_large);
        std::uint64_t announced = 0;
        CHECK(codec.frame_size(at, ec, &announced) == at.size());
        CHECK_FALSE(ec);
        CHECK(announced == limit);
    }
    // frame_size() asks for more while the header is incomplete.
    std::error_code ec = parley::error::timed_out;
    const bytes three{std::byte{0}, std::byte{0}, std::byte{0}};
    CHECK(parley::frame_codec<>{}.frame_size(three, ec) == 0);
    CHECK_FALSE(ec);

    // A limit lowered at run time applies to the next header.
    parley::frame_decoder<> decoder;
    decoder.max_payload(3);
    const bytes four = reference_frame<parley::default_frame_format>(pattern(4));
    CHECK(decode_in_chunks(decoder, four, {four.size()}).error == parley::error::frame_too_large);
}

TEST_CASE("frame_codec: run-time limits the length field cannot express are refused") {
    constexpr frame_format two{2, byte_order::big, 1000};
    parley::frame_decoder<two> decoder;
    CHECK(decoder.max_payload() == 1000);
    decoder.max_payload(65535);
    CHECK(decoder.max_payload() == 65535);
    CHECK_THROWS_AS(decoder.max_payload(65536), std::invalid_argument);
    CHECK(decoder.max_payload() == 65535); // unchanged by the failed call
    CHECK_THROWS_WITH_AS(parley::frame_codec<two>(65536),
                         "parley: a maximum payload of 65536 bytes cannot be expressed by a "
                         "2-byte length field",
                         std::invalid_argument);
    CHECK_THROWS_AS(parley::frame_decoder<two>(1u << 20), std::invalid_argument);
    CHECK_THROWS_AS(parley::frame_codec<fmt_1_big::value>(256), std::invalid_argument);
    CHECK_NOTHROW(parley::frame_codec<fmt_1_big::value>(255));
    CHECK_THROWS_AS(parley::frame_codec<>(0x100000000), std::invalid_argument);
    CHECK_NOTHROW(parley::frame_codec<>(0xFFFFFFFF));
    // A limit above the format's default is allowed when the field can hold it.
    parley::frame_decoder<> big(64u << 20);
    CHECK(big.max_payload() == 64u << 20);
}

TEST_CASE("frame_codec: an 8-byte length near 2^64 cannot wrap the frame size") {
    // With an 8-byte field the length can exceed what a size_t holds once
    // the header is added; such a limit must be refused, and such a length
    // reported as too large rather than wrapping to a tiny frame size.
    constexpr frame_format eight{.length_bytes = 8};
    constexpr std::uint64_t max64 = std::numeric_limits<std::uint64_t>::max();
    parley::frame_decoder<eight> decoder;
    CHECK_THROWS_AS(decoder.max_payload(max64), std::invalid_argument);
    static_assert(!frame_format{8, byte_order::big, max64}.valid());

    decoder.max_payload(eight.max_expressible());
    const bytes header(8, std::byte{0xFF});
    bytes input = header;
    input.resize(20, std::byte{'x'});
    const auto r = decode_in_chunks(decoder, input, {input.size()});
    CHECK(r.frames.empty());
    CHECK(r.error == parley::error::frame_too_large);

    std::error_code ec;
    CHECK(parley::frame_codec<eight>(eight.max_expressible()).frame_size(input, ec) == 0);
    CHECK(ec == parley::error::frame_too_large);
}

// --- decoder behaviour ---------------------------------------------------------

TEST_CASE("frame_codec: a frame inside one chunk is a view into it") {
    using F = fmt_4_big;
    bytes chunk;
    const bytes one = reference_frame<F::value>(to_bytes("first"));
    const bytes two = reference_frame<F::value>(to_bytes(""));
    const bytes three = reference_frame<F::value>(to_bytes("third"));
    for (const auto* f : {&one, &two, &three})
        chunk.insert(chunk.end(), f->begin(), f->end());
    chunk.resize(chunk.size() - 2); // the third frame is cut short

    parley::frame_decoder<> decoder;
    decoder.feed(chunk);
    std::error_code ec;
    auto a = decoder.next(ec);
    REQUIRE(a);
    CHECK(a->data() == chunk.data() + 4);
    CHECK(to_string(*a) == "first");
    auto b = decoder.next(ec);
    REQUIRE(b);
    CHECK(b->empty());
    CHECK_FALSE(decoder.next(ec));
    CHECK_FALSE(ec);
    CHECK(decoder.buffered() == three.size() - 2);

    // The rest of the split frame arrives; the chunk it started in is gone.
    chunk.assign(chunk.size(), std::byte{0});
    const bytes tail(three.end() - 2, three.end());
    decoder.feed(tail);
    auto c = decoder.next(ec);
    REQUIRE(c);
    CHECK(to_string(*c) == "third");
    CHECK(c->data() != tail.data()); // gathered into the decoder
    CHECK(decoder.buffered() == 0);
    decoder.finish(ec);
    CHECK_FALSE(ec);
}

TEST_CASE("frame_codec: finish() reports truncation") {
    const bytes frame = reference_frame<parley::default_frame_format>(to_bytes("payload"));
    for (std::size_t cut = 0; cut <= frame.size(); ++cut) {
        CAPTURE(cut);
        parley::frame_decoder<> decoder;
        const bytes part(frame.begin(), frame.begin() + static_cast<std::ptrdiff_t>(cut));
        const auto r = decode_in_chunks(decoder, part, {part.size()});
        CHECK_FALSE(r.error);
        // Nothing, or the whole frame, is a clean end; a partial header or
        // payload is not.
        if (cut == 0 || cut == frame.size())
            CHECK_FALSE(r.finish_error);
        else
            CHECK(r.finish_error == parley::error::truncated_frame);
        CHECK(r.frames.size() == (cut == frame.size() ? 1u : 0u));
    }
    // An untaken frame still in the chunk counts as buffered.
    parley::frame_decoder<> decoder;
    decoder.feed(frame);
    std::error_code ec;
    decoder.finish(ec);
    CHECK(ec == parley::error::truncated_frame);
}

TEST_CASE("frame_codec: errors are sticky and reset() recovers") {
    parley::frame_decoder<> decoder(10);
    bytes input = reference_header<parley::default_frame_format>(11);
    const bytes good = reference_frame<parley::default_frame_format>(to_bytes("ok"));
    input.insert(input.end(), good.begin(), good.end());
    decoder.feed(input);
    std::error_code ec;
    CHECK_FALSE(decoder.next(ec));
    CHECK(ec == parley::error::frame_too_large);
    const std::string message = decoder.error_message();
    CHECK(message == "frame of 11 bytes exceeds the 10-byte limit");

    // Valid input afterwards does not clear it: the stream is out of sync.
    for (int i = 0; i < 3; ++i) {
        decoder.feed(good);
        ec.clear();
        CHECK_FALSE(decoder.next(ec));
        CHECK(ec == parley::error::frame_too_large);
    }
    decoder.finish(ec);
    CHECK(ec == parley::error::frame_too_large);
    CHECK(decoder.error_message() == message);

    decoder.reset();
    CHECK(decoder.error_message().empty());
    CHECK(decoder.announced_size() == 0);
    CHECK(decoder.buffered() == 0);
    CHECK(decoder.max_payload() == 10); // the limit is configuration, not state
    decoder.feed(good);
    auto frame = decoder.next(ec);
    CHECK_FALSE(ec);
    REQUIRE(frame);
    CHECK(to_string(*frame) == "ok");

    // reset() in the middle of a partial frame drops it.
    decoder.feed(std::span(good).first(3));
    CHECK_FALSE(decoder.next(ec));
    CHECK(decoder.buffered() == 3);
    decoder.reset();
    decoder.finish(ec);
    CHECK_FALSE(ec);
}

TEST_CASE("frame_codec: a large frame's gathering buffer is not kept") {
    // Gathered frames above 64 KiB release their buffer once delivered; the
    // decoder stays correct either side of that threshold.
    for (std::size_t size : {std::size_t{1000}, std::size_t{65536}, std::size_t{300000}}) {
        CAPTURE(size);
        std::vector<bytes> payloads{pattern(size, 1), pattern(5, 2), pattern(size, 3)};
        bytes wire;
        for (const auto& p : payloads) {
            const bytes f = reference_frame<parley::default_frame_format>(p);
            wire.insert(wire.end(), f.begin(), f.end());
        }
        std::vector<std::size_t> chunks;
        for (std::size_t left = wire.size(); left > 0;) {
            const std::size_t n = std::min<std::size_t>(left, 4093);
            chunks.push_back(n);
            left -= n;
        }
        parley::frame_decoder<> decoder;
        const auto r = decode_in_chunks(decoder, wire, chunks);
        CHECK(r.frames == payloads);
        CHECK_FALSE(r.finish_error);
    }
}

TEST_CASE_TEMPLATE("frame_codec: random chunking agrees with the reference model", T,
                   PARLEY_ALL_FORMATS) {
    constexpr frame_format F = T::value;
    std::mt19937_64 rng(0x9A41E7 + F.length_bytes * 2 + (F.order == byte_order::little));
    const std::uint64_t top = std::min<std::uint64_t>(F.max_payload, 600);
    for (int iter = 0; iter < 300; ++iter) {
        // The run-time limit: usually the default, sometimes lower so that
        // some frames are refused.
        const std::uint64_t limit = rng() % 3 == 0 ? rng() % (top + 1) : F.max_payload;
        bytes wire;
        const int frames = static_cast<int>(rng() % 12);
        for (int i = 0; i < frames; ++i) {
            std::uint64_t size;
            switch (rng() % 6) {
            case 0: size = 0; break;
            case 1: size = rng() % 4; break;
            case 2: size = rng() % (top + 1); break;
            case 3: size = top; break;
            default: size = rng() % 40; break;
            }
            const bytes p = pattern(static_cast<std::size_t>(size), static_cast<unsigned>(rng()));
            bytes f = reference_frame<F>(p);
            wire.insert(wire.end(), f.begin(), f.end());
        }
        // Garbage lengths (often huge) and cut-off endings now and then.
        if (rng() % 8 == 0) {
            for (std::size_t i = 0; i < F.length_bytes; ++i)
                wire.push_back(static_cast<std::byte>(rng()));
            wire.push_back(std::byte{'g'});
        }
        if (rng() % 4 == 0 && !wire.empty())
            wire.resize(wire.size() - 1 - rng() % std::min<std::size_t>(wire.size(), 10));

        std::vector<std::size_t> sizes;
        const int mode = static_cast<int>(rng() % 4);
        for (std::size_t left = wire.size(); left > 0;) {
            std::size_t n;
            switch (mode) {
            case 0: n = 1 + rng() % 3; break;                      // tiny pieces
            case 1: n = 1 + rng() % 200; break;                    // small
            case 2: n = 1 + rng() % (wire.size() + 1); break;      // big, many frames each
            default: n = rng() % 2 ? 1 : 1 + rng() % 5000; break;  // a mixture
            }
            if (rng() % 16 == 0)
                n = 0; // empty chunks are legal
            n = std::min(n, left);
            sizes.push_back(n);
            left -= n;
        }

        parley::frame_decoder<F> decoder(limit);
        const auto got = decode_in_chunks(decoder, wire, sizes);
        const auto expected = reference_decode<F>(wire, limit);
        CAPTURE(iter);
        CAPTURE(limit);
        CAPTURE(wire.size());
        REQUIRE(got.frames.size() == expected.frames.size());
        REQUIRE(got.frames == expected.frames);
        REQUIRE(got.error == expected.error);
        REQUIRE(got.finish_error == expected.finish_error);
        if (expected.error) {
            REQUIRE(got.announced == expected.announced);
            REQUIRE(decoder.error_message() ==
                    parley::describe_oversize_frame(expected.announced, limit));
        }
    }
}

// --- encoding --------------------------------------------------------------------

TEST_CASE("frame_codec: encode_frame is a two-buffer ConstBufferSequence") {
    const std::string payload = "hello";
    const auto frame = parley::encode_frame(asio::buffer(payload));
    CHECK(asio::buffer_size(frame) == 9);
    CHECK(frame.size() == 9);
    REQUIRE(std::distance(frame.begin(), frame.end()) == 2);
    CHECK(frame.begin()->size() == 4);
    CHECK((frame.begin() + 1)->data() == payload.data()); // not copied
    std::string wire(asio::buffer_size(frame), '\0');
    CHECK(asio::buffer_copy(asio::buffer(wire), frame) == 9);
    CHECK(wire == std::string("\0\0\0\x05hello", 9));

    // A copy's header buffer points into the copy, not the original.
    std::optional<parley::encoded_frame<>> original(frame);
    const parley::encoded_frame<> copy = *original;
    CHECK(copy.begin()->data() != original->begin()->data());
    const void* original_header = original->begin()->data();
    original.reset(); // destroy it: the copy must not refer to it
    CHECK(copy.begin()->data() != original_header);
    std::string again(asio::buffer_size(copy), '\0');
    asio::buffer_copy(asio::buffer(again), copy);
    CHECK(again == wire);

    // Assignment too.
    const std::string other = "xy";
    auto assigned = parley::encode_frame(asio::buffer(other));
    assigned = copy;
    CHECK(assigned.begin()->data() != copy.begin()->data());
    again.assign(asio::buffer_size(assigned), '\0');
    asio::buffer_copy(asio::buffer(again), assigned);
    CHECK(again == wire);

    // An empty payload is a 4-byte frame.
    const auto empty = parley::encode_frame(asio::const_buffer());
    CHECK(asio::buffer_size(empty) == 4);
}

TEST_CASE("frame_codec: encode_frame over the limit fails") {
    const bytes big = pattern(1024 * 1024 + 1);
    CHECK_THROWS_AS(parley::encode_frame(asio::buffer(big)), std::system_error);
    try {
        (void)parley::encode_frame(asio::buffer(big));
    } catch (const std::system_error& e) {
        CHECK(e.code() == parley::error::frame_too_large);
        CHECK(std::string(e.what()).find(
                  "frame of 1048577 bytes exceeds the 1048576-byte limit") != std::string::npos);
    }
    CHECK_NOTHROW((void)parley::encode_frame(asio::buffer(big.data(), big.size() - 1)));

    const parley::frame_codec<fmt_2_little::value> codec(3);
    std::error_code ec;
    const std::string four = "four";
    const auto refused = parley::encode_frame(codec, asio::buffer(four), ec);
    CHECK(ec == parley::error::frame_too_large);
    CHECK(asio::buffer_size(refused) == 2); // header only, payload dropped

    const auto fits = parley::encode_frame(codec, asio::buffer(four.data(), 3), ec);
    CHECK_FALSE(ec);
    std::string wire(asio::buffer_size(fits), '\0');
    asio::buffer_copy(asio::buffer(wire), fits);
    CHECK(wire == std::string("\x03\x00" "fou", 5)); // little endian
}

TEST_CASE("frame_codec: append_frame appends whole frames to any byte container") {
    const parley::frame_codec<> codec;
    const bytes payload = to_bytes("abc");
    std::error_code ec;

    std::string s = "prefix";
    parley::append_frame(codec, payload, s, ec);
    CHECK_FALSE(ec);
    CHECK(s == std::string("prefix\0\0\0\x03" "abc", 13));

    std::vector<unsigned char> u;
    parley::append_frame(codec, payload, u, ec);
    parley::append_frame(codec, std::span<const std::byte>(), u, ec);
    CHECK(u == std::vector<unsigned char>{0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0});

    bytes b;
    parley::append_frame(parley::frame_codec<fmt_8_little::value>(), payload, b, ec);
    CHECK(b == bytes{std::byte{3}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                     std::byte{0}, std::byte{0}, std::byte{0}, std::byte{'a'}, std::byte{'b'},
                     std::byte{'c'}});

    // Frames built this way decode back.
    parley::frame_decoder<> decoder;
    const bytes wire(reinterpret_cast<const std::byte*>(u.data()),
                     reinterpret_cast<const std::byte*>(u.data() + u.size()));
    CHECK(decode_all(decoder, wire) == std::vector<bytes>{payload, bytes{}});

    s.clear();
    parley::append_frame(parley::frame_codec<>(2), payload, s, ec);
    CHECK(ec == parley::error::frame_too_large);
    CHECK(s.empty());
}
