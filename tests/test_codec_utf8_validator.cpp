// Tests for include/parley/codec/utf8_validator.hpp. Included first: the
// header must stand on its own.
//
// The oracle is utf8.hpp's whole-string validator, used two ways: a text
// is valid iff is_valid_utf8 says so, and a prefix can still become valid
// iff is_valid_utf8 accepts it followed by one of a few completions (no
// character is longer than 4 bytes, and every allowed range of a second
// byte holds 0x80, 0x90 or 0xA0). The incremental validator must fail on
// exactly the first byte whose prefix cannot, however the text is split.
// The samples follow Autobahn's section 6 (Markus Kuhn's UTF-8 test file's
// groups: valid text, boundaries, malformed sequences, overlong forms,
// surrogates, noncharacters).
#include <parley/codec/utf8_validator.hpp>

#include <parley/codec/utf8.hpp>

#include <doctest/doctest.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace {

bool can_continue(std::string_view prefix) {
    static const std::array<std::string_view, 10> completions = {
        "",
        "\x80",
        "\x90",
        "\xA0",
        "\x80\x80",
        "\x90\x80",
        "\xA0\x80",
        "\x80\x80\x80",
        "\x90\x80\x80",
        "\xA0\x80\x80",
    };
    for (auto c : completions)
        if (parley::is_valid_utf8(std::string(prefix) + std::string(c)))
            return true;
    return false;
}

// Where a fail-fast validator must fail: the index of the first byte after
// which the prefix cannot become valid, or text.size() if there is none.
std::size_t oracle_failure(std::string_view text) {
    for (std::size_t i = 0; i < text.size(); ++i)
        if (!can_continue(text.substr(0, i + 1)))
            return i;
    return text.size();
}

struct result {
    std::size_t failed_at; // text.size() when it never failed
    bool complete;
};

// Feeds `text` cut at `cuts` (increasing offsets) and reports where, in
// the whole text, the validator failed.
result run(std::string_view text, const std::vector<std::size_t>& cuts) {
    parley::utf8_validator v;
    std::size_t start = 0;
    std::size_t failed_at = text.size();
    auto piece = [&](std::size_t end) {
        const auto p = text.substr(start, end - start);
        const std::size_t accepted = v.feed(p);
        if (failed_at == text.size() && accepted != p.size())
            failed_at = start + accepted;
        start = end;
    };
    for (std::size_t c : cuts)
        piece(c);
    piece(text.size());
    return {failed_at, v.complete()};
}

void check_all_splits(std::string_view text) {
    CAPTURE(text);
    const std::size_t want_fail = oracle_failure(text);
    const bool want_complete = parley::is_valid_utf8(text);
    if (want_complete)
        CHECK(want_fail == text.size()); // the oracle's two uses agree
    auto check = [&](const std::vector<std::size_t>& cuts) {
        const result r = run(text, cuts);
        CHECK(r.failed_at == want_fail);
        CHECK(r.complete == want_complete);
    };
    check({});
    for (std::size_t a = 0; a <= text.size(); ++a) {
        check({a});
        if (text.size() <= 24)
            for (std::size_t b = a; b <= text.size(); ++b)
                check({a, b});
    }
    std::vector<std::size_t> every_byte;
    for (std::size_t a = 1; a < text.size(); ++a)
        every_byte.push_back(a);
    check(every_byte);
}

const std::vector<std::string> samples = {
    // Valid text.
    "",
    "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!",
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5", // Greek "kosme"
    "\xE8\xBF\x9E\xE6\x8E\xA5\xE6\x88\x90\xE5\x8A\x9F!", // Chinese
    "\xF0\x9F\x98\x80 and an emoji and more ASCII text past a word boundary",
    // First and last code point of each length.
    std::string("\x00", 1),
    "\xC2\x80",
    "\xE0\xA0\x80",
    "\xF0\x90\x80\x80",
    "\x7F",
    "\xDF\xBF",
    "\xEF\xBF\xBF",
    "\xF4\x8F\xBF\xBF",
    // Other boundaries.
    "\xED\x9F\xBF",
    "\xEE\x80\x80",
    "\xEF\xBF\xBD",
    // Beyond U+10FFFF, caught on the second byte.
    "\xF4\x90\x80\x80",
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xF4\x90\x80\x80\x65\x64\x69\x74\x65\x64",
    "\xF7\xBF\xBF\xBF",
    "\xF8\x88\x80\x80\x80",
    "\xFC\x84\x80\x80\x80\x80",
    // Unexpected continuation bytes.
    "\x80",
    "\xBF",
    "\x80\xBF",
    "\x80\xBF\x80\xBF",
    "abc\x80",
    // Lonely start bytes followed by a space.
    "\xC0 \xC1 \xC2 \xDF ",
    "\xE0 \xEF ",
    "\xF0 \xF4 ",
    // Sequences with their last byte missing, and in a row.
    "\xC2",
    "\xE0\xA0",
    "\xF0\x90\x80",
    "\xDF\xEF\xBF\xF4\x8F\xBF",
    // Impossible bytes.
    "\xFE",
    "\xFF",
    "\xFE\xFE\xFF\xFF",
    // Overlong forms of "/" and the largest overlong of each length.
    "\xC0\xAF",
    "\xE0\x80\xAF",
    "\xF0\x80\x80\xAF",
    "\xC1\xBF",
    "\xE0\x9F\xBF",
    "\xF0\x8F\xBF\xBF",
    "\xC0\x80",
    // Surrogates, single and paired.
    "\xED\xA0\x80",
    "\xED\xAD\xBF",
    "\xED\xAE\x80",
    "\xED\xAF\xBF",
    "\xED\xB0\x80",
    "\xED\xBF\xBF",
    "\xED\xA0\x80\xED\xB0\x80",
    "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80\x65\x64\x69\x74\x65\x64",
    // Noncharacters are valid UTF-8.
    "\xEF\xBF\xBE",
    "\xEF\xBF\xBF",
    "\xF4\x8F\xBF\xBE",
};

} // namespace

TEST_CASE("utf8_validator: agrees with the whole-string validator on every split of the samples") {
    for (const auto& s : samples)
        check_all_splits(s);
}

TEST_CASE("utf8_validator: fails fast at the byte the oracle names") {
    // Spot checks of the oracle itself, against positions worked out by hand.
    CHECK(oracle_failure("\xF4\x90\x80\x80") == 1);
    CHECK(oracle_failure("\xED\xA0\x80") == 1);
    CHECK(oracle_failure("\xE0\x80\xAF") == 1);
    CHECK(oracle_failure("ab\xC0") == 2);
    CHECK(oracle_failure("ab\xC2") == 3);

    parley::utf8_validator v;
    CHECK(v.feed(std::string_view("\xCE\xBA\xE1\xBD\xB9")) == 5);
    CHECK(v.complete());
    CHECK(v.feed(std::string_view("\xF4")) == 1);
    CHECK_FALSE(v.complete());
    CHECK_FALSE(v.failed());
    CHECK(v.pending() == 3);
    CHECK(v.feed(std::string_view("\x90\x80")) == 0);
    CHECK(v.failed());
    CHECK(v.feed(std::string_view("abc")) == 0); // stays failed
    v.reset();
    CHECK(v.complete());
    CHECK(v.feed(std::string_view("abc")) == 3);
}

TEST_CASE("utf8_validator: every 1- and 2-byte string, whole and split") {
    for (unsigned a = 0; a < 256; ++a) {
        const std::string one(1, static_cast<char>(a));
        CHECK(run(one, {}).failed_at == oracle_failure(one));
        for (unsigned b = 0; b < 256; ++b) {
            const std::string two{static_cast<char>(a), static_cast<char>(b)};
            const std::size_t want = oracle_failure(two);
            const bool complete = parley::is_valid_utf8(two);
            for (std::size_t cut = 0; cut <= 2; ++cut) {
                const result r = run(two, {cut});
                if (r.failed_at != want || r.complete != complete) {
                    CAPTURE(a);
                    CAPTURE(b);
                    CAPTURE(cut);
                    FAIL("disagrees with the oracle");
                }
            }
        }
    }
}

TEST_CASE("utf8_validator: every 3- and 4-byte string over the interesting bytes") {
    // Each boundary of a range some rule uses, and a few ordinary bytes.
    const unsigned char set[] = {0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF,
                                 0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xE1, 0xEC, 0xED, 0xEE,
                                 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xF8, 0xFE, 0xFF};
    std::size_t checked = 0, disagreements = 0;
    std::string s(4, '\0');
    for (auto a : set)
        for (auto b : set)
            for (auto c : set) {
                s.assign({static_cast<char>(a), static_cast<char>(b), static_cast<char>(c)});
                for (int d = -1; d < static_cast<int>(sizeof set); ++d) {
                    if (d >= 0)
                        s.resize(3), s.push_back(static_cast<char>(set[d]));
                    const std::size_t want = oracle_failure(s);
                    const bool complete = parley::is_valid_utf8(s);
                    for (std::size_t cut = 0; cut <= s.size(); ++cut) {
                        const result r = run(s, {cut});
                        ++checked;
                        disagreements += r.failed_at != want || r.complete != complete;
                    }
                    const result bytewise = run(s, {1, 2, 3});
                    disagreements += bytewise.failed_at != want || bytewise.complete != complete;
                }
            }
    CHECK(checked > 2'000'000);
    CHECK(disagreements == 0);
}

TEST_CASE("utf8_validator: long random texts in random pieces") {
    std::mt19937 rng(2026);
    const std::string_view atoms[] = {"a", "hello world, ", "\xC3\xA9", "\xE8\xBF\x9E",
                                      "\xF0\x9F\x98\x80", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF"};
    const std::string_view poison[] = {"\x80", "\xC0\xAF", "\xED\xA0\x80", "\xF4\x90", "\xFF",
                                       "\xE0\x9F\xBF", "\xC2"};
    for (int round = 0; round < 300; ++round) {
        std::string text;
        const std::size_t parts = rng() % 200;
        for (std::size_t i = 0; i < parts; ++i)
            text += atoms[rng() % std::size(atoms)];
        if (round % 2)
            text.insert(rng() % (text.size() + 1), poison[rng() % std::size(poison)]);
        std::vector<std::size_t> cuts;
        for (std::size_t pos = 0; pos < text.size();) {
            pos += 1 + rng() % 17;
            if (pos < text.size())
                cuts.push_back(pos);
        }
        const result r = run(text, cuts);
        CHECK(r.failed_at == oracle_failure(text));
        CHECK(r.complete == parley::is_valid_utf8(text));
    }
}
