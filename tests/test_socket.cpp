// Tests for parley/net/socket.hpp: blocking sockets over real loopback TCP.
// Every wait is bounded; the server side of each test runs in a joined
// thread and hands its results back to the test's thread to be checked.
#include <parley/net/socket.hpp>

#include <doctest/doctest.h>

#include <asio/socket_base.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

// How long any wait that should succeed may take before the test fails.
constexpr auto patience = 5s;

using clock_type = std::chrono::steady_clock;

// Wire bytes built by hand, so the tests do not trust the code under test
// to frame for them. A length field announcing `n` bytes:
std::string header_bytes(std::uint32_t n) {
    return std::string{static_cast<char>(n >> 24), static_cast<char>((n >> 16) & 0xFF),
                       static_cast<char>((n >> 8) & 0xFF), static_cast<char>(n & 0xFF)};
}

// A whole frame.
std::string frame_bytes(std::string_view payload) {
    return header_bytes(static_cast<std::uint32_t>(payload.size())) + std::string(payload);
}

// The what() of the exception `f` throws, or "" if it throws none.
template <class F>
std::string what_of(F&& f) {
    try {
        f();
    } catch (const std::system_error& e) {
        return e.what();
    }
    return {};
}

std::string loopback_v4(std::uint16_t port) { return "127.0.0.1:" + std::to_string(port); }

template <class Duration>
long long ms(Duration d) {
    return std::chrono::duration_cast<std::chrono::milliseconds>(d).count();
}

} // namespace

TEST_CASE("socket: listen on port 0, connect, frames both ways") {
    parley::tcp_listener server("127.0.0.1", 0);
    const std::uint16_t port = server.port();
    REQUIRE(port != 0);
    CHECK(server.local_endpoint().port() == port);
    CHECK(server.local_endpoint().address().to_string() == "127.0.0.1");
    CHECK(server.is_open());

    std::string received;
    std::error_code server_ec;
    std::uint16_t server_saw_port = 0;
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        if (server_ec)
            return;
        server_saw_port = con.remote_endpoint().port();
        con.send_frame("连上了", server_ec);
        if (!server_ec)
            received = con.recv_frame(patience, server_ec);
    });

    parley::tcp_socket client = parley::tcp_socket::connect("127.0.0.1", port, patience);
    client.set_timeout(patience);
    CHECK(client.is_open());
    CHECK(client.remote_endpoint().port() == port);
    CHECK(client.recv_frame() == "连上了");
    client.send_frame(std::string("hello, 服务器"));

    asio::ip::tcp::no_delay nodelay;
    client.get_option(nodelay);
    CHECK(nodelay.value()); // on by default
    client.set_nodelay(false);
    client.get_option(nodelay);
    CHECK_FALSE(nodelay.value());

    peer.join();
    CHECK_FALSE(server_ec);
    CHECK(received == "hello, 服务器");
    CHECK(server_saw_port == client.local_endpoint().port());

    client.close();
    CHECK_FALSE(client.is_open());
    client.close(); // closing twice is harmless
    server.close();
    CHECK_FALSE(server.is_open());
    CHECK(server.port() == 0);
}

TEST_CASE("socket: names resolve, and connect tries every address") {
    // "localhost" usually means 127.0.0.1 and ::1; the listener prefers
    // IPv4, the client tries each address until one answers.
    parley::tcp_listener server("localhost", 0);
    const std::uint16_t port = server.port();
    REQUIRE(port != 0);

    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        if (!server_ec)
            con.send_frame("hi", patience, server_ec);
    });
    auto client = parley::tcp_socket::connect("localhost", port, patience);
    CHECK(client.recv_frame(patience) == "hi");
    peer.join();
    CHECK_FALSE(server_ec);

    // Nothing listens any more: the error names what was tried.
    server.close();
    client.close();
    std::error_code ec;
    parley::tcp_socket::connect("localhost", port, patience, ec);
    CHECK(ec == asio::error::connection_refused);
    const std::string what =
        what_of([&] { parley::tcp_socket::connect("localhost", port, patience); });
    MESSAGE(what);
    CHECK(what.find("could not connect to localhost:" + std::to_string(port)) != std::string::npos);
    CHECK(what.find("tried ") != std::string::npos);
    CHECK(what.find(":" + std::to_string(port) + " (") != std::string::npos);

    // A name that does not resolve.
    parley::tcp_socket::connect("no-such-host.invalid", 80, patience, ec);
    CHECK(ec);
    CHECK(what_of([] { parley::tcp_socket::connect("no-such-host.invalid", 80, 1s); })
              .find("no-such-host.invalid:80") != std::string::npos);
}

TEST_CASE("socket: IPv6 loopback") {
    parley::tcp_listener server;
    std::error_code ec;
    server.listen("::1", 0, ec);
    if (ec) {
        MESSAGE("no IPv6 loopback here (" << ec.message() << "): skipped");
        return;
    }
    const std::uint16_t port = server.port();
    CHECK(server.local_endpoint().address().is_v6());

    std::string received;
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        if (!server_ec)
            received = con.recv_frame(patience, server_ec);
    });
    auto client = parley::tcp_socket::connect("::1", port, patience);
    CHECK(client.remote_endpoint().address().is_v6());
    client.send_frame("over IPv6");
    peer.join();
    CHECK_FALSE(server_ec);
    CHECK(received == "over IPv6");

    // An IPv6 peer is written in brackets in messages.
    server.close();
    const std::string what = what_of([&] { parley::tcp_socket::connect("::1", port, patience); });
    CHECK(what.find("[::1]:" + std::to_string(port)) != std::string::npos);
}

TEST_CASE("socket: listening on all interfaces") {
    parley::tcp_listener server("", 0);
    const std::uint16_t port = server.port();
    REQUIRE(port != 0);
    // Reachable over IPv4 whether the socket is dual-stack "::" or "0.0.0.0".
    std::error_code server_ec;
    std::thread peer([&] { server.accept(patience, server_ec); });
    std::error_code ec;
    auto client = parley::tcp_socket::connect("127.0.0.1", port, patience, ec);
    peer.join();
    CHECK_FALSE(ec);
    CHECK_FALSE(server_ec);

    parley::tcp_listener any4("0.0.0.0", 0);
    CHECK(any4.local_endpoint().address().is_v4());
}

TEST_CASE("socket: a receive times out within its bound and loses nothing") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        if (server_ec)
            return;
        // Stay silent until the client says "go", then send half a frame,
        // and the rest once the client has timed out on it.
        const std::string go = con.recv_frame(patience, server_ec);
        if (server_ec || go != "go")
            return;
        const std::string frame = frame_bytes("late but whole");
        con.send(frame.substr(0, 7), patience, server_ec);
        if (!server_ec)
            con.recv_frame(patience, server_ec); // "rest"
        if (!server_ec)
            con.send(frame.substr(7), patience, server_ec);
        if (!server_ec)
            con.recv_frame(patience, server_ec); // until the client closes
        if (server_ec == asio::error::eof)
            server_ec.clear();
    });

    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);

    // Per-call timeout.
    std::error_code ec;
    auto start = clock_type::now();
    const std::string nothing = client.recv_frame(200ms, ec);
    auto waited = clock_type::now() - start;
    CHECK(ec == parley::error::timed_out);
    CHECK(ec == std::errc::timed_out);
    CHECK(ec.message() == "operation timed out");
    CHECK(nothing.empty());
    CHECK(ms(waited) >= 195);
    CHECK(ms(waited) < 2000);

    // The socket's own timeout applies to every later call.
    client.set_timeout(100ms);
    CHECK(client.timeout() == 100ms);
    start = clock_type::now();
    client.recv(16, ec);
    waited = clock_type::now() - start;
    CHECK(ec == parley::error::timed_out);
    CHECK(ms(waited) >= 95);
    CHECK(ms(waited) < 2000);

    // Zero: do not wait at all.
    start = clock_type::now();
    client.recv_frame(0ms, ec);
    CHECK(ec == parley::error::timed_out);
    CHECK(ms(clock_type::now() - start) < 1000);

    // The throwing overload says what timed out, with whom, and after how long.
    const std::string what = what_of([&] { client.recv_frame(); });
    MESSAGE(what);
    CHECK(what.find("receiving a frame from " + loopback_v4(server.port())) != std::string::npos);
    CHECK(what.find("timeout 100 ms") != std::string::npos);
    CHECK(what.find("operation timed out") != std::string::npos);

    // A timeout in the middle of a frame keeps the part received.
    client.set_timeout(patience);
    client.send_frame("go");
    const auto half_deadline = clock_type::now() + patience;
    while (client.buffered_bytes() < 7 && clock_type::now() < half_deadline) {
        client.recv_frame(50ms, ec);
        CHECK(ec == parley::error::timed_out);
    }
    CHECK(client.buffered_bytes() == 7);
    client.send_frame("rest");
    CHECK(client.recv_frame() == "late but whole");
    CHECK(client.buffered_bytes() == 0);

    client.close();
    peer.join();
    CHECK_FALSE(server_ec);
}

TEST_CASE("socket: accept times out") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code ec;
    const auto start = clock_type::now();
    auto nobody = server.accept(150ms, ec);
    const auto waited = clock_type::now() - start;
    CHECK(ec == parley::error::timed_out);
    CHECK_FALSE(nobody.is_open());
    CHECK(ms(waited) >= 145);
    CHECK(ms(waited) < 2000);

    const std::string what = what_of([&] { server.accept(50ms); });
    CHECK(what == "could not accept a connection on " + loopback_v4(server.port()) +
                      " within 50 ms: operation timed out");

    // Still listening after a timeout.
    std::error_code server_ec;
    std::thread peer([&] { server.accept(patience, server_ec); });
    auto client = parley::tcp_socket::connect(server.local_endpoint(), patience);
    peer.join();
    CHECK_FALSE(server_ec);

    server.close();
    server.accept(50ms, ec);
    CHECK(ec == asio::error::bad_descriptor);
}

TEST_CASE("socket: connect to a closed port is refused") {
    std::uint16_t port = 0;
    {
        parley::tcp_listener server("127.0.0.1", 0);
        port = server.port();
    }
    std::error_code ec;
    const auto start = clock_type::now();
    auto client = parley::tcp_socket::connect("127.0.0.1", port, patience, ec);
    CHECK(ec == asio::error::connection_refused);
    CHECK_FALSE(client.is_open());
    CHECK(ms(clock_type::now() - start) < 2000);

    const asio::ip::tcp::endpoint endpoint(asio::ip::make_address("127.0.0.1"), port);
    parley::tcp_socket::connect(endpoint, patience, ec);
    CHECK(ec == asio::error::connection_refused);

    const std::string what =
        what_of([&] { parley::tcp_socket::connect("127.0.0.1", port, patience); });
    MESSAGE(what);
    CHECK(what.find("could not connect to " + loopback_v4(port)) == 0);
    CHECK(what.find("tried " + loopback_v4(port) + " (") != std::string::npos);
    CHECK(what.find("refused") != std::string::npos);
}

TEST_CASE("socket: connect times out when the listener's queue is full") {
    // A listener that never accepts and has a backlog of 1: once its queue
    // is full, Linux drops further SYNs and a connect hangs: our timeout
    // must end it.
    parley::tcp_listener server("127.0.0.1", 0, 1);
    std::vector<parley::tcp_socket> queued;
    std::error_code ec;
    std::chrono::milliseconds timed_out_after{};
    for (int i = 0; i < 16; ++i) {
        const auto start = clock_type::now();
        auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), 200ms, ec);
        if (ec) {
            timed_out_after =
                std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
            break;
        }
        queued.push_back(std::move(client));
    }
    if (!ec) {
        MESSAGE("this system never dropped a SYN for a full backlog: skipped");
        return;
    }
    CHECK(ec == parley::error::timed_out);
    CHECK(timed_out_after.count() >= 190);
    CHECK(timed_out_after.count() < 2000);

    const std::string what =
        what_of([&] { parley::tcp_socket::connect("127.0.0.1", server.port(), 100ms); });
    MESSAGE(what);
    CHECK(what.find("within 100 ms") != std::string::npos);
    CHECK(what.find("operation timed out") != std::string::npos);
}

TEST_CASE("socket: peer reset is a clear error") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        if (server_ec)
            return;
        // Wait for the client to be ready, then abort: SO_LINGER 0 makes
        // close() send a reset instead of a FIN.
        con.recv_frame(patience, server_ec);
        con.set_option(asio::socket_base::linger(true, 0));
        con.close();
    });
    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    client.send_frame("ready");
    std::error_code ec;
    client.recv_frame(patience, ec);
    peer.join();
    CHECK_FALSE(server_ec);
    MESSAGE(ec.message());
    CHECK((ec == asio::error::connection_reset || ec == asio::error::eof));

    // Sending on a reset connection fails too, without SIGPIPE.
    std::error_code send_ec;
    for (int i = 0; i < 10 && !send_ec; ++i)
        client.send_frame("anyone?", patience, send_ec);
    CHECK(send_ec);
    const std::string what = what_of([&] { client.send_frame("anyone?"); });
    MESSAGE(what);
    CHECK(what.find("sending a frame to " + loopback_v4(server.port())) == 0);
}

TEST_CASE("socket: a frame announcing 4294967295 bytes is rejected at once") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket raw = server.accept(patience, server_ec);
        if (!server_ec)
            raw.send(header_bytes(0xFFFFFFFF) + "just a few bytes", patience, server_ec);
        if (!server_ec)
            raw.recv(1, patience, server_ec); // until the client hangs up
    });
    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    client.set_timeout(patience);
    std::error_code ec;
    client.recv_frame(ec);
    CHECK(ec == parley::error::frame_too_large);
    // Nothing was allocated for what the peer merely claimed.
    CHECK(client.buffered_bytes() < 64 * 1024);

    const std::string what = what_of([&] { client.recv_frame(); });
    MESSAGE(what);
    CHECK(what.find("frame of 4294967295 bytes exceeds the 1048576-byte limit") !=
          std::string::npos);
    CHECK(what.find("from " + loopback_v4(server.port())) != std::string::npos);
    client.close();
    peer.join();
    CHECK_FALSE(server_ec);
}

TEST_CASE("socket: the peer closing mid-frame is truncated_frame, between frames eof") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code server_ec;
    std::thread peer([&] {
        for (int i = 0; i < 2 && !server_ec; ++i) {
            parley::tcp_socket raw = server.accept(patience, server_ec);
            if (server_ec)
                return;
            if (i == 0)
                raw.send(frame_bytes("whole") + header_bytes(10) + "abc", patience, server_ec);
            else
                raw.send(frame_bytes("whole"), patience, server_ec);
            // Closes here.
        }
    });

    auto first = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    first.set_timeout(patience);
    CHECK(first.recv_frame() == "whole");
    std::error_code ec;
    first.recv_frame(ec);
    CHECK(ec == parley::error::truncated_frame);
    CHECK(what_of([&] { first.recv_frame(); }).find("in the middle of a frame") !=
          std::string::npos);

    auto second = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    second.set_timeout(patience);
    CHECK(second.recv_frame() == "whole");
    second.recv_frame(ec);
    CHECK(ec == asio::error::eof);
    const std::string what = what_of([&] { second.recv_frame(); });
    MESSAGE(what);
    CHECK(what.find("the peer closed the connection") != std::string::npos);
    // recv() reports the end of stream as an empty string, not an error.
    CHECK(second.recv(100, ec).empty());
    CHECK_FALSE(ec);

    peer.join();
    CHECK_FALSE(server_ec);
}

TEST_CASE("socket: several frames in one send come out one by one") {
    parley::tcp_listener server("127.0.0.1", 0);
    const std::string wire =
        frame_bytes("one") + frame_bytes("") + frame_bytes("二") + frame_bytes("three") + "tail";
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket raw = server.accept(patience, server_ec);
        if (!server_ec)
            raw.send(wire, patience, server_ec);
        if (!server_ec)
            raw.recv(1, patience, server_ec);
    });
    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    client.set_timeout(patience);
    CHECK(client.recv_frame() == "one");
    // One send of a few bytes on loopback arrives in one piece, so one
    // read took all of it and the rest is already buffered.
    CHECK(client.buffered_bytes() == wire.size() - frame_bytes("one").size());
    // Buffered frames come out even with a zero timeout: no waiting, no I/O.
    CHECK(client.recv_frame(0ms).empty());
    CHECK(client.recv_frame(0ms) == "二");
    CHECK(client.recv_frame(0ms) == "three");
    // Raw reads return the buffered bytes first.
    CHECK(client.recv(2, 0ms) == "ta");
    CHECK(client.recv(100, 0ms) == "il");
    CHECK(client.buffered_bytes() == 0);
    std::error_code ec;
    CHECK(client.recv(0, ec).empty());
    CHECK(ec == parley::error::invalid_argument);
    client.close();
    peer.join();
    CHECK_FALSE(server_ec);
}

TEST_CASE("socket: the throwing overloads throw std::system_error") {
    parley::tcp_socket unconnected;
    CHECK_FALSE(unconnected.is_open());
    CHECK_THROWS_AS(unconnected.recv_frame(), std::system_error);
    CHECK_THROWS_AS(unconnected.send("x"), std::system_error);
    CHECK_THROWS_AS(unconnected.remote_endpoint(), std::system_error);
    std::error_code ec;
    unconnected.send_frame("x", ec);
    CHECK(ec == asio::error::bad_descriptor);

    // Listening where someone already listens (without SO_REUSEPORT).
    parley::tcp_listener first("127.0.0.1", 0);
    const std::string what =
        what_of([&] { parley::tcp_listener second("127.0.0.1", first.port()); });
    MESSAGE(what);
    CHECK(what == "could not listen on " + loopback_v4(first.port()) + ": " +
                      std::error_code(asio::error::address_in_use).message());
    parley::tcp_listener second;
    second.listen("127.0.0.1", first.port(), ec);
    CHECK(ec == asio::error::address_in_use);
    CHECK_THROWS_AS(parley::tcp_listener("no-such-host.invalid", 0), std::system_error);

    parley::tcp_socket socket;
    CHECK_THROWS_AS(socket.set_max_payload(std::uint64_t{1} << 32), std::invalid_argument);
    socket.set_max_payload(std::uint64_t{1} << 32, ec);
    CHECK(ec == parley::error::invalid_argument);
    socket.set_max_payload(0xFFFFFFFF, ec);
    CHECK_FALSE(ec);
    CHECK(socket.max_payload() == 0xFFFFFFFF);
}

TEST_CASE("socket: moving sockets and listeners") {
    parley::tcp_listener original("127.0.0.1", 0);
    const std::uint16_t port = original.port();
    parley::tcp_listener server = std::move(original);
    CHECK_FALSE(original.is_open()); // NOLINT(bugprone-use-after-move): moved-from state is specified
    CHECK(server.port() == port);

    std::vector<std::string> received;
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket first = server.accept(patience, server_ec);
        if (server_ec)
            return;
        parley::tcp_socket con = std::move(first);
        con.send(frame_bytes("a") + frame_bytes("b"), patience, server_ec);
        while (!server_ec)
            received.push_back(con.recv_frame(patience, server_ec));
        received.pop_back(); // the failed read
    });

    auto a = parley::tcp_socket::connect("127.0.0.1", port, patience);
    a.set_timeout(patience);
    CHECK(a.recv_frame() == "a");
    const auto buffered = a.buffered_bytes();

    parley::tcp_socket b(std::move(a));
    CHECK_FALSE(a.is_open()); // NOLINT(bugprone-use-after-move)
    CHECK(b.is_open());
    CHECK(b.buffered_bytes() == buffered); // unread bytes move along
    CHECK(b.timeout() == patience);
    CHECK(b.recv_frame() == "b");
    b.send_frame("from b");

    parley::tcp_socket c;
    c = std::move(b);
    c.send_frame("from c");
    c = parley::tcp_socket(); // closes the connection: the peer sees eof
    CHECK_FALSE(c.is_open());

    peer.join();
    CHECK(server_ec == asio::error::eof);
    CHECK(received == std::vector<std::string>{"from b", "from c"});
}

TEST_CASE("socket: a 1 MiB frame passes, 1 MiB + 1 does not") {
    parley::tcp_listener server("127.0.0.1", 0);
    const std::string max_frame(1024 * 1024, 'x');
    std::string big;
    std::string after;
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        if (server_ec)
            return;
        con.set_timeout(patience);
        big = con.recv_frame(server_ec);
        if (!server_ec)
            after = con.recv_frame(server_ec);
        // Now send one 1 MiB frame back, and announce one byte more.
        if (!server_ec)
            con.send_frame(max_frame, server_ec);
        if (!server_ec)
            con.send(header_bytes(1024 * 1024 + 1) + "x", server_ec);
        if (!server_ec)
            con.recv(1, server_ec);
        if (server_ec == asio::error::eof)
            server_ec.clear();
    });

    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    client.set_timeout(patience);
    client.send_frame(max_frame);

    // One byte over: refused before anything is sent.
    std::error_code ec;
    client.send_frame(std::string(1024 * 1024 + 1, 'y'), ec);
    CHECK(ec == parley::error::frame_too_large);
    const std::string what =
        what_of([&] { client.send_frame(std::string(1024 * 1024 + 1, 'y')); });
    CHECK(what.find("frame of 1048577 bytes exceeds the 1048576-byte limit") != std::string::npos);
    client.send_frame("after"); // the stream is still framed

    CHECK(client.recv_frame() == max_frame);
    client.recv_frame(ec);
    CHECK(ec == parley::error::frame_too_large);
    CHECK(what_of([&] { client.recv_frame(); })
              .find("frame of 1048577 bytes exceeds the 1048576-byte limit") != std::string::npos);
    client.close();

    peer.join();
    CHECK_FALSE(server_ec);
    CHECK(big == max_frame);
    CHECK(after == "after");
}

TEST_CASE("socket: a smaller limit, and an empty frame") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket raw = server.accept(patience, server_ec);
        if (!server_ec)
            raw.send(frame_bytes("") + frame_bytes("0123456789") + frame_bytes("0123456789A"),
                     patience, server_ec);
        if (!server_ec)
            raw.recv(1, patience, server_ec);
    });
    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    client.set_timeout(patience);
    client.set_max_payload(10);
    std::error_code ec;
    CHECK(client.recv_frame(ec).empty());
    CHECK_FALSE(ec); // an empty frame is a message, not the end
    CHECK(client.recv_frame() == "0123456789");
    client.recv_frame(ec);
    CHECK(ec == parley::error::frame_too_large);
    CHECK(what_of([&] { client.recv_frame(); })
              .find("frame of 11 bytes exceeds the 10-byte limit") != std::string::npos);
    client.close();
    peer.join();
    CHECK_FALSE(server_ec);
}

TEST_CASE("socket: a send to a peer that does not read times out") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code server_ec;
    std::atomic<bool> done{false};
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        // Read nothing until the client is done.
        const auto until = clock_type::now() + patience;
        while (!done && clock_type::now() < until)
            std::this_thread::sleep_for(10ms);
    });
    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    client.set_option(asio::socket_base::send_buffer_size(64 * 1024));
    const std::string lots(64 * 1024 * 1024, 'z');
    std::error_code ec;
    const auto start = clock_type::now();
    const std::size_t sent = client.send(lots, 200ms, ec);
    const auto waited = clock_type::now() - start;
    done = true;
    peer.join();
    CHECK_FALSE(server_ec);
    CHECK(ec == parley::error::timed_out);
    CHECK(sent > 0);
    CHECK(sent < lots.size());
    CHECK(ms(waited) >= 195);
    CHECK(ms(waited) < 3000);
}

TEST_CASE("socket: shutdown") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::string received;
    std::error_code server_ec;
    std::thread peer([&] {
        parley::tcp_socket con = server.accept(patience, server_ec);
        if (server_ec)
            return;
        // Reads until the client shuts down its sending side, then answers.
        for (std::string chunk; !(chunk = con.recv(4096, patience, server_ec)).empty();)
            received += chunk;
        if (!server_ec)
            con.send_frame("got " + std::to_string(received.size()) + " bytes", patience,
                           server_ec);
    });
    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    client.send("half-close, then listen");
    client.shutdown(parley::shutdown_type::send);
    CHECK(client.recv_frame(patience) == "got 23 bytes");
    peer.join();
    CHECK_FALSE(server_ec);
    CHECK(received == "half-close, then listen");
}

TEST_CASE("socket: shutdown from another thread wakes a blocked receive") {
    parley::tcp_listener server("127.0.0.1", 0);
    std::error_code server_ec;
    parley::tcp_socket con;
    std::thread accepter([&] { con = server.accept(patience, server_ec); });
    auto client = parley::tcp_socket::connect("127.0.0.1", server.port(), patience);
    accepter.join();
    REQUIRE_FALSE(server_ec);

    std::error_code ec;
    std::chrono::milliseconds waited{};
    std::thread reader([&] {
        const auto start = clock_type::now();
        client.recv_frame(patience, ec);
        waited = std::chrono::duration_cast<std::chrono::milliseconds>(clock_type::now() - start);
    });
    std::this_thread::sleep_for(100ms);
    client.shutdown(parley::shutdown_type::both);
    reader.join();
    CHECK(ec == asio::error::eof);
    CHECK(waited < std::chrono::milliseconds(patience) - 1s);
}

TEST_CASE("socket: byte_view accepts text and bytes") {
    const std::string text = "abc";
    const std::vector<std::byte> bytes{std::byte{1}, std::byte{2}};
    const std::vector<unsigned char> uchars{1, 2, 3, 4};
    CHECK(parley::byte_view("abc").size() == 3); // no terminating NUL
    CHECK(parley::byte_view(text).size() == 3);
    CHECK(parley::byte_view(std::string_view(text)).size() == 3);
    CHECK(parley::byte_view(bytes).size() == 2);
    CHECK(parley::byte_view(std::span<const std::byte>(bytes)).size() == 2);
    CHECK(parley::byte_view(uchars).size() == 4);
    CHECK(parley::byte_view(asio::buffer(text)).size() == 3);
    CHECK(parley::byte_view().empty());
}
