// parley: the WebSocket frame header (RFC 6455 section 5.2) and masking,
// free of any I/O.
//
//   byte 0: FIN, RSV1, RSV2, RSV3, opcode (4 bits)
//   byte 1: MASK, length (7 bits: 0-125, or 126 = 16-bit length follows,
//           127 = 64-bit length follows)
//   then the extended length (big endian), then the 4-byte masking key if
//   MASK is set: 2 to 14 bytes in all.
//
// parse_header() applies every rule that one header can break; the rules
// that span frames (fragmentation, message size) are message_reader's.
#ifndef PARLEY_WEBSOCKET_FRAME_HPP
#define PARLEY_WEBSOCKET_FRAME_HPP

#include <parley/websocket/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <system_error>

namespace parley::websocket {

enum class opcode : std::uint8_t {
    continuation = 0x0,
    text = 0x1,
    binary = 0x2,
    close = 0x8,
    ping = 0x9,
    pong = 0xA,
};

/// Ping, pong and close: at most 125 bytes, never fragmented.
constexpr bool is_control(opcode op) noexcept { return (static_cast<unsigned>(op) & 0x8) != 0; }

/// Whether RFC 6455 defines `value` (0-2, 8-10); the rest are reserved.
constexpr bool is_known_opcode(unsigned value) noexcept {
    return value <= 0x2 || (value >= 0x8 && value <= 0xA);
}

/// Which end of the connection this is. A server reads masked frames and
/// writes unmasked ones; a client the other way round.
enum class role : unsigned char { server, client };

/// The largest control frame payload.
inline constexpr std::size_t max_control_payload = 125;
/// The largest header: 2 bytes, 8 of extended length, 4 of masking key.
inline constexpr std::size_t max_header_size = 14;

using mask_key = std::array<std::byte, 4>;

struct frame_header {
    bool fin = true;
    /// RSV1: the message is compressed (permessage-deflate).
    bool compressed = false;
    opcode op = opcode::text;
    bool masked = false;
    std::uint64_t payload_length = 0;
    mask_key key{};
};

/// What parse_header() accepts.
struct header_rules {
    /// The side reading: a server requires masked frames, a client refuses them.
    role reader = role::server;
    /// permessage-deflate was negotiated: RSV1 may be set on the first
    /// frame of a data message.
    bool compression = false;
    /// The largest payload accepted, checked as soon as the length is known.
    std::uint64_t max_payload = std::numeric_limits<std::uint64_t>::max() >> 1;
};

/// The header's size given its first two bytes.
constexpr std::size_t header_size(std::byte b1) noexcept {
    const unsigned len7 = std::to_integer<unsigned>(b1) & 0x7F;
    const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    return 2 + ext + ((std::to_integer<unsigned>(b1) & 0x80) ? 4 : 0);
}

/// Parses the header at the start of `input`. Returns:
/// - more than input.size(): the header is not complete; call again once
///   `input` holds at least that many bytes (2, then the header's size);
/// - from 2 to 14, at most input.size(): the header's size; `out` holds it;
/// - 0 on error, with `ec` set (each answered with close_code_for()).
/// The first two bytes are checked before the rest is awaited, so a
/// reserved opcode or a missing mask fails on byte 2, and a length over
/// `rules.max_payload` fails as soon as the length field is complete.
inline std::size_t parse_header(std::span<const std::byte> input, const header_rules& rules,
                                   frame_header& out, std::error_code& ec) noexcept {
    ec = {};
    if (input.size() < 2)
        return 2;
    const unsigned b0 = std::to_integer<unsigned>(input[0]);
    const unsigned b1 = std::to_integer<unsigned>(input[1]);
    const unsigned op = b0 & 0x0F;
    const bool fin = (b0 & 0x80) != 0, rsv1 = (b0 & 0x40) != 0, masked = (b1 & 0x80) != 0;
    const unsigned len7 = b1 & 0x7F;
    auto fail = [&ec](error e) {
        ec = e;
        return std::size_t{0};
    };
    if (!is_known_opcode(op))
        return fail(error::bad_opcode);
    if ((b0 & 0x30) != 0 || (rsv1 && !rules.compression))
        return fail(error::reserved_bits);
    if (rsv1 && (op == 0 || is_control(opcode{static_cast<std::uint8_t>(op)})))
        return fail(error::misplaced_compression_bit);
    if (rules.reader == role::server && !masked)
        return fail(error::unmasked_client_frame);
    if (rules.reader == role::client && masked)
        return fail(error::masked_server_frame);
    if (is_control(opcode{static_cast<std::uint8_t>(op)})) {
        if (!fin)
            return fail(error::fragmented_control_frame);
        if (len7 > max_control_payload)
            return fail(error::control_frame_too_long);
    }
    const std::size_t size = header_size(input[1]);
    const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
    if (input.size() < 2 + ext)
        return size;
    std::uint64_t length = len7;
    if (ext != 0) {
        length = 0;
        for (std::size_t i = 0; i < ext; ++i)
            length = length << 8 | std::to_integer<unsigned>(input[2 + i]);
        if (ext == 8 && (length >> 63) != 0)
            return fail(error::length_out_of_range);
        if (length < (ext == 2 ? 126u : 65536u))
            return fail(error::non_minimal_length);
    }
    if (length > rules.max_payload)
        return fail(error::message_too_big);
    if (input.size() < size)
        return size;
    out.fin = fin;
    out.compressed = rsv1;
    out.op = opcode{static_cast<std::uint8_t>(op)};
    out.masked = masked;
    out.payload_length = length;
    out.key = {};
    if (masked)
        for (std::size_t i = 0; i < 4; ++i)
            out.key[i] = input[2 + ext + i];
    return size;
}

using header_buffer = std::array<std::byte, max_header_size>;

/// Writes `h` into `out` in its shortest form (the only one RFC 6455
/// allows) and returns its size, 2 to 14. The key is written when
/// h.masked; the payload is not touched (see apply_mask()).
constexpr std::size_t write_header(const frame_header& h, header_buffer& out) noexcept {
    out[0] = static_cast<std::byte>((h.fin ? 0x80 : 0) | (h.compressed ? 0x40 : 0) |
                                    static_cast<unsigned>(h.op));
    const unsigned mask_bit = h.masked ? 0x80 : 0;
    std::size_t n = 2;
    if (h.payload_length <= 125) {
        out[1] = static_cast<std::byte>(mask_bit | static_cast<unsigned>(h.payload_length));
    } else if (h.payload_length <= 0xFFFF) {
        out[1] = static_cast<std::byte>(mask_bit | 126);
        out[2] = static_cast<std::byte>(h.payload_length >> 8);
        out[3] = static_cast<std::byte>(h.payload_length & 0xFF);
        n = 4;
    } else {
        out[1] = static_cast<std::byte>(mask_bit | 127);
        for (std::size_t i = 0; i < 8; ++i)
            out[2 + i] = static_cast<std::byte>((h.payload_length >> (8 * (7 - i))) & 0xFF);
        n = 10;
    }
    if (h.masked) {
        for (std::size_t i = 0; i < 4; ++i)
            out[n + i] = h.key[i];
        n += 4;
    }
    return n;
}

/// XORs `data` with `key` (masking and unmasking are the same operation),
/// where data[0] is byte `offset` of the frame's payload: a payload that
/// arrives in pieces is unmasked piece by piece, each call given the
/// number of payload bytes before it. Works a 64-bit word at a time.
inline void apply_mask(std::span<std::byte> data, const mask_key& key,
                       std::uint64_t offset = 0) noexcept {
    std::byte* p = data.data();
    std::size_t n = data.size();
    std::size_t k = static_cast<std::size_t>(offset & 3);
    // Bytes one at a time up to a word boundary of the data, so the
    // word-sized reads below are aligned.
    while (n != 0 && (reinterpret_cast<std::uintptr_t>(p) & 7) != 0) {
        *p++ ^= key[k];
        k = (k + 1) & 3;
        --n;
    }
    if (n >= 8) {
        // The key rotated to start at byte k, repeated to fill a word; in
        // memory order, whatever the machine's endianness.
        std::array<std::byte, 8> pattern{};
        for (std::size_t i = 0; i < 8; ++i)
            pattern[i] = key[(k + i) & 3];
        std::uint64_t word_key;
        std::memcpy(&word_key, pattern.data(), 8);
        for (; n >= 8; n -= 8, p += 8) {
            std::uint64_t w;
            std::memcpy(&w, p, 8);
            w ^= word_key;
            std::memcpy(p, &w, 8);
        }
        // k is unchanged: each word covers the key twice.
    }
    for (; n != 0; --n) {
        *p++ ^= key[k];
        k = (k + 1) & 3;
    }
}

} // namespace parley::websocket

#endif
