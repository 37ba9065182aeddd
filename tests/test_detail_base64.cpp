// Tests for include/parley/detail/base64.hpp: the RFC 4648 section 10
// vectors both ways, and strict decoding. Included first: the header must
// stand on its own.
#include <parley/detail/base64.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

TEST_CASE("base64: the RFC 4648 vectors") {
    namespace b64 = parley::detail::base64;
    const std::pair<std::string_view, std::string_view> vectors[] = {
        {"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},      {"foo", "Zm9v"},
        {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="}, {"foobar", "Zm9vYmFy"},
    };
    for (const auto& [plain, encoded] : vectors) {
        CHECK(b64::encode(plain) == encoded);
        CHECK(b64::decode(encoded) == std::string(plain));
    }
}

TEST_CASE("base64: every byte value round-trips") {
    namespace b64 = parley::detail::base64;
    std::string all;
    for (int i = 0; i < 256; ++i)
        all += static_cast<char>(i);
    for (std::size_t n = 0; n <= all.size(); n += 17) {
        const std::string part = all.substr(all.size() - n);
        CHECK(b64::decode(b64::encode(part)) == part);
    }
}

TEST_CASE("base64: strict decoding refuses what is not canonical") {
    namespace b64 = parley::detail::base64;
    CHECK_FALSE(b64::decode("Zg="));        // length not a multiple of 4
    CHECK_FALSE(b64::decode("Zg"));         // padding left out
    CHECK_FALSE(b64::decode("Zh=="));       // non-zero bits under the padding
    CHECK_FALSE(b64::decode("Zm9="));       // likewise, one '='
    CHECK_FALSE(b64::decode("Zg==Zg=="));   // padding in the middle
    CHECK_FALSE(b64::decode("Z===") );      // too much padding
    CHECK_FALSE(b64::decode("Zm 9v"));      // whitespace
    CHECK_FALSE(b64::decode("Zm9v\n"));
    CHECK_FALSE(b64::decode("Zm-_"));       // the URL-safe alphabet is another encoding
    CHECK_FALSE(b64::decode("Z=g="));
    CHECK(b64::decode("Zm8=") == std::string("fo"));
}
