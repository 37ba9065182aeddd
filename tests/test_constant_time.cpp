// Tests for include/parley/constant_time.hpp. Included first: the header
// must stand on its own.
#include <parley/constant_time.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

TEST_CASE("constant_time_equal: equal only for the same bytes and length") {
    using parley::constant_time_equal;
    CHECK(constant_time_equal("", ""));
    CHECK(constant_time_equal("s3cret", "s3cret"));
    CHECK_FALSE(constant_time_equal("s3cre", "s3cret"));
    CHECK_FALSE(constant_time_equal("s3crets", "s3cret"));
    CHECK_FALSE(constant_time_equal("s3creT", "s3cret"));
    CHECK_FALSE(constant_time_equal("", "s3cret"));
    CHECK_FALSE(constant_time_equal("s3cret", ""));
    // A guess that repeats the secret past its end is still wrong.
    CHECK_FALSE(constant_time_equal("s3crets3cret", "s3cret"));
    CHECK_FALSE(constant_time_equal("ss", "s"));
    CHECK(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0b", 3)));
    CHECK_FALSE(constant_time_equal(std::string_view("a\0b", 3), std::string_view("a\0c", 3)));
}

TEST_CASE("constant_time_equal: a difference anywhere, in any bit, is found") {
    const std::string secret(64, 'k');
    for (std::size_t at = 0; at < secret.size(); ++at)
        for (int bit = 0; bit < 8; ++bit) {
            std::string guess = secret;
            guess[at] = static_cast<char>(guess[at] ^ (1 << bit));
            if (parley::constant_time_equal(guess, secret))
                FAIL("a flipped bit " << bit << " at byte " << at << " went unnoticed");
        }
    CHECK(parley::constant_time_equal(secret, secret));
}
