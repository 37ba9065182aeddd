// Tests for include/parley/frame_batch.hpp. Included first: the header must
// stand on its own.
#include <parley/codec/frame_batch.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::string text(std::span<const std::byte> bytes) {
    return {reinterpret_cast<const char*>(bytes.data()), bytes.size()};
}

std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s)); }

template <class Batch>
std::vector<std::string> payloads(const Batch& batch) {
    std::vector<std::string> out;
    for (auto payload : batch)
        out.push_back(text(payload));
    return out;
}

} // namespace

static_assert(std::forward_iterator<parley::frame_batch::iterator>);

TEST_CASE("frame_batch: iterates over the payloads of wire-form frames, in order") {
    // Three frames by hand: 4-byte big-endian lengths 5, 0 and 3.
    const std::string wire = std::string("\0\0\0\x05hello\0\0\0\0\0\0\0\x03" "abc", 20);
    const parley::frame_batch batch(bytes(wire), 3);
    CHECK(batch.size() == 3);
    CHECK_FALSE(batch.empty());
    CHECK(batch.wire().data() == bytes(wire).data()); // a view, not a copy
    CHECK(batch.wire().size() == wire.size());
    CHECK(payloads(batch) == std::vector<std::string>{"hello", "", "abc"});
    CHECK(std::distance(batch.begin(), batch.end()) == 3);

    auto it = batch.begin();
    const auto first = it++;
    CHECK(text(*first) == "hello");
    CHECK(text(*it) == "");
    CHECK((*first).data() == bytes(wire).data() + 4); // the payload in place
}

TEST_CASE("frame_batch: an empty batch has nothing to iterate") {
    const parley::frame_batch none;
    CHECK(none.empty());
    CHECK(none.size() == 0);
    CHECK(none.wire().empty());
    CHECK(none.begin() == none.end());
}

TEST_CASE("frame_batch: other formats: 2-byte little-endian lengths") {
    constexpr parley::frame_format le16{.length_bytes = 2, .order = parley::byte_order::little,
                                        .max_payload = 1000};
    const std::string wire = std::string("\x02\0hi\x03\0you", 9);
    const parley::basic_frame_batch<le16> batch(bytes(wire), 2);
    CHECK(payloads(batch) == std::vector<std::string>{"hi", "you"});
}

TEST_CASE("frame_batch: what frame_decoder takes is what the batch gives back") {
    // Encoded by the codec, then iterated: a round trip through the header
    // code the batch shares with the decoder.
    const std::vector<std::string> sent{"one", std::string(300, 'x'), "", "last"};
    std::string wire;
    std::error_code ec;
    for (const auto& s : sent) {
        const auto header = parley::frame_codec<>{}.encode_header(s.size(), ec);
        REQUIRE_FALSE(ec);
        wire.append(reinterpret_cast<const char*>(header.data()), header.size());
        wire += s;
    }
    const parley::frame_batch batch(bytes(wire), sent.size());
    CHECK(payloads(batch) == sent);
}
