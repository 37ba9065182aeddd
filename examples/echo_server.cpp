// The seed's first program, done right: an asynchronous echo server.
//
// Each client is greeted with "连上了" ("connected") as a frame; every frame
// it sends is printed and echoed back. Many clients are served at once. A
// client that sends a malformed frame is told why in a last frame and
// disconnected; the others carry on. SIGINT or SIGTERM stops the server
// cleanly.
//
//   echo_server [--host 127.0.0.1] [--port 10000] [--quiet]
#include "common/options.hpp"

#include <parley/net/accept_backoff.hpp>
#include <parley/stream/framed_stream.hpp>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <iostream>
#include <optional>
#include <set>
#include <vector>

using asio::ip::tcp;
constexpr auto with_error = asio::experimental::as_tuple(asio::use_awaitable);

// Open connections, so that stopping the server can close them.
std::set<tcp::socket*> connections;
bool quiet = false; // --quiet: do not print every message (for benchmarks)
asio::steady_timer* stop_grace = nullptr; // set while stopping

asio::awaitable<void> serve(tcp::socket socket) {
    const std::string peer = parley::examples::to_string(socket.remote_endpoint());
    socket.set_option(tcp::no_delay(true));
    parley::framed_stream<tcp::socket> stream(std::move(socket));
    // Each request is answered at once, and the next one awaited: keeping
    // the read buffer while waiting saves a system call per request, for
    // a buffer per connection (as Asio's own echo example holds one of
    // 1 KiB). 4 KiB holds many pipelined requests; a larger frame grows it.
    stream.keep_read_buffer(true);
    stream.read_chunk_size(4096);
    connections.insert(&stream.next_layer());
    std::cout << peer << " connected" << std::endl;

    auto [ec, ignored] = co_await stream.async_write_frame(parley::as_payload("连上了"), with_error);
    std::vector<asio::const_buffer> replies;
    while (!ec) {
        auto [read_error, payload] = co_await stream.async_read_frame(with_error);
        if ((ec = read_error))
            break;
        // Take every frame that arrived with this one and answer them all in
        // one gathered write. The payloads are views into the stream's
        // buffer, valid until the next async_read_frame: echoed without a copy.
        replies.clear();
        std::error_code bad_frame; // one later in the batch: echo those before it first
        for (std::optional<parley::frame_view> frame = payload; frame;
             frame = stream.read_buffered_frame(bad_frame)) {
            if (!quiet)
                std::cout << peer << ": "
                          << parley::examples::printable(parley::as_string_view(*frame)) << '\n';
            replies.emplace_back(frame->data(), frame->size());
        }
        if (!quiet)
            std::cout.flush();
        // Answered at once when the socket takes it all (as it does unless
        // the client stops reading): no completion to wait for.
        if (!stream.try_write_frames(replies, ec) && !ec)
            std::tie(ec, ignored) = co_await stream.async_write_pending(with_error);
        if (!ec)
            ec = bad_frame;
    }

    connections.erase(&stream.next_layer());
    if (stop_grace && connections.empty())
        stop_grace->cancel(); // the last one is done: no need to wait
    if (ec == asio::error::eof || ec == asio::error::operation_aborted ||
        ec == asio::error::bad_descriptor) {
        std::cout << peer << " left" << std::endl;
        co_return;
    }
    // A protocol error: say why before closing, so the client is not left
    // guessing. Best effort; the peer may be gone already.
    const std::string reason = stream.describe(ec);
    std::cout << peer << " disconnected: " << reason << std::endl;
    if (ec.category() == parley::error_category())
        co_await stream.async_write_frame(parley::as_payload("error: " + reason), with_error);
}

asio::awaitable<void> accept_loop(tcp::acceptor& acceptor) {
    asio::steady_timer pause(acceptor.get_executor());
    parley::accept_backoff backoff;
    for (;;) {
        auto [ec, socket] = co_await acceptor.async_accept(with_error);
        if (ec == asio::error::operation_aborted || !acceptor.is_open())
            co_return;
        if (ec) {
            // Out of descriptors, or a connection reset before it was
            // accepted: keep serving, but pause (100 ms, growing to 1 s
            // while it lasts) so a lasting error cannot spin.
            const auto wait = backoff.failed(ec);
            std::cerr << "accept: " << ec.message() << "; retrying in " << wait.count() << " ms"
                      << std::endl;
            pause.expires_after(wait);
            co_await pause.async_wait(with_error);
            continue;
        }
        backoff.succeeded();
        asio::co_spawn(acceptor.get_executor(), serve(std::move(socket)), asio::detached);
    }
}

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 10000;
    parley::examples::command_line cli("echo_server", "Greets each client and echoes its frames.");
    cli.option("--host", host, "address to listen on")
        .option("--port", port, "port, 0 for any free one")
        .flag("--quiet", quiet, "do not print each message");
    if (auto status = cli.parse(argc, argv))
        return *status;

    asio::io_context ioc(1);
    tcp::acceptor acceptor(ioc);
    if (!parley::examples::open_acceptor(acceptor, host, port))
        return 1;

    // Stopping closes the listener and ends each connection's input: a
    // session echoes what it has read, reads end of stream and finishes.
    // Connections still busy after a second (a client that does not read
    // its echoes) are closed. run() returns once every session is done.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::steady_timer grace(ioc);
    signals.async_wait([&](std::error_code ec, int) {
        if (ec)
            return;
        acceptor.close();
        std::error_code ignored;
        for (auto* socket : connections)
            socket->shutdown(tcp::socket::shutdown_receive, ignored);
        if (connections.empty())
            return;
        stop_grace = &grace;
        grace.expires_after(std::chrono::seconds(1));
        grace.async_wait([](std::error_code) {
            std::error_code ignored;
            for (auto* socket : connections)
                socket->close(ignored);
        });
    });

    asio::co_spawn(ioc, accept_loop(acceptor), asio::detached);
    ioc.run();
    std::cout << "stopped" << std::endl;
    return 0;
}
