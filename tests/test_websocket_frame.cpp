// Tests for include/parley/websocket/frame.hpp. Included first: the header
// must stand on its own. Cases after Autobahn's sections 1 (lengths), 2
// (ping sizes), 3 (reserved bits), 4 (opcodes) and 5 (fragmented control
// frames), at the level of one header.
#include <parley/websocket/frame.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace ws = parley::websocket;
using bytes = std::vector<std::byte>;

namespace {

constexpr ws::mask_key test_key{std::byte{0x37}, std::byte{0xFA}, std::byte{0x21},
                                std::byte{0x3D}};

// A header written the long way, from the RFC's picture.
bytes reference_header(unsigned b0, bool masked, std::uint64_t length, const ws::mask_key& key) {
    bytes h{std::byte(b0)};
    const unsigned m = masked ? 0x80 : 0;
    if (length < 126) {
        h.push_back(std::byte(m | length));
    } else if (length < 65536) {
        h.push_back(std::byte(m | 126));
        h.push_back(std::byte(length >> 8));
        h.push_back(std::byte(length & 0xFF));
    } else {
        h.push_back(std::byte(m | 127));
        for (int i = 7; i >= 0; --i)
            h.push_back(std::byte((length >> (8 * i)) & 0xFF));
    }
    if (masked)
        h.insert(h.end(), key.begin(), key.end());
    return h;
}

ws::header_rules rules_for(ws::role reader, bool compression = false) {
    ws::header_rules r;
    r.reader = reader;
    r.compression = compression;
    return r;
}

// Parses `wire` as the stream would see it growing one byte at a time:
// every prefix short of the header must ask for more, and the whole must
// parse. Returns the error, if any, and where it came.
struct parse_outcome {
    std::error_code ec;
    std::size_t at = 0; // bytes given when the result came
    ws::frame_header header;
    std::size_t size = 0;
};

parse_outcome parse_growing(const bytes& wire, const ws::header_rules& rules) {
    parse_outcome r;
    for (std::size_t n = 0; n <= wire.size(); ++n) {
        const std::size_t got =
            ws::parse_header(std::span(wire).first(n), rules, r.header, r.ec);
        r.at = n;
        if (r.ec) {
            REQUIRE(got == 0);
            return r;
        }
        REQUIRE(got >= 2);
        if (got <= n) {
            r.size = got;
            return r;
        }
        REQUIRE(got <= wire.size()); // never asks beyond the header
    }
    FAIL("the header never completed");
    return r;
}

} // namespace

TEST_CASE("websocket frame: payload lengths 0, 125, 126, 127, 128, 65535, 65536 and beyond") {
    for (std::uint64_t length : {0ull, 1ull, 125ull, 126ull, 127ull, 128ull, 65535ull, 65536ull,
                                 4294967296ull, 0x7FFFFFFFFFFFFFFFull}) {
        for (auto reader : {ws::role::server, ws::role::client}) {
            CAPTURE(length);
            const bool masked = reader == ws::role::server;
            const bytes wire = reference_header(0x81, masked, length, test_key);
            const auto r = parse_growing(wire, rules_for(reader));
            REQUIRE(!r.ec);
            CHECK(r.size == wire.size());
            CHECK(r.header.fin);
            CHECK_FALSE(r.header.compressed);
            CHECK(r.header.op == ws::opcode::text);
            CHECK(r.header.masked == masked);
            CHECK(r.header.payload_length == length);
            if (masked)
                CHECK(r.header.key == test_key);

            // The writer produces the same bytes.
            ws::header_buffer out{};
            const std::size_t n = ws::write_header(r.header, out);
            CHECK(bytes(out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)) == wire);
            CHECK(ws::header_size(wire[1]) == wire.size());
        }
    }
}

TEST_CASE("websocket frame: the writer round-trips every opcode and flag") {
    for (auto op : {ws::opcode::continuation, ws::opcode::text, ws::opcode::binary,
                    ws::opcode::close, ws::opcode::ping, ws::opcode::pong}) {
        for (bool fin : {true, false}) {
            for (bool compressed : {false, true}) {
                ws::frame_header h;
                h.op = op;
                h.fin = fin;
                h.compressed = compressed;
                h.masked = true;
                h.key = test_key;
                h.payload_length = 3;
                ws::header_buffer out{};
                const std::size_t n = ws::write_header(h, out);
                CHECK(n == 6);
                ws::frame_header back;
                std::error_code ec;
                const std::size_t got = ws::parse_header(std::span(out).first(n),
                                                         rules_for(ws::role::server, true), back, ec);
                const bool legal = (fin || !ws::is_control(op)) &&
                                   (!compressed || op == ws::opcode::text ||
                                    op == ws::opcode::binary);
                CAPTURE(static_cast<int>(op));
                CAPTURE(fin);
                CAPTURE(compressed);
                if (legal) {
                    REQUIRE(!ec);
                    CHECK(got == n);
                    CHECK(back.op == op);
                    CHECK(back.fin == fin);
                    CHECK(back.compressed == compressed);
                    CHECK(back.key == test_key);
                    CHECK(back.payload_length == 3);
                } else {
                    CHECK(got == 0);
                    CHECK(ec);
                }
            }
        }
    }
}

TEST_CASE("websocket frame: lengths not in their shortest form are refused") {
    const auto rules = rules_for(ws::role::client);
    // 16-bit field holding 0, 125; 64-bit field holding 0, 125, 126, 65535.
    for (auto wire : {bytes{std::byte{0x82}, std::byte{126}, std::byte{0}, std::byte{0}},
                      bytes{std::byte{0x82}, std::byte{126}, std::byte{0}, std::byte{125}},
                      bytes{std::byte{0x82}, std::byte{127}, std::byte{0}, std::byte{0},
                            std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0},
                            std::byte{0}},
                      bytes{std::byte{0x82}, std::byte{127}, std::byte{0}, std::byte{0},
                            std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0xFF},
                            std::byte{0xFF}}}) {
        const auto r = parse_growing(wire, rules);
        CHECK(r.ec == ws::error::non_minimal_length);
        CHECK(r.at == wire.size());
    }
    // 126 in 16 bits and 65536 in 64 bits are the smallest allowed.
    CHECK(!parse_growing(reference_header(0x82, false, 126, {}), rules).ec);
    CHECK(!parse_growing(reference_header(0x82, false, 65536, {}), rules).ec);
}

TEST_CASE("websocket frame: a 64-bit length with its top bit set is refused") {
    bytes wire{std::byte{0x82}, std::byte{127}, std::byte{0x80}, std::byte{0}, std::byte{0},
               std::byte{0}, std::byte{0}, std::byte{0}, std::byte{0}, std::byte{1}};
    const auto r = parse_growing(wire, rules_for(ws::role::client));
    CHECK(r.ec == ws::error::length_out_of_range);
    CHECK(ws::close_code_for(r.ec) == ws::close_code{1002});
}

TEST_CASE("websocket frame: reserved opcodes 3-7 and 11-15 fail on the second byte") {
    for (unsigned op = 0; op < 16; ++op) {
        CAPTURE(op);
        const bytes wire = reference_header(0x80 | op, true, 0, test_key);
        const auto r = parse_growing(wire, rules_for(ws::role::server));
        if (ws::is_known_opcode(op)) {
            CHECK(!r.ec);
        } else {
            CHECK(r.ec == ws::error::bad_opcode);
            CHECK(r.at == 2);
        }
    }
}

TEST_CASE("websocket frame: reserved bits") {
    const auto plain = rules_for(ws::role::server, false);
    const auto deflate = rules_for(ws::role::server, true);
    // RSV1 (0x40), RSV2 (0x20), RSV3 (0x10) and their mixtures on text,
    // binary, ping and close frames: all refused without an extension.
    for (unsigned rsv : {0x40u, 0x20u, 0x10u, 0x50u, 0x30u, 0x70u}) {
        for (unsigned op : {0x1u, 0x2u, 0x9u, 0x8u}) {
            CAPTURE(rsv);
            CAPTURE(op);
            const auto r = parse_growing(reference_header(0x80 | rsv | op, true, 5, test_key), plain);
            CHECK(r.ec == ws::error::reserved_bits);
            CHECK(r.at == 2);
        }
    }
    // With permessage-deflate, RSV1 marks the first frame of a compressed
    // data message...
    for (unsigned op : {0x1u, 0x2u}) {
        const auto r = parse_growing(reference_header(0x40 | op, true, 5, test_key), deflate);
        REQUIRE(!r.ec);
        CHECK(r.header.compressed);
        CHECK_FALSE(r.header.fin);
    }
    // ... and nothing else: not a continuation, not a control frame.
    for (unsigned op : {0x0u, 0x8u, 0x9u, 0xAu}) {
        CAPTURE(op);
        const auto r = parse_growing(reference_header(0xC0 | op, true, 0, test_key), deflate);
        CHECK(r.ec == ws::error::misplaced_compression_bit);
    }
    // RSV2 and RSV3 stay reserved.
    CHECK(parse_growing(reference_header(0xA1, true, 0, test_key), deflate).ec ==
          ws::error::reserved_bits);
    CHECK(parse_growing(reference_header(0x91, true, 0, test_key), deflate).ec ==
          ws::error::reserved_bits);
}

TEST_CASE("websocket frame: a server refuses unmasked frames, a client masked ones") {
    auto r = parse_growing(reference_header(0x81, false, 10, {}), rules_for(ws::role::server));
    CHECK(r.ec == ws::error::unmasked_client_frame);
    CHECK(r.at == 2);
    r = parse_growing(reference_header(0x81, true, 10, test_key), rules_for(ws::role::client));
    CHECK(r.ec == ws::error::masked_server_frame);
    CHECK(r.at == 2);
}

TEST_CASE("websocket frame: control frames are at most 125 bytes and never fragmented") {
    const auto rules = rules_for(ws::role::server);
    for (unsigned op : {0x8u, 0x9u, 0xAu}) {
        CAPTURE(op);
        CHECK(!parse_growing(reference_header(0x80 | op, true, 125, test_key), rules).ec);
        for (std::uint64_t len : {126ull, 127ull, 65536ull}) {
            const auto r = parse_growing(reference_header(0x80 | op, true, len, test_key), rules);
            CHECK(r.ec == ws::error::control_frame_too_long);
            CHECK(r.at == 2);
        }
        const auto r = parse_growing(reference_header(op, true, 2, test_key), rules);
        CHECK(r.ec == ws::error::fragmented_control_frame);
    }
}

TEST_CASE("websocket frame: the payload limit is checked as soon as the length is known") {
    auto rules = rules_for(ws::role::server);
    rules.max_payload = 1000;
    CHECK(!parse_growing(reference_header(0x82, true, 1000, test_key), rules).ec);
    const bytes wire = reference_header(0x82, true, 1001, test_key);
    auto r = parse_growing(wire, rules);
    CHECK(r.ec == ws::error::message_too_big);
    CHECK(r.at == 4); // before the masking key
    r = parse_growing(reference_header(0x82, true, 0x7FFFFFFFFFFFFFFFull, test_key), rules);
    CHECK(r.ec == ws::error::message_too_big);
    CHECK(r.at == 10);
}

TEST_CASE("websocket frame: apply_mask agrees with the byte-at-a-time definition") {
    std::mt19937 rng(42);
    // Room for a misaligned start.
    std::vector<std::byte> storage(200 + 16);
    for (std::size_t start = 0; start < 9; ++start) {
        for (std::size_t len : {0u, 1u, 3u, 7u, 8u, 9u, 15u, 16u, 17u, 63u, 64u, 65u, 200u}) {
            for (std::uint64_t offset : {0ull, 1ull, 2ull, 3ull, 5ull, 4000000003ull}) {
                std::span<std::byte> data(storage.data() + start, len);
                for (auto& b : data)
                    b = std::byte(rng() & 0xFF);
                const bytes before(data.begin(), data.end());
                ws::apply_mask(data, test_key, offset);
                bool same = true;
                for (std::size_t i = 0; i < len; ++i)
                    same = same && data[i] == (before[i] ^ test_key[(offset + i) % 4]);
                CAPTURE(start);
                CAPTURE(len);
                CAPTURE(offset);
                CHECK(same);
                ws::apply_mask(data, test_key, offset); // its own inverse
                CHECK(bytes(data.begin(), data.end()) == before);
            }
        }
    }
}

TEST_CASE("websocket frame: a payload unmasked in pieces equals one unmasked whole") {
    bytes whole(1000);
    for (std::size_t i = 0; i < whole.size(); ++i)
        whole[i] = std::byte((i * 7 + 3) & 0xFF);
    bytes expect = whole;
    ws::apply_mask(expect, test_key);
    std::mt19937 rng(7);
    for (int round = 0; round < 50; ++round) {
        bytes pieces = whole;
        std::size_t pos = 0;
        while (pos < pieces.size()) {
            const std::size_t n = std::min<std::size_t>(rng() % 40, pieces.size() - pos);
            ws::apply_mask(std::span(pieces).subspan(pos, n), test_key, pos);
            pos += n;
        }
        CHECK(pieces == expect);
    }
}

TEST_CASE("websocket frame: RFC 6455 section 5.7's masked \"Hello\"") {
    const bytes wire{std::byte{0x81}, std::byte{0x85}, std::byte{0x37}, std::byte{0xfa},
                     std::byte{0x21}, std::byte{0x3d}, std::byte{0x7f}, std::byte{0x9f},
                     std::byte{0x4d}, std::byte{0x51}, std::byte{0x58}};
    ws::frame_header h;
    std::error_code ec;
    REQUIRE(ws::parse_header(wire, rules_for(ws::role::server), h, ec) == 6);
    CHECK(h.payload_length == 5);
    bytes payload(wire.begin() + 6, wire.end());
    ws::apply_mask(payload, h.key);
    CHECK(std::string(reinterpret_cast<const char*>(payload.data()), 5) == "Hello");
}
