// Tests for include/parley/detail/hex.hpp. Included first: the header must
// stand on its own.
#include <parley/detail/hex.hpp>

#include <doctest/doctest.h>

#include <array>
#include <string>

TEST_CASE("detail::to_hex: two lowercase digits per byte, in order") {
    const std::array<unsigned char, 5> bytes{0x00, 0x0f, 0xa0, 0x7e, 0xff};
    CHECK(parley::detail::to_hex(bytes) == "000fa07eff");
    CHECK(parley::detail::to_hex({}) == std::string());
}
