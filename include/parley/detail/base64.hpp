// parley: base64 (RFC 4648, section 4: the standard alphabet, with
// padding), for the WebSocket handshake's key and accept values.
#ifndef PARLEY_DETAIL_BASE64_HPP
#define PARLEY_DETAIL_BASE64_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace parley::detail::base64 {

inline constexpr std::string_view alphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Characters needed to encode `n` bytes, padding included.
constexpr std::size_t encoded_size(std::size_t n) noexcept { return (n + 2) / 3 * 4; }

/// Writes the encoding of `in` to `out`, which holds encoded_size(in.size())
/// characters; returns the number written.
constexpr std::size_t encode(std::span<const std::uint8_t> in, char* out) noexcept {
    std::size_t o = 0, i = 0;
    for (; i + 3 <= in.size(); i += 3) {
        const std::uint32_t v = std::uint32_t{in[i]} << 16 | std::uint32_t{in[i + 1]} << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (const std::size_t rest = in.size() - i; rest != 0) {
        std::uint32_t v = std::uint32_t{in[i]} << 16;
        if (rest == 2)
            v |= std::uint32_t{in[i + 1]} << 8;
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = rest == 2 ? alphabet[(v >> 6) & 63] : '=';
        out[o++] = '=';
    }
    return o;
}

inline std::string encode(std::span<const std::uint8_t> in) {
    std::string out(encoded_size(in.size()), '\0');
    encode(in, out.data());
    return out;
}

inline std::string encode(std::string_view in) {
    return encode(std::span(reinterpret_cast<const std::uint8_t*>(in.data()), in.size()));
}

/// The value of one alphabet character, or -1.
constexpr int value_of(char c) noexcept {
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/// Strict decoding: the length is a multiple of 4, padding only at the end,
/// no whitespace or other characters, and the unused bits before the
/// padding are zero (RFC 4648 section 3.5), so every byte string has one
/// accepted encoding. Writes to `out`, which holds at least
/// in.size() / 4 * 3 bytes; returns the number of bytes, or nothing.
constexpr std::optional<std::size_t> decode(std::string_view in, std::uint8_t* out) noexcept {
    if (in.size() % 4 != 0)
        return std::nullopt;
    std::size_t o = 0;
    for (std::size_t i = 0; i < in.size(); i += 4) {
        const bool last = i + 4 == in.size();
        const int a = value_of(in[i]), b = value_of(in[i + 1]);
        if (a < 0 || b < 0)
            return std::nullopt;
        int pad = 0;
        if (last && in[i + 3] == '=')
            pad = in[i + 2] == '=' ? 2 : 1;
        const int c = pad == 2 ? 0 : value_of(in[i + 2]);
        const int d = pad >= 1 ? 0 : value_of(in[i + 3]);
        if (c < 0 || d < 0)
            return std::nullopt;
        if ((pad == 2 && (b & 15) != 0) || (pad == 1 && (c & 3) != 0))
            return std::nullopt; // non-zero bits in the padding
        const std::uint32_t v = static_cast<std::uint32_t>(a << 18 | b << 12 | c << 6 | d);
        out[o++] = static_cast<std::uint8_t>(v >> 16);
        if (pad < 2)
            out[o++] = static_cast<std::uint8_t>(v >> 8);
        if (pad < 1)
            out[o++] = static_cast<std::uint8_t>(v);
    }
    return o;
}

/// decode() into a string, or nothing if `in` is not strict base64.
inline std::optional<std::string> decode(std::string_view in) {
    std::string out(in.size() / 4 * 3, '\0');
    const auto n = decode(in, reinterpret_cast<std::uint8_t*>(out.data()));
    if (!n)
        return std::nullopt;
    out.resize(*n);
    return out;
}

} // namespace parley::detail::base64

#endif
