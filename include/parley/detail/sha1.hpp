// parley: SHA-1 (FIPS 180-4), for the WebSocket handshake's
// Sec-WebSocket-Accept only, so that it works without OpenSSL. SHA-1 is
// broken for collision resistance; RFC 6455 uses it as a fixed checksum,
// not for security, and nothing else in parley may use it.
#ifndef PARLEY_DETAIL_SHA1_HPP
#define PARLEY_DETAIL_SHA1_HPP

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace parley::detail {

/// An incremental SHA-1, usable in constant expressions: update() any
/// number of times, then digest() once.
class sha1 {
public:
    using digest_type = std::array<std::uint8_t, 20>;

    constexpr sha1() noexcept = default;

    constexpr void update(std::string_view bytes) noexcept {
        for (const char c : bytes) {
            block_[fill_++] = static_cast<std::uint8_t>(c);
            if (fill_ == 64) {
                compress();
                fill_ = 0;
            }
        }
        length_ += bytes.size();
    }

    /// Pads, finishes and returns the digest. The object is spent after it.
    constexpr digest_type digest() noexcept {
        const std::uint64_t bits = length_ * 8;
        block_[fill_++] = 0x80;
        if (fill_ > 56) {
            while (fill_ < 64)
                block_[fill_++] = 0;
            compress();
            fill_ = 0;
        }
        while (fill_ < 56)
            block_[fill_++] = 0;
        for (int i = 7; i >= 0; --i)
            block_[fill_++] = static_cast<std::uint8_t>(bits >> (8 * i));
        compress();
        digest_type out{};
        for (std::size_t i = 0; i < 5; ++i)
            for (std::size_t j = 0; j < 4; ++j)
                out[4 * i + j] = static_cast<std::uint8_t>(h_[i] >> (24 - 8 * j));
        return out;
    }

    /// The digest of `bytes` in one call.
    static constexpr digest_type of(std::string_view bytes) noexcept {
        sha1 s;
        s.update(bytes);
        return s.digest();
    }

private:
    static constexpr std::uint32_t rotl(std::uint32_t x, int n) noexcept {
        return (x << n) | (x >> (32 - n));
    }

    constexpr void compress() noexcept {
        std::array<std::uint32_t, 80> w{};
        for (std::size_t t = 0; t < 16; ++t)
            w[t] = std::uint32_t{block_[4 * t]} << 24 | std::uint32_t{block_[4 * t + 1]} << 16 |
                   std::uint32_t{block_[4 * t + 2]} << 8 | std::uint32_t{block_[4 * t + 3]};
        for (std::size_t t = 16; t < 80; ++t)
            w[t] = rotl(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
        std::uint32_t a = h_[0], b = h_[1], c = h_[2], d = h_[3], e = h_[4];
        for (std::size_t t = 0; t < 80; ++t) {
            std::uint32_t f = 0, k = 0;
            if (t < 20) {
                f = (b & c) | (~b & d);
                k = 0x5A827999;
            } else if (t < 40) {
                f = b ^ c ^ d;
                k = 0x6ED9EBA1;
            } else if (t < 60) {
                f = (b & c) | (b & d) | (c & d);
                k = 0x8F1BBCDC;
            } else {
                f = b ^ c ^ d;
                k = 0xCA62C1D6;
            }
            const std::uint32_t temp = rotl(a, 5) + f + e + k + w[t];
            e = d;
            d = c;
            c = rotl(b, 30);
            b = a;
            a = temp;
        }
        h_[0] += a;
        h_[1] += b;
        h_[2] += c;
        h_[3] += d;
        h_[4] += e;
    }

    std::array<std::uint32_t, 5> h_{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    std::array<std::uint8_t, 64> block_{};
    std::size_t fill_ = 0;
    std::uint64_t length_ = 0;
};

} // namespace parley::detail

#endif
