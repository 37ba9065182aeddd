// End to end: the broadcast_server example, started as a process.
#include <parley/net/socket.hpp>

#include "support/server_process.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using parley::test::server_process;

namespace {

std::vector<parley::tcp_socket> connect_clients(std::uint16_t port, int n) {
    std::vector<parley::tcp_socket> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(parley::tcp_socket::connect("127.0.0.1", port, 5s));
        clients.back().set_timeout(5s);
    }
    // The server joins a client to the room after accepting it; a frame from
    // each client, seen by the first, proves every one of them is in.
    for (int i = 0; i < n; ++i)
        clients[i].send_frame("ready " + std::to_string(i));
    std::set<std::string> seen;
    while (seen.size() < static_cast<std::size_t>(n))
        seen.insert(clients[0].recv_frame());
    // All are in now, but who saw which readiness frame depends on when
    // each joined: a barrier frame sent now reaches everyone, after them.
    clients[0].send_frame("barrier");
    for (auto& c : clients)
        while (c.recv_frame() != "barrier") {
        }
    return clients;
}

// The same with --no-echo: client 0 sees the others' frames only.
std::vector<parley::tcp_socket> connect_clients_no_echo(std::uint16_t port, int n) {
    std::vector<parley::tcp_socket> clients;
    for (int i = 0; i < n; ++i) {
        clients.push_back(parley::tcp_socket::connect("127.0.0.1", port, 5s));
        clients.back().set_timeout(5s);
    }
    for (int i = 1; i < n; ++i)
        clients[i].send_frame("ready " + std::to_string(i));
    for (int i = 1; i < n; ++i)
        clients[0].recv_frame();
    // Then a barrier from client 0, which every other client sees last.
    clients[0].send_frame("barrier");
    for (int i = 1; i < n; ++i)
        while (clients[i].recv_frame() != "barrier") {
        }
    return clients;
}

} // namespace

TEST_CASE("broadcast_server: every client receives every frame, in each sender's order") {
    server_process server(parley::test::example_path("broadcast_server"), {"--port", "0"});
    constexpr int clients_count = 4, per_client = 50;
    auto clients = connect_clients(server.port(), clients_count);

    for (int k = 0; k < per_client; ++k)
        for (int i = 0; i < clients_count; ++i)
            clients[i].send_frame(std::to_string(i) + ":" + std::to_string(k));

    for (int r = 0; r < clients_count; ++r) {
        std::vector<int> next(clients_count, 0);
        for (int m = 0; m < clients_count * per_client; ++m) {
            const std::string frame = clients[r].recv_frame();
            const auto colon = frame.find(':');
            REQUIRE(colon != std::string::npos);
            const int sender = std::stoi(frame.substr(0, colon));
            const int seq = std::stoi(frame.substr(colon + 1));
            REQUIRE(seq == next[sender]); // in order, nothing lost or doubled
            ++next[sender];
        }
        for (int i = 0; i < clients_count; ++i)
            CHECK(next[i] == per_client);
    }
}

TEST_CASE("broadcast_server: --no-echo leaves the sender out") {
    server_process server(parley::test::example_path("broadcast_server"),
                          {"--port", "0", "--no-echo"});
    auto a = parley::tcp_socket::connect("127.0.0.1", server.port(), 5s);
    auto b = parley::tcp_socket::connect("127.0.0.1", server.port(), 5s);
    a.set_timeout(5s);
    b.set_timeout(5s);
    // Wait until both are joined: b's frame reaching a proves b is in, and
    // a is in as it was accepted first.
    b.send_frame("b here");
    CHECK(a.recv_frame() == "b here");
    a.send_frame("from a");
    CHECK(b.recv_frame() == "from a");
    std::error_code ec;
    a.recv_frame(200ms, ec);
    CHECK(ec == parley::error::timed_out); // a did not get its own frame back
}

TEST_CASE("broadcast_server: a client that never reads is disconnected; the others lose nothing") {
    server_process server(parley::test::example_path("broadcast_server"),
                          {"--port", "0", "--no-echo", "--max-queue-bytes", "262144"});
    auto clients = connect_clients_no_echo(server.port(), 3);
    auto& publisher = clients[0];
    auto& reader = clients[1];
    auto& stalled = clients[2]; // never reads again
    (void)stalled;

    // Enough to fill the stalled client's socket buffers and its queue many
    // times over, but sent at the pace the healthy reader takes it.
    const std::string payload(4096, 'p');
    constexpr int total = 8000; // 32 MiB
    int received = 0;
    for (int i = 0; i < total; ++i) {
        publisher.send_frame(payload);
        std::error_code ec;
        const std::string got = reader.recv_frame(ec);
        REQUIRE_FALSE(ec);
        received += got == payload;
    }
    CHECK(received == total);
    CHECK(server.wait_for_line("session ", 5s)); // "session N: slow consumer, disconnected"
    CHECK(server.output().find("slow consumer, disconnected") != std::string::npos);

    const auto status = server.terminate(SIGTERM, 5s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(server.output().find("1 slow consumers disconnected") != std::string::npos);
}

TEST_CASE("broadcast_server: --policy backpressure pauses the sender for a stalled client, which is "
          "cut at the deadline; nothing is lost") {
    server_process server(parley::test::example_path("broadcast_server"),
                          {"--port", "0", "--no-echo", "--policy", "backpressure",
                           "--max-queue-bytes", "1048576", "--write-timeout", "500"});
    auto clients = connect_clients_no_echo(server.port(), 3);
    auto& publisher = clients[0];
    auto& reader = clients[1];
    auto& stalled = clients[2]; // never reads again
    (void)stalled;

    // 32 MiB as fast as the server takes it: the sender waits (TCP) while
    // the stalled client holds it, then goes on once that one is cut.
    const std::string payload(4096, 'p');
    constexpr int total = 8000;
    std::error_code sent;
    std::thread sender([&] {
        for (int i = 0; i < total && !sent; ++i)
            publisher.send_frame(payload, 20s, sent);
    });
    int received = 0;
    for (int i = 0; i < total; ++i) {
        std::error_code ec;
        const std::string got = reader.recv_frame(20s, ec);
        if (ec)
            break;
        received += got == payload;
    }
    sender.join();
    CHECK_FALSE(sent);
    CHECK(received == total);
    CHECK(server.wait_for_line("session ", 5s)); // "session N: peer accepted no data within ..."
    CHECK(server.output().find("within the write timeout") != std::string::npos);

    const auto status = server.terminate(SIGTERM, 5s);
    REQUIRE(status.has_value());
    CHECK(*status == 0);
    CHECK(server.output().find(" 0 senders paused") == std::string::npos);
    CHECK(server.output().find(" senders paused") != std::string::npos);
}

TEST_CASE("broadcast_server: an unknown --policy is refused") {
    // The refusal takes the place of the "listening on" line.
    server_process server(parley::test::example_path("broadcast_server"),
                          {"--port", "0", "--policy", "backpressur"},
                          "broadcast_server: --policy must be", 5s);
    CHECK(server.output().find("disconnect, drop-oldest or backpressure") != std::string::npos);
    // It exits by itself (under ASan, after the leak check: not at once).
    const auto status = server.wait_exit(30s);
    REQUIRE(status.has_value());
    CHECK(*status == 2);
}
