// A test case that cannot run here, because something it needs is missing
// (a program such as redis-server, or OpenSSL at build time), calls
// parley::test::skip(why) and returns. tests/main.cpp counts these: given
// --skip-exit-code, as ctest and meson give it, parley_tests exits with 77
// when a case was skipped and none failed, so the test (one of the groups
// in tests/CMakeLists.txt) is reported as skipped, never as passed. A case
// that calls skip() belongs in the group of its prerequisite (its name must
// match the group's filter): in the main group it would make all of it
// "skipped".
#ifndef PARLEY_TESTS_SUPPORT_SKIP_HPP
#define PARLEY_TESTS_SUPPORT_SKIP_HPP

#include <atomic>
#include <cstdio>
#include <string_view>

namespace parley::test {

/// How many test cases called skip() in this run.
inline std::atomic<unsigned> skipped_cases{0};
/// The test case running now (set by tests/main.cpp), for the message.
inline std::atomic<const char*> current_case{nullptr};

/// Says on stderr that the current test case is skipped, and why, and
/// counts it. The caller returns straight after.
inline void skip(std::string_view why) {
    while (!why.empty() && (why.back() == '\n' || why.back() == ' '))
        why.remove_suffix(1);
    ++skipped_cases;
    const char* name = current_case.load();
    std::fprintf(stderr, "SKIPPED: %s: %.*s\n", name ? name : "(unknown test case)",
                 static_cast<int>(why.size()), why.data());
}

} // namespace parley::test

#endif
