// examples/chat_client end to end, on a pseudo-terminal (tmux) and through
// pipes: tests/chat_client_tty.sh does the driving; this runs it as part of
// the test suite and reports its output.
#include "support/skip.hpp"

#include <doctest/doctest.h>

#include <cstdio>
#include <string>

#include <sys/wait.h>

TEST_CASE("chat_client on a terminal (tmux) and through pipes") {
    const std::string command = std::string("bash '") + PARLEY_SOURCE_DIR +
                                "/tests/chat_client_tty.sh' '" + PARLEY_EXAMPLES_DIR + "' 2>&1";
    FILE* pipe = ::popen(command.c_str(), "r");
    REQUIRE(pipe != nullptr);
    std::string output;
    char chunk[4096];
    while (const std::size_t n = std::fread(chunk, 1, sizeof chunk, pipe))
        output.append(chunk, n);
    const int status = ::pclose(pipe);
    REQUIRE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    if (code == 77) { // a tool is missing: say so, do not fail
        parley::test::skip(output);
        return;
    }
    INFO(output);
    CHECK(code == 0);
}
