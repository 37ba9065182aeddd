// Tests for include/parley/websocket/stream.hpp: a parley client and a
// parley server on loopback (messages of every length class, pings, the
// close handshake both ways, the handshake's refusals), and raw sockets
// against the server for what a parley client never sends (Autobahn-style
// malformed frames), and over TLS (skipped without OpenSSL). Each test runs
// its io_context for at most 20 s.
#include <parley/websocket/stream.hpp>

#if PARLEY_HAVE_TLS
#include <parley/net/tls.hpp>

#include "support/tls_certs.hpp"
#else
#include "support/skip.hpp"
#endif
#include "support/io_harness.hpp"

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/strand.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <system_error>
#include <thread>
#include <type_traits>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace ws = parley::websocket;
using tcp = asio::ip::tcp;
using ws_stream = ws::stream<tcp::socket>;
static_assert(std::is_move_constructible_v<ws_stream>);
using asio::awaitable;
using asio::use_awaitable;
using parley::test::run;
using parley::test::spawn;
using parley::test::socket_pair;

// A parley server and a parley client, handshake done.
struct ws_pair {
    asio::io_context io;
    socket_pair sockets{io};
    ws_stream server{std::move(sockets.server)};
    ws_stream client{std::move(sockets.client)};

    explicit ws_pair(ws::server_options options = {}, ws::stream_options limits = {}) {
        server.options(limits);
        client.options(limits);
        std::error_code server_ec = asio::error::would_block, client_ec = asio::error::would_block;
        server.async_accept(options, [&](std::error_code ec) { server_ec = ec; });
        client.async_handshake("127.0.0.1", "/ws", [&](std::error_code ec) { client_ec = ec; });
        run(io);
        REQUIRE(server_ec == std::error_code());
        REQUIRE(client_ec == std::error_code());
        REQUIRE(server.is_open());
        REQUIRE(client.is_open());
    }
};

std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>('a' + i % 26);
    return s;
}

// --- raw client side ---------------------------------------------------------

constexpr std::string_view good_key = "dGhlIHNhbXBsZSBub25jZQ==";

std::string upgrade_request(std::string_view extra = "") {
    return "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: " +
           std::string(good_key) + "\r\nSec-WebSocket-Version: 13\r\n" + std::string(extra) + "\r\n";
}

// A client frame as bytes: masked unless told not to; any bits in `rsv`
// (0x70) and any opcode value.
std::string raw_frame(unsigned op, std::string_view payload, bool fin = true, bool masked = true,
                      unsigned rsv = 0) {
    std::string out;
    out += static_cast<char>((fin ? 0x80 : 0) | rsv | op);
    const unsigned m = masked ? 0x80 : 0;
    if (payload.size() <= 125) {
        out += static_cast<char>(m | payload.size());
    } else if (payload.size() <= 0xFFFF) {
        out += static_cast<char>(m | 126);
        out += static_cast<char>(payload.size() >> 8);
        out += static_cast<char>(payload.size() & 0xFF);
    } else {
        out += static_cast<char>(m | 127);
        for (int i = 7; i >= 0; --i)
            out += static_cast<char>((static_cast<std::uint64_t>(payload.size()) >> (8 * i)) & 0xFF);
    }
    const char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (masked)
        out.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        out += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
    return out;
}

// A raw client: sends bytes, reads the server's answer head and frames.
struct raw_client {
    tcp::socket& socket;
    std::string in; // bytes read and not yet used

    awaitable<std::string> read_head() {
        const std::size_t n = co_await asio::async_read_until(socket, asio::dynamic_buffer(in), "\r\n\r\n",
                                                              use_awaitable);
        std::string head = in.substr(0, n);
        in.erase(0, n);
        co_return head;
    }

    // Reads server frames until a close or the end; returns the events'
    // kinds and the close code (0 if none came).
    struct seen {
        std::vector<ws::event_kind> kinds;
        std::vector<std::string> payloads;
        int close_code = 0;
        bool ended = false;
    };
    awaitable<seen> read_until_close() {
        seen out;
        ws::message_reader reader({.side = ws::role::client, .max_message_size = 4u << 20});
        std::vector<std::byte> buf(in.size());
        if (!in.empty()) // memcpy from a null pointer is undefined, even for 0 bytes
            std::memcpy(buf.data(), in.data(), in.size());
        in.clear();
        for (;;) {
            reader.feed(buf);
            std::error_code ec;
            while (auto ev = reader.next(ec)) {
                out.kinds.push_back(ev.kind);
                out.payloads.emplace_back(ev.text());
                if (ev.kind == ws::event_kind::close) {
                    out.close_code = static_cast<int>(ev.code);
                    co_return out;
                }
            }
            if (ec)
                co_return out;
            buf.resize(4096);
            auto [rec, n] = co_await socket.async_read_some(asio::buffer(buf),
                                                            asio::experimental::as_tuple(use_awaitable));
            if (rec) {
                out.ended = true;
                co_return out;
            }
            buf.resize(n);
        }
    }
};

// A server accepting one connection, with the result of async_accept and
// of the first read.
struct raw_case {
    asio::io_context io;
    socket_pair sockets{io};
    ws_stream server{std::move(sockets.server)};
    std::optional<std::error_code> accept_ec, read_ec;
    std::string message;
    raw_client raw{sockets.client, {}};

    explicit raw_case(ws::server_options options = {}, ws::stream_options limits = {}) {
        limits.close_timeout = 3s;
        server.options(limits);
        server.async_accept(options, [this](std::error_code ec) {
            accept_ec = ec;
            if (!ec)
                server.async_read(message, [this](std::error_code rec, std::size_t) {
                    read_ec = rec;
                    if (!rec) // the message came: end politely
                        server.async_close(ws::close_code::normal, "", [](std::error_code) {});
                });
        });
    }
};

} // namespace

TEST_CASE("websocket stream: messages of every length class, text and binary, both ways") {
    ws_pair p({}, {.max_message_size = 2u << 20});
    std::vector<std::size_t> sizes{0, 1, 125, 126, 65535, 65536, 1u << 20};
    int checked = 0;
    spawn(p.io, [&]() -> awaitable<void> {
        // The server echoes each message with its type.
        std::string m;
        for (std::size_t i = 0; i < 2 * sizes.size(); ++i) {
            co_await p.server.async_read(m, use_awaitable);
            co_await p.server.async_write(p.server.got_text() ? ws::message_type::text : ws::message_type::binary,
                                          asio::buffer(m), use_awaitable);
        }
        // The read that sees the client's close answers it.
        auto [ec, n] = co_await p.server.async_read(m, asio::experimental::as_tuple(use_awaitable));
        CHECK(ec == ws::error::closed);
        CHECK(p.server.peer_close().reason == "done");
    });
    spawn(p.io, [&]() -> awaitable<void> {
        std::string back;
        for (const auto type : {ws::message_type::text, ws::message_type::binary}) {
            for (std::size_t n : sizes) {
                const std::string sent = pattern(n);
                const std::size_t w = co_await p.client.async_write(type, asio::buffer(sent), use_awaitable);
                CHECK(w == n);
                const std::size_t r = co_await p.client.async_read(back, use_awaitable);
                CHECK(r == n);
                CHECK(back == sent);
                CHECK(p.client.got_text() == (type == ws::message_type::text));
                ++checked;
            }
        }
        co_await p.client.async_close(ws::close_code::normal, "done", use_awaitable);
    });
    run(p.io);
    CHECK(checked == 2 * static_cast<int>(sizes.size()));
}

TEST_CASE("websocket stream: max_frame_size sends a message in frames, cutting text anywhere") {
    // 7-byte frames cut the 3- and 4-byte characters; the reader checks
    // UTF-8 across the fragments and gets the message whole.
    ws_pair p({}, {.max_frame_size = 7});
    const std::string text = "frames: \u00e9\u4e2d\U0001F600 " + pattern(100);
    const std::string bytes = pattern(50);
    std::vector<std::string> got;
    spawn(p.io, [&]() -> awaitable<void> {
        std::string m;
        co_await p.client.async_write(ws::message_type::text, asio::buffer(text), use_awaitable);
        co_await p.server.async_read(m, use_awaitable);
        got.push_back(m);
        co_await p.server.async_write(ws::message_type::binary, asio::buffer(bytes), use_awaitable);
        co_await p.client.async_read(m, use_awaitable);
        got.push_back(m);
        CHECK_FALSE(p.client.got_text());
        // Text that is not UTF-8 is refused whole, before any frame.
        auto [ec, n] = co_await p.client.async_write(ws::message_type::text,
                                                     asio::buffer(std::string_view("bad \xc0\xaf ok")),
                                                     asio::experimental::as_tuple(use_awaitable));
        CHECK(ec == ws::error::invalid_utf8_to_send);
        p.server.async_read(m, [](std::error_code, std::size_t) {});
        co_await p.client.async_close(ws::close_code::normal, "", use_awaitable);
    });
    run(p.io);
    REQUIRE(got.size() == 2);
    CHECK(got[0] == text);
    CHECK(got[1] == bytes);
}

TEST_CASE("websocket stream: a server's fragments on the wire") {
    asio::io_context io;
    socket_pair sockets{io};
    ws_stream server{std::move(sockets.server)};
    server.options({.max_frame_size = 4});
    raw_client raw{sockets.client, {}};
    std::vector<std::pair<int, std::string>> frames; // first byte, payload
    server.async_accept({}, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        server.async_write(ws::message_type::text, asio::buffer(std::string_view("0123456789")),
                           [](std::error_code wec, std::size_t) { CHECK_FALSE(wec); });
    });
    spawn(io, [&]() -> awaitable<void> {
        co_await asio::async_write(sockets.client, asio::buffer(upgrade_request()), use_awaitable);
        co_await raw.read_head();
        std::string& in = raw.in;
        for (int i = 0; i < 3; ++i) {
            if (in.size() < 2)
                co_await asio::async_read(sockets.client, asio::dynamic_buffer(in),
                                          asio::transfer_at_least(2 - in.size()), use_awaitable);
            const std::size_t len = static_cast<unsigned char>(in[1]) & 0x7F;
            if (in.size() < 2 + len)
                co_await asio::async_read(sockets.client, asio::dynamic_buffer(in),
                                          asio::transfer_at_least(2 + len - in.size()), use_awaitable);
            frames.emplace_back(static_cast<unsigned char>(in[0]), in.substr(2, len));
            in.erase(0, 2 + len);
        }
        sockets.client.close();
    });
    run(io);
    REQUIRE(frames.size() == 3);
    CHECK(frames[0] == std::pair<int, std::string>{0x01, "0123"}); // text, no FIN
    CHECK(frames[1] == std::pair<int, std::string>{0x00, "4567"}); // continuation
    CHECK(frames[2] == std::pair<int, std::string>{0x80, "89"});   // continuation, FIN
}

TEST_CASE("websocket stream: the blocking functions, a thread and an io_context per end") {
    asio::io_context server_io, client_io;
    tcp::acceptor acceptor(server_io, {asio::ip::address_v4::loopback(), 0});
    const auto port = acceptor.local_endpoint().port();
    std::string server_got;
    std::error_code server_end;
    std::thread server_thread([&] {
        // This end's socket runs on a strand: the blocking functions find
        // the io_context behind it.
        ws_stream server(asio::make_strand(server_io));
        acceptor.accept(server.next_layer());
        server.accept();
        server.read(server_got);
        server.write(ws::message_type::text, asio::buffer(server_got + " back"));
        std::string more;
        server.read(more, server_end); // the client's close, answered
    });
    ws_stream client(client_io);
    client.next_layer().connect({asio::ip::address_v4::loopback(), port});
    client.options({.max_frame_size = 3});
    client.handshake("127.0.0.1", "/ws");
    CHECK(client.write(ws::message_type::text, asio::buffer(std::string_view("blocking"))) == 8);
    std::string got;
    CHECK(client.read(got) == 13);
    CHECK(got == "blocking back");
    std::error_code bad;
    client.write(ws::message_type::text, asio::buffer(std::string_view("\xff")), bad);
    CHECK(bad == ws::error::invalid_utf8_to_send);
    client.close(ws::close_code::normal, "bye");
    server_thread.join();
    CHECK(server_got == "blocking");
    CHECK(server_end == ws::error::closed);
    CHECK_FALSE(client.next_layer().is_open());
    CHECK_THROWS_AS(client.read(got), std::system_error);
}

TEST_CASE("websocket stream: callbacks, use_future and a dynamic buffer") {
    ws_pair p;
    std::string got;
    std::error_code server_read = asio::error::would_block;
    p.server.async_read(got, [&](std::error_code ec, std::size_t n) {
        server_read = ec;
        CHECK(n == 5);
    });
    auto written = p.client.async_write(ws::message_type::text, asio::buffer(std::string_view("hello")),
                                        asio::use_future);
    p.io.restart();
    std::thread runner([&] { p.io.run_for(10s); });
    CHECK(written.get() == 5);
    runner.join();
    CHECK(server_read == std::error_code());
    CHECK(got == "hello");

    // A DynamicBuffer appends.
    std::vector<unsigned char> bytes{'>'};
    const std::string payload = "\x01\x02\x03";
    p.server.async_write(ws::message_type::binary, asio::buffer(payload), [](std::error_code ec, std::size_t) {
        CHECK_FALSE(ec);
    });
    std::size_t read = 0;
    p.client.async_read(asio::dynamic_buffer(bytes), [&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        read = n;
    });
    run(p.io);
    CHECK(read == 3);
    CHECK(bytes == std::vector<unsigned char>{'>', 1, 2, 3});
    CHECK_FALSE(p.client.got_text());
}

TEST_CASE("websocket stream: a handler is never invoked inside the initiating function") {
    ws_pair p;
    bool done = false;
    std::string m;
    ws_stream idle(p.io);
    idle.async_read(m, [&](std::error_code ec, std::size_t) {
        CHECK(ec == ws::error::not_open);
        done = true;
    });
    CHECK_FALSE(done);
    bool wrote = false;
    p.client.async_write(ws::message_type::text, asio::buffer(std::string_view("\xff")),
                         [&](std::error_code ec, std::size_t) {
                             CHECK(ec == ws::error::invalid_utf8_to_send);
                             wrote = true;
                         });
    CHECK_FALSE(wrote);
    run(p.io);
    CHECK(done);
    CHECK(wrote);
}

TEST_CASE("websocket stream: ping is answered with a pong, counted by the reader") {
    ws_pair p;
    spawn(p.io, [&]() -> awaitable<void> {
        std::string m;
        co_await p.server.async_read(m, use_awaitable);
        co_await p.server.async_write(ws::message_type::text, asio::buffer(m), use_awaitable);
    });
    spawn(p.io, [&]() -> awaitable<void> {
        co_await p.client.async_ping(asio::buffer(std::string_view("are you there")), use_awaitable);
        co_await p.client.async_write(ws::message_type::text, asio::buffer(std::string_view("after ping")),
                                      use_awaitable);
        std::string m;
        co_await p.client.async_read(m, use_awaitable);
        CHECK(m == "after ping");
        CHECK(p.client.pongs_received() == 1);
    });
    run(p.io);
    CHECK(p.client.pongs_received() == 1);
}

TEST_CASE("websocket stream: close handshake started by the client") {
    ws_pair p;
    std::error_code read_ec, close_ec = asio::error::would_block;
    std::string m;
    p.server.async_read(m, [&](std::error_code ec, std::size_t) { read_ec = ec; });
    p.client.async_close(ws::close_code::going_away, "bye", [&](std::error_code ec) { close_ec = ec; });
    run(p.io);
    CHECK(read_ec == ws::error::closed);
    CHECK(p.server.peer_close().code == ws::close_code::going_away);
    CHECK(p.server.peer_close().reason == "bye");
    CHECK(close_ec == std::error_code());
    CHECK(p.client.peer_close().code == ws::close_code::going_away); // echoed
    CHECK_FALSE(p.client.is_open());
    CHECK_FALSE(p.server.next_layer().is_open());
    CHECK_FALSE(p.client.next_layer().is_open());
    // Nothing more after the close.
    std::error_code write_ec;
    p.server.async_write(ws::message_type::text, asio::buffer(m), [&](std::error_code ec, std::size_t) {
        write_ec = ec;
    });
    run(p.io);
    CHECK(write_ec == ws::error::closed);
}

TEST_CASE("websocket stream: close handshake started by the server while the client reads") {
    ws_pair p;
    std::error_code read_ec, close_ec = asio::error::would_block;
    std::string m;
    p.client.async_read(m, [&](std::error_code ec, std::size_t) { read_ec = ec; });
    p.server.async_read(m, [&](std::error_code, std::size_t) {}); // sees the close answer
    p.server.async_close(ws::close_code::normal, "", [&](std::error_code ec) { close_ec = ec; });
    run(p.io);
    CHECK(read_ec == ws::error::closed);
    CHECK(p.client.peer_close().code == ws::close_code::normal);
    CHECK(close_ec == std::error_code());
}

TEST_CASE("websocket stream: async_close gives up after close_timeout when the peer does not answer") {
    asio::io_context io;
    socket_pair s(io);
    ws_stream server(std::move(s.server));
    server.options({.close_timeout = 300ms});
    raw_client raw{s.client, {}};
    std::error_code close_ec = asio::error::would_block;
    server.async_accept({}, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        server.async_close(ws::close_code::normal, "", [&](std::error_code cec) { close_ec = cec; });
    });
    spawn(io, [&]() -> awaitable<void> {
        co_await asio::async_write(s.client, asio::buffer(upgrade_request()), use_awaitable);
        co_await raw.read_head();
        // Reads the close and says nothing; keeps the connection open.
        auto seen = co_await raw.read_until_close();
        CHECK(seen.close_code == 1000);
        auto ended = co_await raw.read_until_close();
        CHECK(ended.ended);
    });
    const auto start = std::chrono::steady_clock::now();
    run(io);
    CHECK(close_ec == parley::error::timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 10s);
}

TEST_CASE("websocket stream: async_close with a read outstanding gives up after close_timeout too") {
    asio::io_context io;
    socket_pair s(io);
    ws_stream server(std::move(s.server));
    server.options({.close_timeout = 300ms});
    raw_client raw{s.client, {}};
    std::error_code close_ec = asio::error::would_block, read_ec = asio::error::would_block;
    std::string m;
    server.async_accept({}, [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        server.async_read(m, [&](std::error_code rec, std::size_t) { read_ec = rec; });
        server.async_close(ws::close_code::going_away, "", [&](std::error_code cec) { close_ec = cec; });
    });
    spawn(io, [&]() -> awaitable<void> {
        co_await asio::async_write(s.client, asio::buffer(upgrade_request()), use_awaitable);
        co_await raw.read_head();
        auto seen = co_await raw.read_until_close();
        CHECK(seen.close_code == 1001);
        auto ended = co_await raw.read_until_close(); // the server drops the connection
        CHECK(ended.ended);
    });
    run(io);
    CHECK(close_ec == parley::error::timed_out);
    CHECK(read_ec == ws::error::closed);
}

TEST_CASE("websocket stream: an abrupt disconnect ends the read with no_close_frame") {
    raw_case c;
    spawn(c.io, [&]() -> awaitable<void> {
        co_await asio::async_write(c.sockets.client, asio::buffer(upgrade_request()), use_awaitable);
        const std::string head = co_await c.raw.read_head();
        CHECK(head.starts_with("HTTP/1.1 101"));
        CHECK(head.find("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);
        c.sockets.client.close();
    });
    run(c.io);
    CHECK(c.accept_ec == std::error_code());
    CHECK(c.read_ec == ws::error::no_close_frame);
}

TEST_CASE("websocket stream: a connection cut inside a frame ends the read with truncated") {
    raw_case c;
    spawn(c.io, [&]() -> awaitable<void> {
        co_await asio::async_write(c.sockets.client, asio::buffer(upgrade_request()), use_awaitable);
        co_await c.raw.read_head();
        const std::string f = raw_frame(0x1, "half of this");
        co_await asio::async_write(c.sockets.client, asio::buffer(f.substr(0, 8)), use_awaitable);
        c.sockets.client.close();
    });
    run(c.io);
    CHECK(c.read_ec == ws::error::truncated);
}

TEST_CASE("websocket stream: fragments from the raw side, with a ping between them, make one message") {
    raw_case c;
    raw_client::seen seen;
    spawn(c.io, [&]() -> awaitable<void> {
        // The frames come right behind the request, in the same write: the
        // bytes after the head belong to the WebSocket.
        const std::string bytes = upgrade_request() + raw_frame(0x1, "Hel", false) + raw_frame(0x9, "p1") +
                                  raw_frame(0x0, "lo, ", false) + raw_frame(0x0, "w\xc3\xb6rld", true);
        co_await asio::async_write(c.sockets.client, asio::buffer(bytes), use_awaitable);
        co_await c.raw.read_head();
        seen = co_await c.raw.read_until_close();
        c.sockets.client.close(); // without answering the close: the server's close times out
    });
    run(c.io);
    CHECK(c.read_ec == std::error_code());
    CHECK(c.message == "Hello, w\xc3\xb6rld");
    // The pong echoed the ping's payload; then the server closed.
    REQUIRE(seen.kinds.size() == 2);
    CHECK(seen.kinds[0] == ws::event_kind::pong);
    CHECK(seen.payloads[0] == "p1");
    CHECK(seen.close_code == 1000);
}

namespace {

// Sends `frames` after the handshake and returns the close code the server
// answered with and the server's read error.
std::pair<int, std::error_code> server_answer(std::string frames, ws::stream_options limits = {}) {
    raw_case c({}, limits);
    int code = -1;
    spawn(c.io, [&]() -> awaitable<void> {
        co_await asio::async_write(c.sockets.client, asio::buffer(upgrade_request()), use_awaitable);
        co_await c.raw.read_head();
        co_await asio::async_write(c.sockets.client, asio::buffer(frames), use_awaitable);
        auto seen = co_await c.raw.read_until_close();
        code = seen.close_code;
        // The server ends the connection after its close.
        auto after = co_await c.raw.read_until_close();
        CHECK(after.ended);
        c.sockets.client.close();
    });
    run(c.io);
    return {code, c.read_ec.value_or(asio::error::would_block)};
}

} // namespace

TEST_CASE("websocket stream: the server refuses malformed frames with the right close code") {
    SUBCASE("unmasked client frame: 1002") {
        auto [code, ec] = server_answer(raw_frame(0x1, "hi", true, false));
        CHECK(code == 1002);
        CHECK(ec == ws::error::unmasked_client_frame);
    }
    SUBCASE("reserved bits: 1002") {
        auto [code, ec] = server_answer(raw_frame(0x1, "hi", true, true, 0x20));
        CHECK(code == 1002);
        CHECK(ec == ws::error::reserved_bits);
    }
    SUBCASE("RSV1 without permessage-deflate: 1002") {
        auto [code, ec] = server_answer(raw_frame(0x1, "hi", true, true, 0x40));
        CHECK(code == 1002);
    }
    SUBCASE("reserved opcodes 3 and 11: 1002") {
        for (unsigned op : {0x3u, 0xBu}) {
            auto [code, ec] = server_answer(raw_frame(op, "x"));
            CHECK(code == 1002);
            CHECK(ec == ws::error::bad_opcode);
        }
    }
    SUBCASE("fragmented ping: 1002") {
        auto [code, ec] = server_answer(raw_frame(0x9, "x", false));
        CHECK(code == 1002);
        CHECK(ec == ws::error::fragmented_control_frame);
    }
    SUBCASE("continuation without a start: 1002") {
        auto [code, ec] = server_answer(raw_frame(0x0, "x"));
        CHECK(code == 1002);
    }
    SUBCASE("bad UTF-8: 1007, failing fast on the first fragment") {
        // The first fragment is already invalid; the message never ends.
        auto [code, ec] = server_answer(raw_frame(0x1, "ok \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80", false));
        CHECK(code == 1007);
        CHECK(ec == ws::error::invalid_utf8);
    }
    SUBCASE("a message over max_message_size: 1009, before its payload is read") {
        std::string big = raw_frame(0x2, std::string(2000, 'x'));
        big.resize(100); // the header announces 2000 bytes; 100 are sent
        auto [code, ec] = server_answer(big, {.max_message_size = 1000});
        CHECK(code == 1009);
        CHECK(ec == ws::error::message_too_big);
    }
    SUBCASE("a close with an invalid code: 1002") {
        auto [code, ec] = server_answer(raw_frame(0x8, std::string("\x03\xed", 2)));
        CHECK(code == 1002);
        CHECK(ec == ws::error::invalid_close_code);
    }
}

TEST_CASE("websocket stream: a parley client over the limit gets 1009 from the server") {
    ws_pair p({}, {.max_message_size = 1000});
    std::error_code server_ec, client_ec;
    std::string m;
    p.server.async_read(m, [&](std::error_code ec, std::size_t) { server_ec = ec; });
    const std::string big(5000, 'x');
    p.client.async_write(ws::message_type::binary, asio::buffer(big), [&](std::error_code, std::size_t) {
        p.client.async_read(m, [&](std::error_code ec, std::size_t) { client_ec = ec; });
    });
    run(p.io);
    CHECK(server_ec == ws::error::message_too_big);
    CHECK(client_ec == ws::error::closed);
    CHECK(p.client.peer_close().code == ws::close_code::message_too_big);
}

namespace {

// Sends `request` raw and returns the server's answer head and accept error.
std::pair<std::string, std::error_code> handshake_answer(std::string request, ws::server_options options = {}) {
    raw_case c(std::move(options));
    std::string head;
    spawn(c.io, [&]() -> awaitable<void> {
        co_await asio::async_write(c.sockets.client, asio::buffer(request), use_awaitable);
        head = co_await c.raw.read_head();
        c.sockets.client.close();
    });
    run(c.io);
    return {head, c.accept_ec.value_or(asio::error::would_block)};
}

} // namespace

TEST_CASE("websocket stream: handshake refusals are answered in HTTP and fail async_accept") {
    SUBCASE("no Upgrade: 426") {
        auto [head, ec] = handshake_answer("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(head.starts_with("HTTP/1.1 426 "));
        CHECK(ec == parley::http::error::upgrade_required);
    }
    SUBCASE("version 8: 426") {
        std::string r = upgrade_request();
        r.replace(r.find("Version: 13"), 11, "Version: 8");
        auto [head, ec] = handshake_answer(r);
        CHECK(head.starts_with("HTTP/1.1 426 "));
        CHECK(head.find("Sec-WebSocket-Version: 13") != std::string::npos);
    }
    SUBCASE("bad key: 400") {
        std::string r = upgrade_request();
        r.replace(r.find(good_key), good_key.size(), "short");
        auto [head, ec] = handshake_answer(r);
        CHECK(head.starts_with("HTTP/1.1 400 "));
        CHECK(ec == parley::http::error::bad_websocket_key);
    }
    SUBCASE("origin not allowed: 403") {
        ws::server_options o;
        o.allowed_origins = {"http://good.example"};
        auto [head, ec] = handshake_answer(upgrade_request("Origin: http://evil.example\r\n"), o);
        CHECK(head.starts_with("HTTP/1.1 403 "));
        CHECK(ec == parley::http::error::origin_not_allowed);
        auto [ok_head, ok_ec] = handshake_answer(upgrade_request("Origin: http://good.example\r\n"), o);
        CHECK(ok_head.starts_with("HTTP/1.1 101 "));
        CHECK(ok_ec == std::error_code());
    }
    SUBCASE("POST: 405") {
        auto [head, ec] = handshake_answer("POST /ws HTTP/1.1\r\nHost: x\r\n\r\n");
        CHECK(head.starts_with("HTTP/1.1 405 "));
    }
    SUBCASE("a head over the limit: 431, not read to its end") {
        auto [head, ec] = handshake_answer(upgrade_request("X-Big: " + std::string(20000, 'a') + "\r\n"));
        CHECK(head.starts_with("HTTP/1.1 431 "));
    }
}

TEST_CASE("websocket stream: the handshake deadline") {
    asio::io_context io;
    socket_pair s(io);
    ws_stream server(std::move(s.server));
    server.options({.handshake_timeout = 200ms});
    std::error_code ec;
    server.async_accept({}, [&](std::error_code e) { ec = e; });
    run(io);
    CHECK(ec == parley::error::timed_out);
}

TEST_CASE("websocket stream: subprotocol selection, both sides") {
    asio::io_context io;
    socket_pair s(io);
    ws_stream server(std::move(s.server)), client(std::move(s.client));
    ws::server_options so;
    so.subprotocols = {"chat.v2", "chat.v1"};
    ws::client_options co;
    co.host = "127.0.0.1";
    co.target = "/ws";
    co.subprotocols = {"chat.v1", "chat.v2"};
    std::error_code sec = asio::error::would_block, cec = asio::error::would_block;
    server.async_accept(so, [&](std::error_code e) { sec = e; });
    client.async_handshake(co, [&](std::error_code e) { cec = e; });
    run(io);
    CHECK(sec == std::error_code());
    CHECK(cec == std::error_code());
    CHECK(server.subprotocol() == "chat.v2");
    CHECK(client.subprotocol() == "chat.v2");
}

TEST_CASE("websocket stream: an HTTP server hands over a parsed request and the bytes after it") {
    asio::io_context io;
    socket_pair s(io);
    ws_stream client(std::move(s.client));
    // The "HTTP server": reads the head itself, routes /ws to the stream.
    std::string got;
    std::error_code accept_ec = asio::error::would_block, read_ec = asio::error::would_block;
    std::optional<ws_stream> server;
    spawn(io, [&]() -> awaitable<void> {
        parley::http::request_parser parser;
        std::string buf(4096, '\0');
        std::size_t used = 0, n = 0;
        while (!parser.done()) {
            n = co_await s.server.async_read_some(asio::buffer(buf), use_awaitable);
            std::error_code ec;
            used = parser.feed(std::string_view(buf.data(), n), ec);
            REQUIRE_FALSE(ec);
        }
        CHECK(parser.path() == "/ws");
        server.emplace(std::move(s.server));
        co_await server->async_accept(parser, asio::buffer(buf.data() + used, n - used), {}, use_awaitable);
        accept_ec = {};
        co_await server->async_read(got, use_awaitable);
        read_ec = {};
    });
    spawn(io, [&]() -> awaitable<void> {
        co_await client.async_handshake("127.0.0.1", "/ws", use_awaitable);
        co_await client.async_write(ws::message_type::text, asio::buffer(std::string_view("handed over")),
                                    use_awaitable);
    });
    run(io);
    CHECK(accept_ec == std::error_code());
    CHECK(read_ec == std::error_code());
    CHECK(got == "handed over");
}

TEST_CASE("websocket stream: the client refuses an answer that is not a 101") {
    asio::io_context io;
    socket_pair s(io);
    ws_stream client(std::move(s.client));
    std::error_code ec;
    client.async_handshake("127.0.0.1", "/ws", [&](std::error_code e) { ec = e; });
    spawn(io, [&]() -> awaitable<void> {
        std::string in;
        co_await asio::async_read_until(s.server, asio::dynamic_buffer(in), "\r\n\r\n", use_awaitable);
        const std::string answer = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        co_await asio::async_write(s.server, asio::buffer(answer), use_awaitable);
    });
    run(io);
    CHECK(ec == parley::http::error::not_switching_protocols);
    CHECK_FALSE(client.is_open());
}

TEST_CASE("websocket stream: a client masks every frame, the server's frames are not masked") {
    // Read what the parley client sends with a server-side reader (which
    // refuses unmasked frames) and the reverse.
    ws_pair p;
    std::string m;
    std::error_code ec;
    p.client.async_write(ws::message_type::text, asio::buffer(std::string_view("masked")),
                         [](std::error_code, std::size_t) {});
    p.server.async_read(m, [&](std::error_code e, std::size_t) { ec = e; });
    run(p.io);
    CHECK(ec == std::error_code()); // a server's reader refuses unmasked frames
    CHECK(m == "masked");
    p.server.async_write(ws::message_type::text, asio::buffer(std::string_view("plain")),
                         [](std::error_code, std::size_t) {});
    p.client.async_read(m, [&](std::error_code e, std::size_t) { ec = e; });
    run(p.io);
    CHECK(ec == std::error_code()); // a client's reader refuses masked frames
    CHECK(m == "plain");
}

TEST_CASE("websocket stream: over a referenced socket (stream<tcp::socket&>)") {
    asio::io_context io;
    socket_pair s(io);
    ws::stream<tcp::socket&> server(s.server);
    ws::stream<tcp::socket&> client(s.client);
    std::string m;
    spawn(io, [&]() -> awaitable<void> {
        co_await server.async_accept({}, use_awaitable);
        co_await server.async_read(m, use_awaitable);
    });
    spawn(io, [&]() -> awaitable<void> {
        co_await client.async_handshake("127.0.0.1", "/", use_awaitable);
        co_await client.async_write(ws::message_type::text, asio::buffer(std::string_view("by reference")),
                                    use_awaitable);
    });
    run(io);
    CHECK(m == "by reference");
}

#if PARLEY_HAVE_TLS
TEST_CASE("tls: websocket stream over TLS (wss://), parley at both ends") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    auto server_ctx = parley::tls::server_context(certs.cert(), certs.key());
    auto client_ctx = parley::tls::client_context({.ca_file = certs.cert()});
    asio::io_context io;
    socket_pair s(io);
    ws::stream<parley::tls::stream> server(std::move(s.server), server_ctx);
    ws::stream<parley::tls::stream> client(std::move(s.client), client_ctx);
    std::error_code end = asio::error::would_block;
    int checked = 0;
    spawn(io, [&]() -> awaitable<void> {
        co_await parley::tls::async_handshake(server.next_layer(), asio::ssl::stream_base::server, 5s,
                                              use_awaitable);
        co_await server.async_accept({}, use_awaitable);
        std::string m;
        for (;;) {
            auto [ec, n] = co_await server.async_read(m, asio::experimental::as_tuple(use_awaitable));
            if (ec) {
                end = ec;
                break;
            }
            co_await server.async_write(server.got_text() ? ws::message_type::text : ws::message_type::binary,
                                        asio::buffer(m), use_awaitable);
        }
    });
    spawn(io, [&]() -> awaitable<void> {
        std::error_code ec;
        parley::tls::set_peer_name(client.next_layer(), "127.0.0.1", ec);
        REQUIRE_FALSE(ec);
        co_await parley::tls::async_handshake(client.next_layer(), asio::ssl::stream_base::client, 5s,
                                              use_awaitable);
        co_await client.async_handshake("127.0.0.1", "/ws", use_awaitable);
        std::string back;
        for (std::size_t n : {std::size_t{0}, std::size_t{126}, std::size_t{65536}, std::size_t{1} << 20}) {
            const std::string sent = pattern(n);
            co_await client.async_write(ws::message_type::binary, asio::buffer(sent), use_awaitable);
            co_await client.async_read(back, use_awaitable);
            CHECK(back == sent);
            ++checked;
        }
        co_await client.async_ping(asio::buffer(std::string_view("tls ping")), use_awaitable);
        co_await client.async_write(ws::message_type::text, asio::buffer(std::string_view("x")), use_awaitable);
        co_await client.async_read(back, use_awaitable);
        CHECK(client.pongs_received() == 1);
        co_await client.async_close(ws::close_code::normal, "tls bye", use_awaitable);
    });
    run(io);
    CHECK(checked == 4);
    CHECK(end == ws::error::closed);
    CHECK(server.peer_close().reason == "tls bye");
}
#else
TEST_CASE("tls: websocket stream over TLS: skipped, parley was built without OpenSSL") {
    parley::test::skip("OpenSSL was not found at configure time (Debian: apt-get install libssl-dev)");
}
#endif

TEST_CASE("websocket stream: the client refuses a masked frame from the server with 1002") {
    asio::io_context io;
    socket_pair s(io);
    ws_stream client(std::move(s.client));
    client.options({.close_timeout = 3s});
    std::error_code read_ec = asio::error::would_block;
    int code = -1;
    spawn(io, [&]() -> awaitable<void> {
        co_await client.async_handshake("127.0.0.1", "/ws", use_awaitable);
        std::string m;
        auto [ec, n] = co_await client.async_read(m, asio::experimental::as_tuple(use_awaitable));
        read_ec = ec;
    });
    spawn(io, [&]() -> awaitable<void> {
        raw_client raw{s.server, {}};
        const std::string request = co_await raw.read_head();
        const auto at = request.find("Sec-WebSocket-Key: ") + 19;
        const std::string key = request.substr(at, request.find("\r\n", at) - at);
        const std::string answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                   "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                                   ws::accept_key(key) + "\r\n\r\n" + raw_frame(0x1, "masked!");
        co_await asio::async_write(s.server, asio::buffer(answer), use_awaitable);
        // What the client answers, read with a server-side reader.
        ws::message_reader reader({.side = ws::role::server});
        std::vector<std::byte> buf(256);
        for (;;) {
            auto [ec, n] = co_await s.server.async_read_some(asio::buffer(buf),
                                                             asio::experimental::as_tuple(use_awaitable));
            if (ec)
                break;
            reader.feed(std::span(buf).first(n));
            std::error_code rec;
            while (auto ev = reader.next(rec))
                if (ev.kind == ws::event_kind::close)
                    code = static_cast<int>(ev.code);
            if (rec)
                break;
        }
        s.server.close();
    });
    run(io);
    CHECK(read_ec == ws::error::masked_server_frame);
    CHECK(code == 1002);
}
