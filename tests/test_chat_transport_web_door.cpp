// Tests for include/parley/chat/transport/web_door.hpp over loopback TCP:
// the page is served and the connection ends cleanly, an upgrade hands
// over the connection with the bytes read past the head, a silent client
// is cut at the deadline, an oversized head gets 431. Included first: the
// header must stand on its own.
#include <parley/chat/transport/web_door.hpp>

#include <doctest/doctest.h>

#include <asio/connect.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;
namespace transport = parley::chat::transport;

struct door_result {
    std::optional<std::string> upgraded_rest; // set when handed over
    std::vector<int> refusals;
};

// Serves one connection through a web_door while `client` runs on another
// thread; returns what the door did and what the client saw.
template <class Client>
door_result serve_one(Client client, std::chrono::milliseconds deadline = 5s) {
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
    door_result result;
    std::optional<tcp::socket> upgraded;
    acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
        REQUIRE_FALSE(ec);
        std::make_shared<transport::web_door<tcp::socket>>(
            std::move(socket), transport::web_options{}, parley::http::head_limits{}, deadline,
            [&](tcp::socket&& s, std::string rest, bool) {
                result.upgraded_rest = std::move(rest);
                upgraded.emplace(std::move(s)); // closed when the test ends
            },
            [&](int status, std::error_code) { result.refusals.push_back(status); })
            ->start();
    });
    std::thread peer([&, port = acceptor.local_endpoint().port()] { client(port); });
    io.run_for(15s);
    peer.join();
    return result;
}

tcp::socket connect_to(asio::io_context& io, unsigned short port) {
    tcp::socket s(io);
    s.connect({asio::ip::make_address("127.0.0.1"), port});
    return s;
}

// Everything until the server closes its side.
std::string read_all(tcp::socket& s) {
    std::string out;
    std::error_code ec;
    asio::read(s, asio::dynamic_buffer(out), ec);
    CHECK(ec == asio::error::eof);
    return out;
}

} // namespace

TEST_CASE("web door: GET / is answered with the page, then the server ends the connection") {
    std::string answer;
    auto r = serve_one([&](unsigned short port) {
        asio::io_context io;
        auto s = connect_to(io, port);
        asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")));
        answer = read_all(s);
    });
    CHECK(answer.starts_with("HTTP/1.1 200 OK\r\n"));
    CHECK(answer.ends_with(parley::chat::web::chat_page));
    CHECK_FALSE(r.upgraded_rest);
    CHECK(r.refusals.empty());
}

TEST_CASE("web door: an upgrade hands over the connection with the bytes after the head") {
    // A masked text frame "hi" sent in the same write as the request.
    const std::string frame("\x81\x82\x01\x02\x03\x04\x69\x6b", 8);
    std::string answer;
    auto r = serve_one([&](unsigned short port) {
        asio::io_context io;
        auto s = connect_to(io, port);
        asio::write(s, asio::buffer("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    "Sec-WebSocket-Version: 13\r\n\r\n" +
                                    frame));
        asio::read_until(s, asio::dynamic_buffer(answer), "\r\n\r\n");
    });
    CHECK(answer.starts_with("HTTP/1.1 101 "));
    REQUIRE(r.upgraded_rest);
    CHECK(*r.upgraded_rest == frame);
}

TEST_CASE("web door: an upgrade whose head takes several reads keeps the bytes after it") {
    // A browser-sized head (over 2 KiB, several of the door's reads), then a
    // masked text frame "hi" in the same write.
    const std::string frame("\x81\x82\x01\x02\x03\x04\x69\x6b", 8);
    const std::string agent(2100, 'a');
    std::string answer;
    auto r = serve_one([&](unsigned short port) {
        asio::io_context io;
        auto s = connect_to(io, port);
        asio::write(s, asio::buffer("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + agent +
                                    "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    "Sec-WebSocket-Version: 13\r\n\r\n" +
                                    frame));
        asio::read_until(s, asio::dynamic_buffer(answer), "\r\n\r\n");
    });
    CHECK(answer.starts_with("HTTP/1.1 101 "));
    REQUIRE(r.upgraded_rest);
    CHECK(*r.upgraded_rest == frame);
    CHECK(r.refusals.empty());
}

TEST_CASE("web door: a client that sends nothing is cut at the deadline") {
    std::string answer;
    const auto start = std::chrono::steady_clock::now();
    auto r = serve_one(
        [&](unsigned short port) {
            asio::io_context io;
            auto s = connect_to(io, port);
            asio::write(s, asio::buffer(std::string("GET / HTTP/1.1\r\n"))); // never finished
            std::error_code ec;
            asio::read(s, asio::dynamic_buffer(answer), ec);
            CHECK((ec == asio::error::eof || ec == asio::error::connection_reset));
        },
        300ms);
    CHECK(answer.empty());
    CHECK(std::chrono::steady_clock::now() - start >= 300ms);
    CHECK(r.refusals == std::vector<int>{408});
}

TEST_CASE("web door: a head over the limit gets 431 and the connection ends") {
    std::string answer;
    auto r = serve_one([&](unsigned short port) {
        asio::io_context io;
        auto s = connect_to(io, port);
        const std::string big = "GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(20000, 'a') + "\r\n\r\n";
        std::error_code ec;
        asio::write(s, asio::buffer(big), ec); // may fail once the server closed
        std::string out;
        asio::read(s, asio::dynamic_buffer(out), ec);
        answer = out;
    });
    CHECK(answer.starts_with("HTTP/1.1 431 "));
    CHECK(r.refusals == std::vector<int>{431});
}
