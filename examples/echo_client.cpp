// The seed's first client, done right: connect (retrying while the server
// starts), print the server's greeting (连上了, "connected"), then send each
// line read from standard input as a frame and print what comes back, until
// the input ends.
//
//   echo_client [--host 127.0.0.1] [--port 10000]
//
// One thread reads the keyboard (or a pipe, or a file) and the network at
// once: frames are printed as they arrive, and if the server goes away
// the client says so at once instead of waiting for the next line.
#include "common/options.hpp"
#include "common/stdin_reader.hpp"

#include <parley/client/async_client.hpp>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>
#include <asio/steady_timer.hpp>
#include <asio/use_awaitable.hpp>

#include <unistd.h>

#include <iostream>

using namespace std::chrono_literals;
constexpr auto with_error = asio::experimental::as_tuple(asio::use_awaitable);

asio::awaitable<int> run(std::string host, std::uint16_t port) {
    auto ex = co_await asio::this_coro::executor;
    parley::client_options options;
    options.connect.max_attempts = 5;
    parley::async_client client(ex, options);
    parley::examples::stdin_reader input(ex);

    // Frames are printed as they arrive: the greeting, then the echoes.
    client.on_frame([](parley::frame_view payload) {
        std::cout << parley::examples::printable(parley::as_string_view(payload)) << std::endl;
    });
    unsigned attempts = 0;
    bool lost = false;
    client.on_event([&](const parley::client_event& e) {
        using kind = parley::client_event::kind;
        if (e.what == kind::connect_progress) {
            attempts = e.progress.attempt;
            if (e.progress.what == parley::connect_event::kind::attempt_failed && !e.progress.giving_up)
                std::cerr << e.describe() << std::endl; // "attempt 1 failed: ...; retrying in 95 ms"
        } else if (e.what == kind::disconnected) {
            std::cerr << e.describe() << std::endl; // "connection to ... closed by the peer"
            lost = true;
            input.cancel(); // stop waiting for a line nobody will receive
        }
    });

    auto [ec, server] = co_await client.async_connect(host, port, with_error);
    if (ec) {
        std::cerr << parley::describe_connect_failure(host, port, attempts, ec) << std::endl;
        co_return 1;
    }
    if (::isatty(STDIN_FILENO))
        std::cerr << "connected to " << parley::examples::to_string(server)
                  << "; type lines to send, Ctrl-D to finish" << std::endl;

    asio::steady_timer pause(ex);
    while (auto line = co_await input.read_line()) {
        // A long file can be read faster than the network takes it: let the
        // queue drain rather than fill it up.
        while (client.queued_bytes() > options.queue.max_bytes / 2 && client.is_connected()) {
            pause.expires_after(5ms);
            co_await pause.async_wait(with_error);
        }
        std::error_code send_error;
        if (!client.send(*line, send_error)) {
            if (!lost)
                std::cerr << "not sent: " << send_error.message() << std::endl;
            break;
        }
    }
    if (lost)
        co_return 1;

    // End of input. Closing sends what is still queued, then waits for the
    // server to finish: the last echoes are printed before it closes.
    auto [close_error] = co_await client.async_close(with_error);
    if (close_error) {
        std::cerr << "closing: " << close_error.message() << std::endl;
        co_return 1;
    }
    co_return 0;
}

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 10000;
    parley::examples::command_line cli(
        "echo_client", "Prints the server's greeting, sends each line of standard input as a "
                       "frame and prints the echoes.");
    cli.option("--host", host, "server address or name").option("--port", port, "server port");
    if (auto status = cli.parse(argc, argv))
        return *status;

    asio::io_context ioc(1);
    int status = 0;
    // Ctrl-C ends the program through the destructors, which put standard
    // input back in blocking mode for the shell.
    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    signals.async_wait([&](std::error_code ec, int) {
        if (!ec) {
            status = 130;
            ioc.stop();
        }
    });
    asio::co_spawn(ioc, run(host, port), [&](std::exception_ptr error, int result) {
        status = result;
        if (error) {
            try {
                std::rethrow_exception(error);
            } catch (const std::exception& e) {
                std::cerr << "echo_client: " << e.what() << std::endl;
                status = 1;
            }
        }
        signals.cancel();
    });
    ioc.run();
    return status;
}
