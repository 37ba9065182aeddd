// The README's code, compiled and run, so the front page stays true.
#include <parley/parley.hpp>


#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <sstream>
#include <thread>

namespace readme {

// "An echo server in a coroutine"
asio::awaitable<void> serve(asio::ip::tcp::socket socket) {
    parley::framed_stream<asio::ip::tcp::socket> stream(std::move(socket));
    co_await stream.async_write_frame(parley::as_payload("连上了"), asio::use_awaitable);
    for (;;) {
        parley::frame_view payload = co_await stream.async_read_frame(asio::use_awaitable);
        co_await stream.async_write_frame(asio::buffer(payload.data(), payload.size()),
                                          asio::use_awaitable);
    }
}

// "The same as a blocking client"
std::string blocking_client(std::uint16_t port) {
    std::ostringstream out;
    auto client = parley::tcp_socket::connect("127.0.0.1", port, std::chrono::seconds(5));
    out << client.recv_frame() << '\n'; // 连上了
    client.send_frame("hello");
    out << client.recv_frame() << '\n'; // hello
    return out.str();
}

// "A broadcast hub"
void join_hub(parley::hub& hub, asio::ip::tcp::socket socket) {
    auto s = std::make_shared<parley::session<asio::ip::tcp::socket>>(std::move(socket));
    hub.join("all", s);
    s->read_frames([&](auto& from, parley::frame_view payload) {
        (void)from;
        std::error_code ec;
        hub.publish("all", parley::make_frame_message(payload, ec));
    });
}

// "A pure relay can forward the frames of each read"
void relay_hub(parley::hub& hub, asio::ip::tcp::socket socket) {
    auto s = std::make_shared<parley::session<asio::ip::tcp::socket>>(std::move(socket));
    hub.join("all", s);
    s->read_frame_batches([&](auto& from, parley::frame_batch frames) {
        (void)from;
        hub.publish("all", parley::make_raw_message(frames.wire(), frames.size()));
    });
}

} // namespace readme

TEST_CASE("readme: the coroutine echo server and the blocking client work together") {
    asio::io_context ioc(1);
    asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    acceptor.async_accept([&](std::error_code ec, asio::ip::tcp::socket socket) {
        REQUIRE_FALSE(ec);
        asio::co_spawn(ioc, readme::serve(std::move(socket)), asio::detached);
    });
    std::thread io([&] { ioc.run(); });
    const std::string transcript = readme::blocking_client(acceptor.local_endpoint().port());
    CHECK(transcript == "连上了\nhello\n");
    asio::post(ioc, [&] { ioc.stop(); });
    io.join();
}

TEST_CASE("readme: the broadcast hub snippets relay frames") {
    asio::io_context ioc(1);
    parley::hub hub;
    asio::ip::tcp::acceptor acceptor(ioc, {asio::ip::make_address("127.0.0.1"), 0});
    auto client = parley::tcp_socket::connect("127.0.0.1", acceptor.local_endpoint().port(),
                                              std::chrono::seconds(5));
    client.set_timeout(std::chrono::seconds(5));
    bool relay = false;
    SUBCASE("one message per frame") {}
    SUBCASE("one message per read") { relay = true; }
    if (relay)
        readme::relay_hub(hub, acceptor.accept());
    else
        readme::join_hub(hub, acceptor.accept());
    std::thread io([&] { ioc.run(); });
    client.send_frame("to everyone");
    client.send_frame("and again");
    CHECK(client.recv_frame() == "to everyone");
    CHECK(client.recv_frame() == "and again");
    client.close();
    io.join(); // the session ends when the client leaves, and run() returns
    CHECK(hub.counters().members == 0);
}
