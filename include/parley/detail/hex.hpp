// parley internals: bytes as lowercase hexadecimal text.
#ifndef PARLEY_DETAIL_HEX_HPP
#define PARLEY_DETAIL_HEX_HPP

#include <span>
#include <string>

namespace parley::detail {

/// Two lowercase hex digits per byte, in order.
inline std::string to_hex(std::span<const unsigned char> bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(bytes.size() * 2);
    for (const unsigned char b : bytes) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

} // namespace parley::detail

#endif
