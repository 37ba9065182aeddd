// parley: UTF-8 validation for text that crosses the network.
#ifndef PARLEY_CODEC_UTF8_HPP
#define PARLEY_CODEC_UTF8_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley {

/// The length (1 to 4) of the valid UTF-8 sequence that starts at
/// `text[i]`, or 0 when the bytes there are not one (RFC 3629: no overlong
/// form, no surrogate, nothing above U+10FFFF, not truncated).
constexpr std::size_t utf8_sequence_at(std::string_view text, std::size_t i) noexcept {
    if (i >= text.size())
        return 0;
    const auto b0 = static_cast<std::uint8_t>(text[i]);
    std::size_t extra = 0;
    std::uint32_t lo = 0x80, hi = 0xBF; // allowed range of the second byte
    if (b0 < 0x80) {
        return 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF) {
        extra = 1;
    } else if (b0 >= 0xE0 && b0 <= 0xEF) {
        extra = 2;
        if (b0 == 0xE0)
            lo = 0xA0; // overlong
        else if (b0 == 0xED)
            hi = 0x9F; // UTF-16 surrogates
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        extra = 3;
        if (b0 == 0xF0)
            lo = 0x90; // overlong
        else if (b0 == 0xF4)
            hi = 0x8F; // above U+10FFFF
    } else {
        return 0;
    }
    if (text.size() - i <= extra)
        return 0;
    for (std::size_t k = 1; k <= extra; ++k) {
        const auto b = static_cast<std::uint8_t>(text[i + k]);
        const std::uint32_t min = k == 1 ? lo : 0x80, max = k == 1 ? hi : 0xBF;
        if (b < min || b > max)
            return 0;
    }
    return extra + 1;
}

/// Counts the code points of `text`, or returns nullopt when it is not
/// valid UTF-8 (see utf8_sequence_at).
constexpr std::optional<std::size_t> utf8_length(std::string_view text) noexcept {
    std::size_t count = 0;
    for (std::size_t i = 0; i < text.size(); ++count) {
        const std::size_t n = utf8_sequence_at(text, i);
        if (n == 0)
            return std::nullopt;
        i += n;
    }
    return count;
}

constexpr bool is_valid_utf8(std::string_view text) noexcept {
    return utf8_length(text).has_value();
}

/// Decodes the code point starting at `text[i]` of text already known to
/// be valid UTF-8, advancing `i` past it.
constexpr char32_t utf8_decode_next(std::string_view text, std::size_t& i) noexcept {
    const auto b0 = static_cast<std::uint8_t>(text[i]);
    std::size_t extra = b0 < 0x80 ? 0 : b0 < 0xE0 ? 1 : b0 < 0xF0 ? 2 : 3;
    char32_t cp = extra == 0 ? b0 : extra == 1 ? (b0 & 0x1F) : extra == 2 ? (b0 & 0x0F) : (b0 & 0x07);
    for (std::size_t k = 1; k <= extra; ++k)
        cp = (cp << 6) | (static_cast<std::uint8_t>(text[i + k]) & 0x3F);
    i += extra + 1;
    return cp;
}

/// Appends the UTF-8 encoding of code point `cp` (at most U+10FFFF, not a
/// surrogate) to `out`.
inline void utf8_append(std::string& out, char32_t cp) {
    if (cp < 0x80) {
        out += static_cast<char>(cp);
    } else if (cp < 0x800) {
        out += static_cast<char>(0xC0 | (cp >> 6));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        out += static_cast<char>(0xE0 | (cp >> 12));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
        out += static_cast<char>(0xF0 | (cp >> 18));
        out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
        out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
        out += static_cast<char>(0x80 | (cp & 0x3F));
    }
}

} // namespace parley

#endif
