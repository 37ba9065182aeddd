#include <parley/version.hpp>

#include <doctest/doctest.h>

#include <string>

// PARLEY_PROJECT_VERSION is the version the build system declares
// (project() in CMake, project() in meson), passed on the compiler's
// command line; every macro of the header must say the same.
TEST_CASE("version macros agree with the build system's project version") {
    const std::string project = PARLEY_PROJECT_VERSION;
    CHECK(std::string(PARLEY_VERSION) == project);

    // The parts, read from the build system's string, not from the header.
    const auto first_dot = project.find('.');
    const auto second_dot = project.find('.', first_dot + 1);
    REQUIRE(first_dot != std::string::npos);
    REQUIRE(second_dot != std::string::npos);
    const int major = std::stoi(project.substr(0, first_dot));
    const int minor = std::stoi(project.substr(first_dot + 1, second_dot - first_dot - 1));
    const int patch = std::stoi(project.substr(second_dot + 1));
    CHECK(PARLEY_VERSION_MAJOR == major);
    CHECK(PARLEY_VERSION_MINOR == minor);
    CHECK(PARLEY_VERSION_PATCH == patch);
    CHECK(PARLEY_VERSION_NUMBER == major * 10000 + minor * 100 + patch);
}

// The number is for #if: it must be usable there, and order versions.
#if PARLEY_VERSION_NUMBER < 100
#error "PARLEY_VERSION_NUMBER is not a preprocessor integer of at least 0.1.0"
#endif
