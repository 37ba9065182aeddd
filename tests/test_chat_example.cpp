// examples/chat_server as a program, and tests/chat_client.py (a client
// written from docs/PROTOCOL.md alone) against the server.
#include <parley/chat/server.hpp>

#include <parley/websocket/stream.hpp>

#include "support/server_process.hpp"
#include "support/skip.hpp"
#include "test_chat_support.hpp"

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <thread>
#include <vector>

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

// An io_context running on a thread of its own (a WebSocket client's),
// joined however the test ends.
struct io_thread {
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
    std::thread runner{[this] { io.run(); }};
    ~io_thread() {
        work.reset();
        io.stop();
        runner.join();
    }
};

// Reads WebSocket messages until the connection closes; the error that
// ended it (websocket::error::closed after a close frame).
std::error_code read_to_close(parley::websocket::stream<asio::ip::tcp::socket>& ws,
                              std::vector<std::string>& seen) {
    for (int i = 0; i < 100; ++i) {
        std::string text;
        try {
            ws.async_read(text, asio::use_future).get();
        } catch (const std::system_error& e) {
            return e.code();
        }
        seen.push_back(std::move(text));
    }
    return {};
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

TEST_CASE("chat_server: a WebSocket client chats with framed and nc users on the web port") {
    parley::test::server_process server(parley::test::example_path("chat_server"),
                                        {"--port", "0", "--line-port", "0", "--web-port", "0"});
    const auto line_port = server.wait_for_line("line mode on 127.0.0.1:", patience);
    const auto web_port = server.wait_for_line("web port on 127.0.0.1:", patience);
    REQUIRE(line_port.has_value());
    REQUIRE(web_port.has_value());

    client alice(server.port());
    alice.login("alice");
    connection bob(*line_port);
    CHECK(bob.recv_line() == "连接成功!,请输入昵称");
    bob.send_raw("bob\n");
    alice.wait_for<pc::join_event>([](const auto& j) { return j.nick == "bob"; });

    io_thread io_runner;
    auto& io = io_runner.io;
    parley::websocket::stream<asio::ip::tcp::socket> carol(io);
    carol.next_layer().connect({asio::ip::make_address("127.0.0.1"), *web_port});
    carol.async_handshake("127.0.0.1:" + std::to_string(*web_port), "/ws", asio::use_future).get();
    // Reads messages until one holds `needle`.
    const auto read_until = [&](std::string_view needle) {
        for (int i = 0; i < 50; ++i) {
            std::string text;
            carol.async_read(text, asio::use_future).get();
            if (text.find(needle) != std::string::npos)
                return text;
        }
        FAIL("no WebSocket message holds " << needle);
        return std::string();
    };
    const auto say = [&](std::string_view text) {
        carol.async_write(parley::websocket::message_type::text, asio::buffer(text), asio::use_future).get();
    };
    CHECK(read_until("\"type\":\"welcome\"").find("连接成功") != std::string::npos);
    say("carol");
    read_until("\"type\":\"nick_accepted\"");
    alice.wait_for<pc::join_event>([](const auto& j) { return j.nick == "carol"; });

    say("hi from a browser's socket");
    auto m = alice.wait_for<pc::message_event>([](const auto& e) { return e.from == "carol"; });
    CHECK(m.text == "hi from a browser's socket");
    for (;;) {
        auto line = bob.recv_line();
        REQUIRE(line.has_value());
        if (*line == "[lobby] carol: hi from a browser's socket")
            break;
    }
    alice.say("hello carol");
    CHECK(read_until("hello carol").find("\"from\":\"alice\"") != std::string::npos);
    bob.send_raw("hello from nc\n");
    CHECK(read_until("hello from nc").find("\"from\":\"bob\"") != std::string::npos);

    // QUIT: the goodbye notice, then the server's close frame (1000).
    say("QUIT");
    read_until("\"code\":\"goodbye\"");
    std::string after;
    std::error_code ec;
    try {
        carol.async_read(after, asio::use_future).get();
    } catch (const std::system_error& e) {
        ec = e.code();
    }
    CHECK(ec == parley::websocket::error::closed);
    CHECK(carol.peer_close().code == parley::websocket::close_code::normal);
    auto l = alice.wait_for<pc::leave_event>([](const auto& e) { return e.nick == "carol"; });
    CHECK(l.reason == "quit");
}

TEST_CASE("chat_server: a binary or oversized WebSocket message ends the connection with a reason") {
    parley::test::server_process server(parley::test::example_path("chat_server"),
                                        {"--port", "0", "--no-line-mode", "--web-port", "0"});
    const auto web_port = server.wait_for_line("web port on 127.0.0.1:", patience);
    REQUIRE(web_port.has_value());
    io_thread io_runner;
    const auto open = [&] {
        auto ws = std::make_unique<parley::websocket::stream<asio::ip::tcp::socket>>(io_runner.io);
        ws->next_layer().connect({asio::ip::make_address("127.0.0.1"), *web_port});
        ws->async_handshake("127.0.0.1:" + std::to_string(*web_port), "/ws", asio::use_future).get();
        return ws;
    };
    {
        // Chat inputs are text: a binary message is refused with 1003.
        auto ws = open();
        const std::string bytes("\x01\x02", 2);
        ws->async_write(parley::websocket::message_type::binary, asio::buffer(bytes), asio::use_future).get();
        std::vector<std::string> seen;
        CHECK(read_to_close(*ws, seen) == parley::websocket::error::closed);
        CHECK(ws->peer_close().code == parley::websocket::close_code::unsupported_data);
    }
    {
        // Over max_frame_bytes (65536): the frame_too_large error event,
        // then a close frame.
        auto ws = open();
        const std::string big(70000, 'x');
        ws->async_write(parley::websocket::message_type::text, asio::buffer(big), asio::use_future).get();
        std::vector<std::string> seen;
        CHECK(read_to_close(*ws, seen) == parley::websocket::error::closed);
        CHECK(std::any_of(seen.begin(), seen.end(), [](const std::string& m) {
            return m.find("\"code\":\"frame_too_large\"") != std::string::npos;
        }));
        CHECK(ws->peer_close().code == parley::websocket::close_code::normal);
    }
}

#if PARLEY_HAVE_ZLIB
TEST_CASE("websocket deflate: chat_server --web-deflate: compressed and plain WebSocket clients chat with "
          "a framed user") {
    parley::test::server_process server(parley::test::example_path("chat_server"),
                                        {"--port", "0", "--no-line-mode", "--web-port", "0", "--web-deflate"});
    const auto web_port = server.wait_for_line("web port on 127.0.0.1:", patience);
    REQUIRE(web_port.has_value());
    client alice(server.port());
    alice.login("alice");

    io_thread io_runner;
    using ws_stream = parley::websocket::stream<asio::ip::tcp::socket>;
    const auto open = [&](bool deflate) {
        auto ws = std::make_unique<ws_stream>(io_runner.io);
        ws->next_layer().connect({asio::ip::make_address("127.0.0.1"), *web_port});
        parley::websocket::client_options hello;
        hello.host = "127.0.0.1:" + std::to_string(*web_port);
        hello.target = "/ws";
        hello.deflate.enabled = deflate;
        ws->async_handshake(hello, asio::use_future).get();
        return ws;
    };
    const auto read_until = [](ws_stream& ws, std::string_view needle) {
        for (int i = 0; i < 50; ++i) {
            std::string text;
            ws.async_read(text, asio::use_future).get();
            if (text.find(needle) != std::string::npos)
                return text;
        }
        FAIL("no WebSocket message holds " << needle);
        return std::string();
    };
    const auto say = [](ws_stream& ws, std::string_view text) {
        ws.async_write(parley::websocket::message_type::text, asio::buffer(text), asio::use_future).get();
    };
    auto carol = open(true), dave = open(true), erin = open(false);
    REQUIRE(carol->deflate().has_value());
    CHECK(carol->deflate()->server_no_context_takeover);
    CHECK(carol->deflate()->client_no_context_takeover);
    CHECK_FALSE(erin->deflate().has_value());
    std::string nick = "carol";
    for (ws_stream* ws : {carol.get(), dave.get(), erin.get()}) {
        CHECK(read_until(*ws, "\"type\":\"welcome\"").find("连接成功") != std::string::npos);
        say(*ws, nick);
        read_until(*ws, "\"type\":\"nick_accepted\"");
        nick = nick == "carol" ? "dave" : "erin";
    }
    alice.wait_for<pc::join_event>([](const auto& j) { return j.nick == "erin"; });
    // One broadcast, compressed once for carol and dave, plain for erin.
    const std::string long_text = "a compressible line, " + std::string(2000, 'z');
    alice.say(long_text);
    for (ws_stream* ws : {carol.get(), dave.get(), erin.get()})
        CHECK(read_until(*ws, "a compressible line").find(long_text) != std::string::npos);
    // Compressed inputs are inflated.
    say(*carol, "hi, compressed " + std::string(500, 'y'));
    auto m = alice.wait_for<pc::message_event>([](const auto& e) { return e.from == "carol"; });
    CHECK(m.text == "hi, compressed " + std::string(500, 'y'));
    // A small message inflating past max_frame_bytes (64 KiB): refused
    // with the frame_too_large error event, then a close.
    say(*dave, std::string(4u << 20, ' '));
    std::vector<std::string> seen;
    CHECK(read_to_close(*dave, seen) == parley::websocket::error::closed);
    CHECK(std::any_of(seen.begin(), seen.end(),
                      [](const std::string& s) { return s.find("frame_too_large") != std::string::npos; }));
    // Data that does not inflate: close 1007. (A frame written raw: RSV1,
    // text, masked with a zero key.)
    auto frank = open(true);
    read_until(*frank, "\"type\":\"welcome\"");
    const std::string bad("\xc1\x85\x00\x00\x00\x00\xff\xff\xff\xff\xff", 11);
    asio::write(frank->next_layer(), asio::buffer(bad));
    seen.clear();
    CHECK(read_to_close(*frank, seen) == parley::websocket::error::closed);
    CHECK(frank->peer_close().code == parley::websocket::close_code::invalid_payload);
    say(*carol, "QUIT");
    read_until(*carol, "\"code\":\"goodbye\"");
}
#endif

TEST_CASE("chat page in a browser: two pages, a framed client and an nc user chat") {
    if (std::system("node --version >/dev/null 2>&1") != 0) {
        parley::test::skip("node not found (Debian: apt-get install nodejs)");
        return;
    }
    if (!std::filesystem::exists(PARLEY_SOURCE_DIR "/tests/web/node_modules/puppeteer-core/package.json")) {
        parley::test::skip("tests/web/node_modules is missing (run `npm ci` in tests/web)");
        return;
    }
    // With zlib, the pages talk compressed (permessage-deflate, which
    // Chromium offers by default), and the script checks it was negotiated.
    std::vector<std::string> server_args{"--port", "0", "--line-port", "0", "--web-port", "0"};
    std::string deflate_arg;
#if PARLEY_HAVE_ZLIB
    server_args.push_back("--web-deflate");
    deflate_arg = " --deflate 1";
#endif
    parley::test::server_process server(parley::test::example_path("chat_server"), server_args);
    const auto line_port = server.wait_for_line("line mode on 127.0.0.1:", patience);
    const auto web_port = server.wait_for_line("web port on 127.0.0.1:", patience);
    REQUIRE(line_port.has_value());
    REQUIRE(web_port.has_value());
    const std::string screenshot = "/tmp/parley-chat-page-" + std::to_string(::getpid()) + ".png";
    // Not a structured binding: INFO captures the output (clang 14 cannot
    // capture a binding).
    const auto ran =
        run("cd " PARLEY_SOURCE_DIR "/tests/web && timeout 150 node chat_page_test.mjs --web " +
            std::to_string(*web_port) + " --framed " + std::to_string(server.port()) + " --line " +
            std::to_string(*line_port) + " --screenshot " + screenshot + deflate_arg);
    const int status = ran.first;
    const std::string& out = ran.second;
    INFO("chat_page_test.mjs said:\n" << out);
    if (status == 77) {
        parley::test::skip("no Chromium (Debian: apt-get install chromium, or set PARLEY_CHROMIUM)");
        return;
    }
    CHECK(status == 0);
    if (!deflate_arg.empty())
        CHECK(out.find("ok: permessage-deflate for alice") != std::string::npos);
    CHECK(std::filesystem::file_size(screenshot) > 8000);
    std::filesystem::remove(screenshot);
}

} // TEST_SUITE
