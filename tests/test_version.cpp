#include <parley/version.hpp>

#include <doctest/doctest.h>

#include <string>

// PARLEY_PROJECT_VERSION is the version the build system declares
// (project() in CMake, project() in meson); the header must say the same.
TEST_CASE("version macros agree with the build system's project version") {
    CHECK(std::string(PARLEY_VERSION) == PARLEY_PROJECT_VERSION);

    const std::string from_parts = std::to_string(PARLEY_VERSION_MAJOR) + "." +
                                   std::to_string(PARLEY_VERSION_MINOR) + "." +
                                   std::to_string(PARLEY_VERSION_PATCH);
    CHECK(from_parts == PARLEY_VERSION);

    CHECK(PARLEY_VERSION_NUMBER ==
          PARLEY_VERSION_MAJOR * 10000 + PARLEY_VERSION_MINOR * 100 + PARLEY_VERSION_PATCH);
}
