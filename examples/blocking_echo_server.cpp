// The seed's first server, in blocking style like the Python original:
// each client is greeted with "连上了" ("connected") as a frame, one message
// from it is printed, and the connection is closed. Clients are served one
// at a time; echo_server is the asynchronous version that serves many.
// SIGINT or SIGTERM stops it once the client being served is done (exit
// status 0).
//
//   blocking_echo_server [--host 127.0.0.1] [--port 10000]
#include "common/options.hpp"

#include <parley/net/accept_backoff.hpp>
#include <parley/error.hpp>
#include <parley/net/socket.hpp>
#include <parley/codec/utf8.hpp>

#include <chrono>
#include <csignal>
#include <iostream>
#include <thread>

using namespace std::chrono_literals;

namespace {
volatile std::sig_atomic_t stop_requested = 0;
extern "C" void request_stop(int) { stop_requested = 1; }
} // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    std::uint16_t port = 10000;
    parley::examples::command_line cli("blocking_echo_server",
                                       "Greets each client, prints one message from it, hangs up.");
    cli.option("--host", host, "address to listen on").option("--port", port, "port, 0 for any free one");
    if (auto status = cli.parse(argc, argv))
        return *status;

    parley::tcp_listener server;
    try {
        server = parley::tcp_listener(host, port); // SO_REUSEADDR is on
    } catch (const std::system_error& e) {
        std::cerr << e.what() << '\n'; // "could not listen on 127.0.0.1:10000: Address already in use"
        return 1;
    }
    std::cout << "listening on " << parley::examples::to_string(server.local_endpoint())
              << std::endl;

    // Blocking calls carry on after a signal, so the flag is looked at
    // between accepts, which wait at most 200 ms each.
    std::signal(SIGINT, request_stop);
    std::signal(SIGTERM, request_stop);
    parley::accept_backoff backoff;
    while (!stop_requested) {
        std::error_code ec;
        parley::tcp_socket con = server.accept(200ms, ec);
        if (ec == parley::error::timed_out)
            continue;
        if (ec) {
            // Out of descriptors, say: keep serving, but do not spin
            // (pauses grow from 100 ms to 1 s while the error lasts).
            const auto pause = backoff.failed(ec);
            std::cerr << "accept: " << ec.message() << std::endl;
            std::this_thread::sleep_for(pause);
            continue;
        }
        backoff.succeeded();
        try {
            // One client at a time, so one that never speaks must not keep
            // the others waiting for ever.
            con.set_timeout(60s);
            con.send_frame("连上了");
            const std::string message = con.recv_frame();
            if (parley::is_valid_utf8(message))
                std::cout << message << std::endl;
            else
                std::cout << "(" << message.size() << " bytes that are not UTF-8 text)" << std::endl;
        } catch (const std::system_error& e) {
            std::cerr << e.what() << std::endl; // that client failed; serve the next
        }
    } // `con` is closed here, at the end of each turn of the loop
    std::cout << "stopped" << std::endl;
    return 0;
}
