// End to end: the echo_server example, started as a process, driven with
// the blocking client API; bad input must not hurt other clients.
#include <parley/net/socket.hpp>

#include "support/server_process.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using parley::test::server_process;

namespace {

server_process start_echo_server() {
    return server_process(parley::test::example_path("echo_server"),
                          {"--host", "127.0.0.1", "--port", "0"});
}

parley::tcp_socket connect_and_greet(std::uint16_t port) {
    auto client = parley::tcp_socket::connect("127.0.0.1", port, 5s);
    client.set_timeout(5s);
    CHECK(client.recv_frame() == "连上了");
    return client;
}

// Sends raw bytes that are not a valid frame stream.
std::string error_after(std::uint16_t port, std::string_view raw) {
    auto client = connect_and_greet(port);
    client.send(raw);
    std::error_code ec;
    std::string reply = client.recv_frame(ec);
    REQUIRE_FALSE(ec);
    client.recv_frame(ec);
    CHECK(ec == asio::error::eof); // and then the server closes
    return reply;
}

} // namespace

TEST_CASE("echo_server: greets, echoes frames in order, serves clients at once") {
    auto server = start_echo_server();
    auto a = connect_and_greet(server.port());
    auto b = connect_and_greet(server.port());

    a.send_frame("hello");
    b.send_frame("你好, 世界");
    CHECK(a.recv_frame() == "hello");
    CHECK(b.recv_frame() == "你好, 世界");

    // Pipelined: many frames in flight, echoed in order.
    for (int i = 0; i < 200; ++i)
        a.send_frame("message " + std::to_string(i));
    for (int i = 0; i < 200; ++i)
        REQUIRE(a.recv_frame() == "message " + std::to_string(i));

    // The largest frame the default format allows, and an empty one.
    const std::string big(1024 * 1024, 'x');
    a.send_frame(big);
    CHECK(a.recv_frame() == big);
    a.send_frame("");
    CHECK(a.recv_frame().empty());

    // It prints what each client says, as "HOST:PORT: text".
    bool printed = false;
    for (int i = 0; i < 100 && !printed; ++i) {
        printed = server.output().find(": hello\n") != std::string::npos;
        if (!printed)
            std::this_thread::sleep_for(20ms);
    }
    CHECK(printed);
}

TEST_CASE("echo_server: bad input gets a clear error and a closed connection; others unaffected") {
    auto server = start_echo_server();
    auto bystander = connect_and_greet(server.port());

    SUBCASE("a length of 0xFFFFFFFF") {
        CHECK(error_after(server.port(), std::string("\xff\xff\xff\xff", 4)) ==
              "error: frame of 4294967295 bytes exceeds the 1048576-byte limit");
    }
    SUBCASE("garbage: an HTTP request") {
        // "GET " read as a length is 1195725856.
        CHECK(error_after(server.port(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n") ==
              "error: frame of 1195725856 bytes exceeds the 1048576-byte limit");
    }
    SUBCASE("a peer that closes mid-frame") {
        {
            auto client = connect_and_greet(server.port());
            client.send(std::string("\0\0\0\x0a" "abc", 7)); // announces 10 bytes, sends 3
        }
        bool logged = false;
        for (int i = 0; i < 50 && !logged; ++i) {
            logged = server.output().find("connection closed in the middle of a frame") !=
                     std::string::npos;
            if (!logged)
                std::this_thread::sleep_for(20ms);
        }
        CHECK(logged);
    }
    SUBCASE("a peer that resets the connection") {
        auto client = connect_and_greet(server.port());
        client.set_option(asio::socket_base::linger(true, 0));
        client.send(std::string("\0\0\0\x05" "he", 6));
        client.close(); // RST
    }

    // The server is still up and serves the client that did nothing wrong.
    bystander.send_frame("still there?");
    CHECK(bystander.recv_frame() == "still there?");
    auto newcomer = connect_and_greet(server.port());
    newcomer.send_frame("and me");
    CHECK(newcomer.recv_frame() == "and me");
}

TEST_CASE("echo_server: SIGTERM stops it cleanly with connections open") {
    auto server = start_echo_server();
    auto client = connect_and_greet(server.port());
    const auto status = server.terminate(SIGTERM, 5s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    std::error_code ec;
    client.recv_frame(ec);
    CHECK(ec == asio::error::eof);
}
