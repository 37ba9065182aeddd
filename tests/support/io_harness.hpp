// Test support for cases that drive Asio themselves: run an io_context with a
// deadline, spawn a coroutine whose exception fails the case, and a connected
// loopback TCP pair.
#ifndef PARLEY_TESTS_SUPPORT_IO_HARNESS_HPP
#define PARLEY_TESTS_SUPPORT_IO_HARNESS_HPP

#include <doctest/doctest.h>

#include <asio/awaitable.hpp>
#include <asio/co_spawn.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <exception>
#include <functional>
#include <string>

namespace parley::test {

/// Runs `io` until it runs out of work; a deadline makes a bug a failure
/// rather than a hung test run.
inline void run(asio::io_context& io, std::chrono::seconds limit = std::chrono::seconds(20)) {
    io.restart();
    io.run_for(limit);
    CHECK_MESSAGE(io.stopped(), "the io_context still had work after " << limit.count() << " s");
}

/// Runs `f` as a coroutine on `io`; an exception it throws fails the case.
inline void spawn(asio::io_context& io, std::function<asio::awaitable<void>()> f) {
    asio::co_spawn(io, std::move(f), [](std::exception_ptr e) {
        if (!e)
            return;
        try {
            std::rethrow_exception(e);
        } catch (const std::exception& x) {
            const std::string what = std::string("coroutine threw: ") + x.what();
            CHECK_MESSAGE(false, what);
        }
    });
}

/// A connected loopback pair of TCP sockets.
struct socket_pair {
    asio::ip::tcp::socket server;
    asio::ip::tcp::socket client;
    explicit socket_pair(asio::io_context& io) : server(io), client(io) {
        asio::ip::tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
        client.connect(acceptor.local_endpoint());
        acceptor.accept(server);
    }
};

} // namespace parley::test

#endif
