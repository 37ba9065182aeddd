// examples/chat_server as a program, and tests/chat_client.py (a client
// written from docs/PROTOCOL.md alone) against the server.
#include <parley/chat/server.hpp>

#include "support/server_process.hpp"
#include "support/skip.hpp"
#include "test_chat_support.hpp"

#include <doctest/doctest.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include <sys/wait.h>

using namespace parley::test::chat;

namespace {

bool have_python3() { return std::system("python3 -c pass >/dev/null 2>&1") == 0; }

// Runs a shell command; returns its exit status and its output.
std::pair<int, std::string> run(const std::string& command) {
    char path[] = "/tmp/parley-chat-test-XXXXXX";
    const int fd = ::mkstemp(path);
    REQUIRE(fd >= 0);
    ::close(fd);
    const int status = std::system((command + " >" + path + " 2>&1").c_str());
    std::ifstream in(path);
    std::stringstream out;
    out << in.rdbuf();
    std::remove(path);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, out.str()};
}

} // namespace

TEST_SUITE("chat example") {

TEST_CASE("chat_server: framed and nc users chat; SIGTERM and SIGINT stop it cleanly") {
    for (int signal : {SIGTERM, SIGINT}) {
        INFO("signal " << signal);
        parley::test::server_process server(parley::test::example_path("chat_server"),
                                            {"--port", "0", "--line-port", "0", "--web-port", "0"});
        const auto line_port = server.wait_for_line("line mode on 127.0.0.1:", patience);
        REQUIRE(line_port.has_value());

        client alice(server.port());
        alice.login("alice");
        connection bob(*line_port);
        CHECK(bob.recv_line() == "连接成功!,请输入昵称");
        bob.send_raw("bob\n");
        CHECK(alice.expect<pc::join_event>().nick == "bob");
        bob.send_raw("hi alice\n");
        auto m = alice.expect<pc::message_event>();
        CHECK(m.from == "bob");
        CHECK(m.text == "hi alice");

        REQUIRE(server.terminate(signal, std::chrono::seconds(5)) == 0);
        CHECK(alice.wait_for<pc::notice_event>([](const auto&) { return true; }).code ==
              "shutdown");
        CHECK(alice.conn().wait_closed());
        const std::string out = server.output();
        CHECK(out.find("join: alice") != std::string::npos);
        CHECK(out.find("join: bob") != std::string::npos);
        CHECK(out.find("shutdown: closing 2 connection(s)") != std::string::npos);
        CHECK(out.find("stopped") != std::string::npos);
    }
}

TEST_CASE("chat_server: a port in use is a clear error") {
    parley::test::server_process first(parley::test::example_path("chat_server"),
                                       {"--port", "0", "--no-line-mode", "--no-web"});
    const auto [status, out] = run(parley::test::example_path("chat_server") + " --port " +
                                   std::to_string(first.port()) + " --line-port 0 --web-port 0");
    CHECK(status == 1);
    CHECK(out.find("cannot listen on 127.0.0.1:" + std::to_string(first.port())) !=
          std::string::npos);
    const auto [usage_status, usage] =
        run(parley::test::example_path("chat_server") + " --port 70000 --no-web");
    CHECK(usage_status == 2);
    CHECK(usage.find("invalid value '70000' for --port") != std::string::npos);
}

TEST_CASE("chat_client.py, written from PROTOCOL.md, chats with a C++ client") {
    if (!have_python3()) {
        parley::test::skip("python3 not found");
        return;
    }
    server_fixture f;
    client alice(f.port());
    alice.login("alice");

    const std::string command = "python3 " PARLEY_SOURCE_DIR "/tests/chat_client.py --port " +
                                std::to_string(f.port()) +
                                " --nick py --say 'hello from Python' --say '/not a command'"
                                " --expect 'alice:hello from C++' --quit --timeout 10";
    std::pair<int, std::string> result;
    std::thread python([&] { result = run(command); });

    // Generous: the interpreter has to start first.
    CHECK(alice.wait_for<pc::join_event>([](const auto& j) { return j.nick == "py"; }, 20s)
              .room == "lobby");
    alice.say("hello from C++");
    alice.wait_for<pc::message_event>([](const auto& m) { return m.from == "py"; });
    const auto escaped =
        alice.wait_for<pc::message_event>([](const auto& m) { return m.from == "py"; });
    CHECK(escaped.text == "/not a command");
    auto l = alice.wait_for<pc::leave_event>([](const auto& e) { return e.nick == "py"; });
    CHECK(l.reason == "quit");
    python.join();
    INFO("chat_client.py said:\n" << result.second);
    CHECK(result.first == 0);
    CHECK(result.second.find("[lobby] alice: hello from C++") != std::string::npos);
    CHECK(result.second.find("* goodbye, py") != std::string::npos);
    const auto from_py = alice.seen_of<pc::message_event>();
    CHECK(std::count_if(from_py.begin(), from_py.end(),
                        [](const auto& m) { return m.from == "py"; }) == 2);
    CHECK(alice.silent());
}

} // TEST_SUITE
