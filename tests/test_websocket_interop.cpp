// websocket::stream (include/parley/websocket/stream.hpp) against
// implementations written by others, both ways, on loopback: Python's
// `websockets` (tests/websocket_peer.py; Debian python3-websockets) and
// Node's `ws` (tests/web/ws_peer.mjs; `npm ci` in tests/web). Each peer
// sends and receives text, a 1 MiB binary message, a fragmented message,
// pings, and ends with a close code of its own; once with compression off
// on parley's side (the peers offer permessage-deflate: it is declined),
// once with permessage-deflate negotiated both ways (needs zlib). A case
// whose peer is missing is reported as skipped (its own ctest group:
// websocket_python, websocket_node).
#include <parley/websocket/stream.hpp>

#include "support/server_process.hpp"
#include "support/io_harness.hpp"
#include "support/skip.hpp"

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>

#include <chrono>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <functional>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <system_error>
#include <thread>

// GCC 12 at -O2 inlines asio's awaitable frame allocation (operator new
// through asio::aligned_new) and its operator delete into the coroutine
// lambda below and then reports them as mismatched: a false positive.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace {

using namespace std::chrono_literals;
namespace ws = parley::websocket;
using tcp = asio::ip::tcp;
using asio::awaitable;
using asio::use_awaitable;
using parley::test::spawn;
constexpr auto tuple = asio::experimental::as_tuple(use_awaitable);

// The command that runs a peer script, or nullopt (after saying why the
// case is skipped) when its interpreter or library is missing.
std::optional<std::string> python_peer() {
    // Debian's python3-websockets is for /usr/bin/python3; a python3 earlier
    // on PATH (pyenv, a venv) may lack it.
    for (const char* python : {"python3", "/usr/bin/python3"})
        if (std::system((std::string(python) + " -c 'import websockets' >/dev/null 2>&1").c_str()) == 0)
            return std::string(python) + " " PARLEY_SOURCE_DIR "/tests/websocket_peer.py";
    parley::test::skip("no python3 with the websockets module (Debian: apt-get install python3-websockets)");
    return std::nullopt;
}

std::optional<std::string> node_peer() {
    if (std::system("node --version >/dev/null 2>&1") != 0) {
        parley::test::skip("node not found (Debian: apt-get install nodejs)");
        return std::nullopt;
    }
    if (!std::filesystem::exists(PARLEY_SOURCE_DIR "/tests/web/node_modules/ws/package.json")) {
        parley::test::skip("tests/web/node_modules/ws is missing (run `npm ci` in tests/web)");
        return std::nullopt;
    }
    return std::string("node " PARLEY_SOURCE_DIR "/tests/web/ws_peer.mjs");
}

parley::test::server_process start(const std::string& command, const std::string& ready) {
    return parley::test::server_process("/bin/sh", {"-c", "exec " + command}, ready, 20s);
}

// Whether parley was built with zlib, or else says why the case is skipped.
bool have_zlib() {
#if PARLEY_HAVE_ZLIB
    return true;
#else
    parley::test::skip("parley was built without zlib (Debian: apt-get install zlib1g-dev)");
    return false;
#endif
}

// The peer's client against a parley echo server.
void peer_client(const std::string& peer, std::string_view close_reason, bool deflate = false) {
    asio::io_context io;
    tcp::acceptor acceptor(io, {asio::ip::address_v4::loopback(), 0});
    ws::stream<tcp::socket> server(io);
    int echoed = 0;
    std::error_code end = asio::error::would_block;
    spawn(io, [&]() -> awaitable<void> {
        co_await acceptor.async_accept(server.next_layer(), use_awaitable);
        ws::server_options options;
        options.deflate.enabled = deflate;
        co_await server.async_accept(options, use_awaitable);
        std::string m;
        for (;;) {
            auto [ec, n] = co_await server.async_read(m, tuple);
            if (ec) {
                end = ec;
                break;
            }
            co_await server.async_write(server.got_text() ? ws::message_type::text : ws::message_type::binary,
                                        asio::buffer(m), use_awaitable);
            ++echoed;
        }
    });
    std::thread runner([&] { io.run_for(40s); });
    std::optional<int> status;
    std::string output;
    try {
        auto process = start(peer + " client --port " + std::to_string(acceptor.local_endpoint().port()) +
                                 (deflate ? " --deflate" : ""),
                             "ok: text echo");
        status = process.wait_exit(30s);
        output = process.output();
    } catch (const std::exception& e) {
        output = e.what();
    }
    runner.join();
    INFO("the peer said:\n" << output);
    CHECK(status == 0);
    CHECK(output.find("ok: 1 MiB binary echo") != std::string::npos);
    CHECK(output.find("ok: fragmented message echo") != std::string::npos);
    CHECK(output.find("ok: pong") != std::string::npos);
    CHECK(echoed == 3);
    CHECK(server.deflate().has_value() == deflate);
    if (deflate)
        CHECK(output.find("ok: permessage-deflate") != std::string::npos);
    CHECK(end == ws::error::closed);
    CHECK(static_cast<int>(server.peer_close().code) == 4001);
    CHECK(server.peer_close().reason == close_reason);
}

// Writes `text`, returns the next message read.
awaitable<std::string> say_and_read(ws::stream<tcp::socket>& client, std::string_view text) {
    co_await client.async_write(ws::message_type::text, asio::buffer(text), use_awaitable);
    std::string got;
    co_await client.async_read(got, use_awaitable);
    co_return got;
}

// A parley client against the peer's server.
void peer_server(const std::string& peer, std::string_view close_reason, bool deflate = false) {
    auto process = start(peer + " server" + (deflate ? " --deflate" : ""), "listening on ");
    asio::io_context io;
    ws::stream<tcp::socket> client(io);
    int steps = 0;
    std::error_code end = asio::error::would_block;
    spawn(io, [&]() -> awaitable<void> {
        co_await client.next_layer().async_connect({asio::ip::address_v4::loopback(), process.port()},
                                                   use_awaitable);
        ws::client_options hello;
        hello.host = "127.0.0.1:" + std::to_string(process.port());
        hello.deflate.enabled = deflate;
        co_await client.async_handshake(hello, use_awaitable);
        CHECK(client.deflate().has_value() == deflate);
        std::string m;
        const auto say = [&](std::string_view text) { return say_and_read(client, text); };
        CHECK(co_await say("hello") == "hello");
        ++steps;
        std::string big(1u << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i)
            big[i] = static_cast<char>(i % 251);
        co_await client.async_write(ws::message_type::binary, asio::buffer(big), use_awaitable);
        co_await client.async_read(m, use_awaitable);
        CHECK(m == big);
        CHECK_FALSE(client.got_text());
        ++steps;
        CHECK(co_await say("fragment") == "fragmented");
        ++steps;
        // The peer pings; the read answers and then gets "pong ok".
        CHECK(co_await say("ping") == "pong ok");
        ++steps;
        co_await client.async_ping(asio::buffer(std::string_view("from parley")), use_awaitable);
        CHECK(co_await say("after ping") == "after ping");
        CHECK(client.pongs_received() == 1);
        ++steps;
        co_await client.async_write(ws::message_type::text, asio::buffer(std::string_view("close")), use_awaitable);
        auto [ec, n] = co_await client.async_read(m, tuple);
        end = ec;
    });
    io.run_for(30s);
    CHECK(io.stopped());
    const auto status = process.wait_exit(10s);
    INFO("the peer said:\n" << process.output());
    CHECK(steps == 5);
    if (deflate)
        CHECK(process.output().find("ok: permessage-deflate") != std::string::npos);
    CHECK(end == ws::error::closed);
    CHECK(static_cast<int>(client.peer_close().code) == 4002);
    CHECK(client.peer_close().reason == close_reason);
    CHECK(status == 0);
}

} // namespace

TEST_CASE("websocket interop python: a websockets client against a parley server") {
    if (auto peer = python_peer())
        peer_client(*peer, "py done");
}

TEST_CASE("websocket interop python: a parley client against a websockets server") {
    if (auto peer = python_peer())
        peer_server(*peer, "py server");
}

TEST_CASE("websocket interop node: a ws client against a parley server") {
    if (auto peer = node_peer())
        peer_client(*peer, "node done");
}

TEST_CASE("websocket interop node: a parley client against a ws server") {
    if (auto peer = node_peer())
        peer_server(*peer, "node server");
}

TEST_CASE("websocket interop python: permessage-deflate, a websockets client against a parley server") {
    if (auto peer = python_peer(); peer && have_zlib())
        peer_client(*peer, "py done", true);
}

TEST_CASE("websocket interop python: permessage-deflate, a parley client against a websockets server") {
    if (auto peer = python_peer(); peer && have_zlib())
        peer_server(*peer, "py server", true);
}

TEST_CASE("websocket interop node: permessage-deflate, a ws client against a parley server") {
    if (auto peer = node_peer(); peer && have_zlib())
        peer_client(*peer, "node done", true);
}

TEST_CASE("websocket interop node: permessage-deflate, a parley client against a ws server") {
    if (auto peer = node_peer(); peer && have_zlib())
        peer_server(*peer, "node server", true);
}
