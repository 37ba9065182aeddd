// Tests for include/parley/utf8.hpp. Included first: the header must stand
// on its own.
#include <parley/codec/utf8.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <ios>
#include <ostream>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace std::string_view_literals;

// The reference encoder for the round trips below, written apart from the
// library's (which picks the lead byte first): continuation bytes are
// peeled off the low end until what remains fits beside the lead byte's
// marker, RFC 3629's table read from the bottom up. The known vectors
// below check the reference itself.
std::string encode(char32_t cp) {
    // Per length: the marker bits of the lead byte, and the largest value
    // the lead byte's free bits can hold at that length.
    struct row {
        unsigned char marker;
        char32_t lead_max;
    };
    static constexpr row rows[] = {{0x00, 0x7F}, {0xC0, 0x1F}, {0xE0, 0x0F}, {0xF0, 0x07}};
    static constexpr char32_t first_of_length[] = {0, 0x80, 0x800, 0x10000};
    std::size_t continuation = 0;
    while (continuation < 3 && cp >= first_of_length[continuation + 1])
        ++continuation;
    std::string tail;
    char32_t rest = cp;
    for (std::size_t k = 0; k < continuation; ++k) {
        tail.insert(tail.begin(), static_cast<char>(0x80 + rest % 64));
        rest /= 64;
    }
    REQUIRE(rest <= rows[continuation].lead_max);
    return static_cast<char>(rows[continuation].marker + rest) + tail;
}

// Known encodings: RFC 3629's examples, the first and last value of each
// length, the values around the surrogates, and a few from the Unicode
// charts, byte by byte.
struct known_vector {
    char32_t cp;
    std::string_view bytes;
};
constexpr known_vector known_vectors[] = {
    {0x0000, "\x00"sv},
    {0x0041, "\x41"sv},
    {0x007F, "\x7F"sv},
    {0x0080, "\xC2\x80"sv},
    {0x00A9, "\xC2\xA9"sv},              // ©
    {0x00E9, "\xC3\xA9"sv},              // é
    {0x07FF, "\xDF\xBF"sv},
    {0x0800, "\xE0\xA0\x80"sv},
    {0x20AC, "\xE2\x82\xAC"sv},          // €
    {0x2262, "\xE2\x89\xA2"sv},          // RFC 3629: NOT IDENTICAL TO
    {0x8FDE, "\xE8\xBF\x9E"sv},          // 连
    {0xD55C, "\xED\x95\x9C"sv},          // RFC 3629: 한
    {0xD7FF, "\xED\x9F\xBF"sv},
    {0xE000, "\xEE\x80\x80"sv},
    {0xFEFF, "\xEF\xBB\xBF"sv},          // RFC 3629: the BOM
    {0xFFFD, "\xEF\xBF\xBD"sv},
    {0xFFFF, "\xEF\xBF\xBF"sv},
    {0x10000, "\xF0\x90\x80\x80"sv},
    {0x1F600, "\xF0\x9F\x98\x80"sv},     // 😀
    {0x233B4, "\xF0\xA3\x8E\xB4"sv},     // RFC 3629: 𣎴
    {0x10FFFF, "\xF4\x8F\xBF\xBF"sv},
};

// A reference validator written the other way round from the library's:
// decode by the bit patterns alone, then reject by the decoded value
// (overlong, surrogate, beyond U+10FFFF).
std::optional<std::size_t> reference_length(std::string_view s) {
    std::size_t count = 0;
    for (std::size_t i = 0; i < s.size(); ++count) {
        const auto b = static_cast<std::uint8_t>(s[i]);
        std::size_t n;
        char32_t cp;
        if (b < 0x80) {
            n = 0, cp = b;
        } else if ((b & 0xE0) == 0xC0) {
            n = 1, cp = b & 0x1F;
        } else if ((b & 0xF0) == 0xE0) {
            n = 2, cp = b & 0x0F;
        } else if ((b & 0xF8) == 0xF0) {
            n = 3, cp = b & 0x07;
        } else {
            return std::nullopt;
        }
        if (i + n >= s.size() && n != 0)
            return std::nullopt;
        for (std::size_t k = 1; k <= n; ++k) {
            const auto c = static_cast<std::uint8_t>(s[i + k]);
            if ((c & 0xC0) != 0x80)
                return std::nullopt;
            cp = (cp << 6) | (c & 0x3F);
        }
        static constexpr char32_t min_for_length[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min_for_length[n] || (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF)
            return std::nullopt;
        i += n + 1;
    }
    return count;
}

std::vector<char32_t> decode_all(std::string_view s) {
    std::vector<char32_t> out;
    for (std::size_t i = 0; i < s.size();)
        out.push_back(parley::utf8_decode_next(s, i));
    return out;
}

} // namespace

// The checks work at compile time too.
static_assert(parley::utf8_length("hello") == 5);
static_assert(parley::utf8_length("\xE8\xBF\x9E\xE4\xB8\x8A\xE4\xBA\x86") == 3); // 连上了
static_assert(!parley::is_valid_utf8("\xC0\x80"));
static_assert(parley::is_valid_utf8(""));

TEST_CASE("utf8: valid samples and their code point counts") {
    CHECK(parley::utf8_length("") == 0u);
    CHECK(parley::utf8_length("plain ASCII, with punctuation!") == 30u);
    CHECK(parley::utf8_length("a\0b"sv) == 3u); // NUL is a code point like any other
    CHECK(parley::utf8_length("caf\xC3\xA9") == 4u);          // é: 2 bytes
    CHECK(parley::utf8_length("\xE2\x82\xAC") == 1u);         // €: 3 bytes
    CHECK(parley::utf8_length("\xF0\x9F\x98\x80") == 1u);     // 😀: 4 bytes

    // The source file is UTF-8, and so is the execution character set of
    // g++ and clang++ by default; the byte check pins that assumption.
    const std::string_view connected = "连上了";
    REQUIRE(connected == "\xE8\xBF\x9E\xE4\xB8\x8A\xE4\xBA\x86"sv);
    CHECK(parley::utf8_length(connected) == 3u);
    CHECK(parley::utf8_length("连接成功!,请输入昵称") == 11u);
    // Wave, skin-tone modifier, space, h, i, space, party popper.
    CHECK(parley::utf8_length("👋🏽 hi 🎉") == 7u);
}

TEST_CASE("utf8: known encodings: the reference encoder, the library's encoder and decoder") {
    for (const auto& v : known_vectors) {
        CAPTURE(static_cast<std::uint32_t>(v.cp));
        CHECK(encode(v.cp) == v.bytes);
        std::string out;
        parley::utf8_append(out, v.cp);
        CHECK(out == v.bytes);
        std::size_t i = 0;
        CHECK(parley::utf8_decode_next(v.bytes, i) == v.cp);
        CHECK(i == v.bytes.size());
        CHECK(reference_length(v.bytes) == 1u);
    }
}

TEST_CASE("utf8: boundaries of each sequence length are accepted") {
    for (char32_t cp : {0x00u, 0x7Fu, 0x80u, 0x7FFu, 0x800u, 0xFFFu, 0x1000u, 0xD7FFu, 0xE000u,
                        0xFFFDu, 0xFFFFu, 0x10000u, 0x3FFFFu, 0x40000u, 0xFFFFFu, 0x100000u,
                        0x10FFFFu}) {
        const std::string s = encode(cp);
        CAPTURE(static_cast<std::uint32_t>(cp));
        CHECK(parley::utf8_length(s) == 1u);
        std::size_t i = 0;
        CHECK(parley::utf8_decode_next(s, i) == cp);
        CHECK(i == s.size());
    }
}

TEST_CASE("utf8: invalid sequences are rejected") {
    const std::string_view invalid[] = {
        "\xC0\x80"sv,             // overlong NUL
        "\xC1\xBF"sv,             // overlong U+007F
        "\xE0\x80\x80"sv,         // overlong 3-byte
        "\xE0\x9F\xBF"sv,         // overlong U+07FF
        "\xF0\x80\x80\x80"sv,     // overlong 4-byte
        "\xF0\x8F\xBF\xBF"sv,     // overlong U+FFFF
        "\xED\xA0\x80"sv,         // U+D800, high surrogate
        "\xED\xBF\xBF"sv,         // U+DFFF, low surrogate
        "\xED\xA0\xBD\xED\xB8\x80"sv, // a CESU-8 surrogate pair
        "\xF4\x90\x80\x80"sv,     // U+110000
        "\xF5\x80\x80\x80"sv,     // F5 never appears
        "\xF8\x88\x80\x80\x80"sv, // old 5-byte form
        "\xFE"sv, "\xFF"sv,
        "\x80"sv,                 // lone continuation
        "\xBF"sv,
        "a\x80z"sv,               // continuation in the middle of ASCII
        "\xC2\x41"sv,             // lead byte followed by ASCII
        "\xE8\xBF\x41"sv,         // 3-byte sequence broken in its third byte
        "\xF0\x9F\x98\x41"sv,     // 4-byte sequence broken in its fourth byte
        "\xC2"sv,                 // truncated at the end of the text
        "\xE8\xBF"sv,
        "\xF0\x9F\x98"sv,
        "\xE8\xBF\x9E\xE4\xB8"sv, // 连 then half of 上
        "ok\xF0"sv,
    };
    for (auto s : invalid) {
        CAPTURE(std::string(s));
        CHECK_FALSE(parley::utf8_length(s).has_value());
        CHECK_FALSE(parley::is_valid_utf8(s));
    }
}

TEST_CASE("utf8: utf8_decode_next walks code points") {
    CHECK(decode_all("a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80") ==
          std::vector<char32_t>{U'a', U'\u00E9', U'\u20AC', U'\U0001F600'});
    CHECK(decode_all("连上了") == std::vector<char32_t>{U'连', U'上', U'了'});
    CHECK(decode_all("连接成功!,请输入昵称") ==
          std::vector<char32_t>{U'连', U'接', U'成', U'功', U'!', U',', U'请', U'输', U'入',
                                U'昵', U'称'});
    std::size_t i = 1; // starts anywhere a code point starts
    CHECK(parley::utf8_decode_next("a\xE2\x82\xAC", i) == U'\u20AC');
    CHECK(i == 4);
}

TEST_CASE("utf8: scalar values round-trip") {
    // Every value up to U+FFFF, then a stride through the 4-byte range that
    // still visits every lead byte and many continuation patterns (the
    // boundaries are checked above); the whole range costs too much time in
    // an unoptimised sanitizer build.
    std::size_t checked = 0;
    for (char32_t cp = 0; cp <= 0x10FFFF; cp += cp < 0x10000 ? 1 : 61) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        const std::string s = encode(cp);
        std::size_t i = 0;
        if (parley::utf8_length(s) != 1u || parley::utf8_decode_next(s, i) != cp ||
            i != s.size()) {
            FAIL("code point U+" << std::hex << static_cast<std::uint32_t>(cp));
        }
        ++checked;
    }
    CHECK(checked == 0x10000 - 0x800 + (0x10FFFF - 0x10000) / 61 + 1);
}

TEST_CASE("utf8: agrees with a reference validator on every short sequence") {
    // Every 1- and 2-byte string, and every 3-byte string whose first byte
    // is a lead with a restricted second byte or a neighbour of one.
    std::string s;
    for (int a = 0; a < 256; ++a) {
        s.assign(1, static_cast<char>(a));
        REQUIRE(parley::utf8_length(s) == reference_length(s));
        for (int b = 0; b < 256; ++b) {
            s.assign({static_cast<char>(a), static_cast<char>(b)});
            if (parley::utf8_length(s) != reference_length(s))
                FAIL("bytes " << a << " " << b);
        }
    }
    for (int a : {0xC2, 0xE0, 0xED, 0xEE, 0xF0, 0xF4, 0xF5})
        for (int b = 0; b < 256; ++b)
            for (int c = 0; c < 256; ++c) {
                s.assign({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
                if (parley::utf8_length(s) != reference_length(s))
                    FAIL("bytes " << a << " " << b << " " << c);
            }
    // Random longer strings biased towards bytes that matter.
    std::mt19937 rng(20240601);
    const unsigned char interesting[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                         0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xED, 0xEE, 0xEF,
                                         0xF0, 0xF1, 0xF4, 0xF5, 0xF8, 0xFF};
    for (int iter = 0; iter < 30000; ++iter) {
        s.resize(rng() % 9);
        for (auto& ch : s)
            ch = static_cast<char>(rng() % 2 ? interesting[rng() % sizeof interesting]
                                             : static_cast<unsigned char>(rng()));
        if (parley::utf8_length(s) != reference_length(s))
            FAIL("random string of " << s.size() << " bytes, iteration " << iter);
    }
}

TEST_CASE("utf8: utf8_append encodes every scalar value as the reference does") {
    std::size_t checked = 0;
    for (char32_t cp = 0; cp <= 0x10FFFF; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue; // surrogates are not scalar values
        std::string out;
        parley::utf8_append(out, cp);
        if (out != encode(cp)) {
            FAIL("U+" << std::hex << static_cast<unsigned>(cp));
        }
        std::size_t i = 0;
        REQUIRE(parley::utf8_decode_next(out, i) == cp);
        ++checked;
    }
    CHECK(checked == 0x110000 - 0x800);
}

TEST_CASE("utf8: utf8_sequence_at measures one sequence, 0 where there is none") {
    const auto text = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"sv; // a é € 😀
    CHECK(parley::utf8_sequence_at(text, 0) == 1u);
    CHECK(parley::utf8_sequence_at(text, 1) == 2u);
    CHECK(parley::utf8_sequence_at(text, 3) == 3u);
    CHECK(parley::utf8_sequence_at(text, 6) == 4u);
    CHECK(parley::utf8_sequence_at(text, 2) == 0u);  // a continuation byte
    CHECK(parley::utf8_sequence_at(text, 10) == 0u); // past the end
    CHECK(parley::utf8_sequence_at("\xF0\x9F\x98"sv, 0) == 0u); // truncated
    CHECK(parley::utf8_sequence_at("\xC0\xAF"sv, 0) == 0u);     // overlong
    CHECK(parley::utf8_sequence_at("\xED\xA0\x80"sv, 0) == 0u); // a surrogate
    CHECK(parley::utf8_sequence_at("\xF4\x90\x80\x80"sv, 0) == 0u); // above U+10FFFF
}
