// Tests for include/parley/detail/sha1.hpp against the test vectors of
// FIPS 180-2 appendix A and RFC 3174 section 7.3. Included first: the
// header must stand on its own.
#include <parley/detail/sha1.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace {

std::string hex(const parley::detail::sha1::digest_type& d) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const auto b : d) {
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

// Works at compile time too.
static_assert(parley::detail::sha1::of("abc")[0] == 0xa9);
static_assert(parley::detail::sha1::of("abc")[19] == 0x9d);

} // namespace

TEST_CASE("sha1: the FIPS 180 / RFC 3174 vectors") {
    using parley::detail::sha1;
    CHECK(hex(sha1::of("")) == "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    CHECK(hex(sha1::of("abc")) == "a9993e364706816aba3e25717850c26c9cd0d89d");
    CHECK(hex(sha1::of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq")) ==
          "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    {
        sha1 s; // RFC 3174 TEST3: a million 'a's, fed in uneven pieces
        const std::string piece(997, 'a');
        std::size_t fed = 0;
        while (fed + piece.size() <= 1000000) {
            s.update(piece);
            fed += piece.size();
        }
        s.update(std::string(1000000 - fed, 'a'));
        CHECK(hex(s.digest()) == "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    }
    {
        sha1 s; // RFC 3174 TEST4
        for (int i = 0; i < 10; ++i)
            s.update("0123456701234567012345670123456701234567012345670123456701234567");
        CHECK(hex(s.digest()) == "dea356a2cddd90c7a7ecedc5ebb563934f460452");
    }
}

TEST_CASE("sha1: lengths around the padding boundary, whole or byte by byte") {
    using parley::detail::sha1;
    // 55 bytes fit the length in the same block, 56 do not; 64 fill a block.
    // Known digests of n 'a's:
    CHECK(hex(sha1::of(std::string(55, 'a'))) == "c1c8bbdc22796e28c0e15163d20899b65621d65a");
    CHECK(hex(sha1::of(std::string(56, 'a'))) == "c2db330f6083854c99d4b5bfb6e8f29f201be699");
    CHECK(hex(sha1::of(std::string(64, 'a'))) == "0098ba824b5c16427bd7a1122a5a442a25ec644d");
    for (const std::size_t n : {0u, 1u, 55u, 56u, 63u, 64u, 65u, 119u, 120u, 128u, 300u}) {
        const std::string text(n, 'x');
        sha1 bytewise;
        for (const char c : text)
            bytewise.update(std::string_view(&c, 1));
        CHECK_MESSAGE(bytewise.digest() == sha1::of(text), "length ", n);
    }
}
