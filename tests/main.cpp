// The one main() of parley_tests; every other test file only has TEST_CASEs.
//
// Beyond doctest's own options it takes --skip-exit-code: then a run in
// which a test case called parley::test::skip() and none failed exits with
// 77, and a run whose filters select no test case at all fails (a group
// that lost its tests by a rename must not pass). ctest and meson run
// parley_tests in groups this way (tests/CMakeLists.txt, tests/meson.build).
#define DOCTEST_CONFIG_IMPLEMENT
#include "support/skip.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <cstring>
#include <vector>

namespace {

unsigned selected_cases = 0;

// Records the test case that runs, for skip()'s message, and how many ran.
struct skip_listener : doctest::IReporter {
    explicit skip_listener(const doctest::ContextOptions&) {}
    void report_query(const doctest::QueryData&) override {}
    void test_run_start() override {}
    void test_run_end(const doctest::TestRunStats& stats) override {
        selected_cases = stats.numTestCasesPassingFilters;
    }
    void test_case_start(const doctest::TestCaseData& data) override {
        parley::test::current_case = data.m_name;
    }
    void test_case_reenter(const doctest::TestCaseData&) override {}
    void test_case_end(const doctest::CurrentTestCaseStats&) override {
        parley::test::current_case = nullptr;
    }
    void test_case_exception(const doctest::TestCaseException&) override {}
    void subcase_start(const doctest::SubcaseSignature&) override {}
    void subcase_end() override {}
    void log_assert(const doctest::AssertData&) override {}
    void log_message(const doctest::MessageData&) override {}
    void test_case_skipped(const doctest::TestCaseData&) override {}
};

} // namespace

REGISTER_LISTENER("parley_skip", 1, skip_listener);

int main(int argc, char** argv) {
    bool skip_exit_code = false;
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (i > 0 && std::strcmp(argv[i], "--skip-exit-code") == 0)
            skip_exit_code = true;
        else
            args.push_back(argv[i]);
    }
    doctest::Context context(static_cast<int>(args.size()), args.data());
    const int result = context.run();
    if (context.shouldExit() || !skip_exit_code || result != 0)
        return result;
    if (selected_cases == 0) {
        std::fprintf(stderr, "parley_tests: the filters select no test case\n");
        return 1;
    }
    if (parley::test::skipped_cases > 0) {
        std::fprintf(stderr, "parley_tests: %u of %u test cases skipped: exit code 77\n",
                     parley::test::skipped_cases.load(), selected_cases);
        return 77;
    }
    return 0;
}
