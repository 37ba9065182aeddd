// Tests for blocking_client.hpp over loopback.
#include <parley/client/blocking_client.hpp>

#include <doctest/doctest.h>

#include <parley/net/socket.hpp>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("blocking_client: send, receive, and a close that lets the peer finish") {
    parley::tcp_listener listener("127.0.0.1", 0);
    std::vector<std::string> server_got;
    std::error_code server_end;
    std::thread server([&] {
        auto peer = listener.accept(10s);
        peer.set_timeout(10s);
        peer.send_frame("welcome");
        for (;;) {
            std::string frame = peer.recv_frame(server_end);
            if (server_end)
                break;
            server_got.push_back(frame);
            peer.send_frame("echo " + frame);
        }
        // End of stream from the client: last words, then close.
        peer.send_frame("goodbye");
    });

    parley::blocking_client client("127.0.0.1", listener.port());
    CHECK(client.is_open());
    CHECK(client.receive(5s) == "welcome");
    client.send("one");
    CHECK(client.receive(5s) == "echo one");
    client.send("two");
    const auto rest = client.close(5s);
    server.join();
    CHECK_FALSE(client.is_open());
    CHECK(server_end == asio::error::eof);
    CHECK(server_got == std::vector<std::string>{"one", "two"});
    CHECK(rest == std::vector<std::string>{"echo two", "goodbye"});
}

TEST_CASE("blocking_client: a close the peer does not answer times out") {
    parley::tcp_listener listener("127.0.0.1", 0);
    parley::blocking_client client("127.0.0.1", listener.port());
    auto peer = listener.accept(5s); // accepted, never closed
    std::error_code ec;
    const auto start = std::chrono::steady_clock::now();
    client.close(100ms, ec);
    CHECK(ec == parley::error::timed_out);
    CHECK(std::chrono::steady_clock::now() - start >= 100ms);
    CHECK_FALSE(client.is_open());
}

TEST_CASE("blocking_client: connecting retries and then says why it failed") {
    std::uint16_t port = 0;
    {
        parley::tcp_listener probe("127.0.0.1", 0);
        port = probe.port();
    }
    parley::connect_options options;
    options.max_attempts = 3;
    options.initial_backoff = 5ms;
    std::vector<parley::connect_event> events;
    options.on_state = [&](const parley::connect_event& e) { events.push_back(e); };

    std::error_code ec;
    auto client = parley::blocking_client::connect("127.0.0.1", port, options, ec);
    CHECK(ec == asio::error::connection_refused);
    CHECK_FALSE(client.is_open());
    REQUIRE(!events.empty());
    CHECK(events.back().giving_up);
    CHECK(events.back().attempt == 3);

    try {
        parley::blocking_client failing("127.0.0.1", port, options);
        FAIL("expected an exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == asio::error::connection_refused);
        CHECK(std::string(e.what()) == "could not connect to 127.0.0.1:" + std::to_string(port) +
                                           " (3 attempts): Connection refused");
    }
}

TEST_CASE("blocking_client: a server that starts late is reached by retrying") {
    std::uint16_t port = 0;
    {
        parley::tcp_listener probe("127.0.0.1", 0);
        port = probe.port();
    }
    parley::connect_options options;
    options.max_attempts = 0;
    options.initial_backoff = 20ms;
    options.max_backoff = 50ms;
    std::thread server([port] {
        std::this_thread::sleep_for(200ms);
        parley::tcp_listener listener("127.0.0.1", port);
        auto peer = listener.accept(10s);
        peer.send_frame("late but here");
        std::error_code ec;
        peer.recv_frame(5s, ec); // until the client's end of stream
    });
    parley::blocking_client client("127.0.0.1", port, options);
    CHECK(client.receive(5s) == "late but here");
    CHECK(client.close(5s).empty());
    server.join();
}
