// parley: library version.
//
// The build systems (CMakeLists.txt, meson.build) carry the same number;
// tests/test_version.cpp fails if they drift apart, so bump all three
// together.
#ifndef PARLEY_VERSION_HPP
#define PARLEY_VERSION_HPP

#define PARLEY_VERSION_MAJOR 0
#define PARLEY_VERSION_MINOR 1
#define PARLEY_VERSION_PATCH 0

/// The version as "MAJOR.MINOR.PATCH".
#define PARLEY_VERSION "0.1.0"

/// The version as one integer for preprocessor comparisons:
/// MAJOR * 10000 + MINOR * 100 + PATCH (0.1.0 is 100).
#define PARLEY_VERSION_NUMBER                                                  \
    (PARLEY_VERSION_MAJOR * 10000 + PARLEY_VERSION_MINOR * 100 + PARLEY_VERSION_PATCH)

#endif
