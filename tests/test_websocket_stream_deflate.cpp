// Tests for include/parley/websocket/stream.hpp with permessage-deflate
// (RFC 7692), modelled on the Autobahn testsuite's sections 12 and 13:
// compressed messages of several sizes both ways, with and without context
// takeover, fragmented compressed messages, control frames never
// compressed, bad compressed data (1007) and a message inflating past the
// limit (1009), on the server and on the client side. Raw sockets play the
// peer for what a parley stream never sends. The parley_tests.zlib group;
// skipped (reported as such) when built without zlib.
#include <parley/websocket/stream.hpp>

#include "support/io_harness.hpp"
#include "support/skip.hpp"

#include <doctest/doctest.h>

#if PARLEY_HAVE_ZLIB
#include <parley/websocket/deflate.hpp>

#include <zlib.h>

#include <asio/co_spawn.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/read.hpp>
#include <asio/read_until.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <cstring>
#include <exception>
#include <functional>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <string>
#include <system_error>
#include <vector>

namespace {

using namespace std::chrono_literals;
namespace ws = parley::websocket;
using tcp = asio::ip::tcp;
using ws_stream = ws::stream<tcp::socket>;
using asio::awaitable;
using asio::use_awaitable;
using parley::test::run;
using parley::test::spawn;
using parley::test::socket_pair;
constexpr auto tuple = asio::experimental::as_tuple(use_awaitable);

// Text of `n` bytes that compresses well, or random bytes that do not.
std::string pattern(std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i)
        s[i] = static_cast<char>('a' + (i * 7 + i / 26) % 26);
    return s;
}
std::string noise(std::size_t n) {
    std::mt19937 random(42);
    std::string s(n, '\0');
    for (char& c : s)
        c = static_cast<char>(random() & 0xFF);
    return s;
}

std::string inflate_all(std::string_view compressed, std::size_t limit = 64u << 20) {
    ws::inflater in(limit);
    std::string out;
    std::error_code ec;
    in.feed(compressed, out, ec);
    REQUIRE(!ec);
    in.finish(out, ec);
    REQUIRE(!ec);
    return out;
}

// A parley server and client, both with compression on, handshake done.
struct deflate_pair {
    asio::io_context io;
    socket_pair sockets{io};
    ws_stream server{std::move(sockets.server)};
    ws_stream client{std::move(sockets.client)};

    deflate_pair(ws::deflate_server_options so, ws::deflate_client_options co, ws::stream_options limits = {}) {
        server.options(limits);
        client.options(limits);
        ws::server_options options;
        options.deflate = so;
        ws::client_options hello;
        hello.host = "127.0.0.1";
        hello.target = "/ws";
        hello.deflate = co;
        std::error_code server_ec = asio::error::would_block, client_ec = asio::error::would_block;
        server.async_accept(options, [&](std::error_code ec) { server_ec = ec; });
        client.async_handshake(hello, [&](std::error_code ec) { client_ec = ec; });
        run(io);
        REQUIRE(server_ec == std::error_code());
        REQUIRE(client_ec == std::error_code());
    }
};

// --- a raw peer ---------------------------------------------------------------

constexpr std::string_view good_key = "dGhlIHNhbXBsZSBub25jZQ==";

std::string upgrade_request(std::string_view extensions) {
    return "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: " +
           std::string(good_key) + "\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: " +
           std::string(extensions) + "\r\n\r\n";
}

// A frame as bytes, masked for a client's; `rsv` 0x40 is RSV1.
std::string raw_frame(unsigned op, std::string_view payload, bool fin, bool masked, unsigned rsv = 0) {
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
    const char key[4] = {0x21, 0x43, 0x65, 0x07};
    if (masked)
        out.append(key, 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        out += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
    return out;
}

// The frames of a compressed message in pieces of `piece` bytes, RSV1 on
// the first only.
std::string compressed_frames(std::string_view compressed, std::size_t piece, bool masked, unsigned op = 0x1) {
    std::string out;
    for (std::size_t at = 0; at == 0 || at < compressed.size(); at += piece) {
        const std::string_view part = compressed.substr(at, piece);
        const bool last = at + piece >= compressed.size();
        out += raw_frame(at == 0 ? op : 0x0, part, last, masked, at == 0 ? 0x40 : 0);
    }
    return out;
}

// One received frame, as a raw peer sees it.
struct raw_frame_seen {
    unsigned char b0 = 0;
    std::string payload; // unmasked
};

// Reads one frame (any length, masked or not).
awaitable<raw_frame_seen> read_raw_frame(tcp::socket& socket, std::string& in) {
    const auto need = [&](std::size_t n) -> awaitable<void> {
        if (in.size() < n)
            co_await asio::async_read(socket, asio::dynamic_buffer(in), asio::transfer_at_least(n - in.size()),
                                      use_awaitable);
    };
    co_await need(2);
    raw_frame_seen f;
    f.b0 = static_cast<unsigned char>(in[0]);
    const bool masked = (in[1] & 0x80) != 0;
    std::uint64_t len = in[1] & 0x7F;
    std::size_t at = 2;
    if (len >= 126) {
        const std::size_t bytes = len == 126 ? 2 : 8;
        co_await need(2 + bytes);
        len = 0;
        for (std::size_t i = 0; i < bytes; ++i)
            len = (len << 8) | static_cast<unsigned char>(in[2 + i]);
        at += bytes;
    }
    char key[4] = {};
    if (masked) {
        co_await need(at + 4);
        std::memcpy(key, in.data() + at, 4);
        at += 4;
    }
    co_await need(at + len);
    f.payload = in.substr(at, len);
    if (masked)
        for (std::size_t i = 0; i < f.payload.size(); ++i)
            f.payload[i] = static_cast<char>(f.payload[i] ^ key[i % 4]);
    in.erase(0, at + len);
    co_return f;
}

// Reads frames until a close; its code, or 0 when the connection ended.
awaitable<int> read_close_code(tcp::socket& socket, std::string& in) {
    for (;;) {
        try {
            const raw_frame_seen f = co_await read_raw_frame(socket, in);
            if ((f.b0 & 0x0F) == 0x8)
                co_return f.payload.size() >= 2 ? (static_cast<unsigned char>(f.payload[0]) << 8) |
                                                      static_cast<unsigned char>(f.payload[1])
                                                : 1005;
        } catch (const std::system_error&) {
            co_return 0;
        }
    }
}

// A server stream on one end of a pair; the raw client on the other has
// done the handshake offering permessage-deflate with `offer`.
struct raw_client_case {
    asio::io_context io;
    socket_pair sockets{io};
    ws_stream server{std::move(sockets.server)};
    std::string in;

    explicit raw_client_case(ws::deflate_server_options so = {.enabled = true}, ws::stream_options limits = {},
                             std::string_view offer = "permessage-deflate; client_max_window_bits") {
        limits.close_timeout = 3s;
        server.options(limits);
        ws::server_options options;
        options.deflate = so;
        std::error_code accept_ec = asio::error::would_block;
        server.async_accept(options, [&](std::error_code ec) { accept_ec = ec; });
        asio::write(sockets.client, asio::buffer(upgrade_request(offer)));
        run(io);
        REQUIRE(accept_ec == std::error_code());
        const std::size_t n = asio::read_until(sockets.client, asio::dynamic_buffer(in), "\r\n\r\n");
        const std::string head = in.substr(0, n);
        in.erase(0, n);
        INFO(head);
        REQUIRE(head.find("Sec-WebSocket-Extensions: permessage-deflate") != std::string::npos);
        REQUIRE(server.deflate().has_value());
    }

    // Sends `frames`, then reads one message at the server: its read's
    // error and the close code the raw side got (0 for none, when the
    // read succeeded and the server closed normally).
    std::pair<std::error_code, std::string> send_and_read(const std::string& frames, int* close_code = nullptr) {
        std::error_code read_ec = asio::error::would_block;
        std::string message;
        server.async_read(message, [&](std::error_code ec, std::size_t) { read_ec = ec; });
        spawn(io, [&]() -> awaitable<void> {
            co_await asio::async_write(sockets.client, asio::buffer(frames), use_awaitable);
            if (close_code) {
                *close_code = co_await read_close_code(sockets.client, in);
                sockets.client.close();
            }
        });
        run(io);
        return {read_ec, message};
    }
};

} // namespace

TEST_CASE("websocket deflate: negotiated when both ends enable it, not otherwise") {
    {
        deflate_pair p({.enabled = true}, {.enabled = true});
        REQUIRE(p.server.deflate().has_value());
        REQUIRE(p.client.deflate().has_value());
        CHECK(p.server.deflate()->server_no_context_takeover); // parley's server default
        CHECK(p.client.deflate()->server_no_context_takeover);
        CHECK_FALSE(p.client.deflate()->client_no_context_takeover);
    }
    {
        deflate_pair p({.enabled = true, .client_no_context_takeover = true, .server_max_window_bits = 12},
                       {.enabled = true});
        REQUIRE(p.client.deflate().has_value());
        CHECK(p.client.deflate()->client_no_context_takeover);
        CHECK(p.server.deflate()->server_max_window_bits == 12);
    }
    for (const bool server_on : {false, true}) {
        deflate_pair p({.enabled = server_on}, {.enabled = !server_on});
        CHECK_FALSE(p.server.deflate().has_value());
        CHECK_FALSE(p.client.deflate().has_value());
        // Messages go uncompressed all the same.
        std::string got;
        std::error_code ec = asio::error::would_block;
        p.client.async_write(ws::message_type::text, asio::buffer(std::string_view("plain")),
                             [](std::error_code, std::size_t) {});
        p.server.async_read(got, [&](std::error_code e, std::size_t) { ec = e; });
        run(p.io);
        CHECK(ec == std::error_code());
        CHECK(got == "plain");
    }
}

TEST_CASE("websocket deflate: compressed messages of several sizes both ways, context takeover on and off, "
          "whole and fragmented") {
    struct sample {
        ws::message_type type;
        std::string data;
    };
    const auto text = ws::message_type::text, binary = ws::message_type::binary;
    const std::vector<sample> messages{{text, ""},           {binary, "x"},          {text, pattern(125)},
                                       {binary, pattern(126)}, {text, pattern(1000)},  {binary, noise(4000)},
                                       {text, pattern(65535)}, {binary, pattern(65536)}, {binary, noise(70000)},
                                       {text, pattern(1u << 20)}};
    struct config {
        bool takeover;
        std::size_t frame_size;
        int window; // both ends' window bits
    };
    for (const config cfg : {config{false, 0, 15}, config{false, 1000, 15}, config{true, 0, 15},
                             config{true, 1000, 15}, config{true, 0, 9}, config{false, 0, 11}}) {
        {
            const bool takeover = cfg.takeover;
            CAPTURE(takeover);
            CAPTURE(cfg.frame_size);
            CAPTURE(cfg.window);
            deflate_pair p({.enabled = true,
                            .server_no_context_takeover = !takeover,
                            .client_max_window_bits = cfg.window},
                           {.enabled = true,
                            .client_no_context_takeover = !takeover,
                            .server_max_window_bits = cfg.window},
                           {.max_message_size = 2u << 20, .max_frame_size = cfg.frame_size});
            REQUIRE(p.server.deflate().has_value());
            CHECK(p.server.deflate()->server_no_context_takeover == !takeover);
            CHECK(p.server.deflate()->client_no_context_takeover == !takeover);
            CHECK(p.server.deflate()->server_max_window_bits == cfg.window);
            CHECK(p.client.deflate()->client_max_window_bits == cfg.window);
            int checked = 0;
            std::string got; // outside: the last read completes after the coroutine
            spawn(p.io, [&]() -> awaitable<void> {
                for (const auto& [type, m] : messages) {
                    co_await p.client.async_write(type, asio::buffer(m), use_awaitable);
                    co_await p.server.async_read(got, use_awaitable);
                    CHECK(got == m);
                    CHECK(p.server.got_text() == (type == ws::message_type::text));
                    co_await p.server.async_write(type, asio::buffer(got), use_awaitable);
                    co_await p.client.async_read(got, use_awaitable);
                    CHECK(got == m);
                    ++checked;
                }
                // The server's read sees the close and answers it.
                p.server.async_read(got, [](std::error_code, std::size_t) {});
                co_await p.client.async_close(ws::close_code::normal, "", use_awaitable);
            });
            run(p.io);
            CHECK(checked == static_cast<int>(messages.size()));
        }
    }
}

TEST_CASE("websocket deflate: the server sets RSV1 on a message's first frame only, never on control frames") {
    raw_client_case c({.enabled = true}, {.max_frame_size = 10});
    const std::string text(100, 'a'); // compresses to a few bytes
    const std::string long_text = pattern(3000);
    std::vector<raw_frame_seen> frames;
    // Outside the coroutines: the server's read completes after they end.
    std::error_code read_ec;
    std::string ignored;
    spawn(c.io, [&]() -> awaitable<void> {
        co_await c.server.async_write(ws::message_type::text, asio::buffer(text), use_awaitable);
        co_await c.server.async_write(ws::message_type::binary, asio::buffer(long_text), use_awaitable);
    });
    spawn(c.io, [&]() -> awaitable<void> {
        // Both messages (two frames with FIN), then a ping's pong, then the close.
        const std::string ping = raw_frame(0x9, "are you there", true, true);
        for (int fins = 0; fins < 2;) {
            frames.push_back(co_await read_raw_frame(c.sockets.client, c.in));
            fins += (frames.back().b0 & 0x80) != 0;
        }
        c.server.async_read(ignored, [&](std::error_code ec, std::size_t) { read_ec = ec; });
        co_await asio::async_write(c.sockets.client, asio::buffer(ping + raw_frame(0x8, "\x03\xe8", true, true)),
                                   use_awaitable);
        raw_frame_seen pong = co_await read_raw_frame(c.sockets.client, c.in);
        CHECK(pong.b0 == 0x8A); // FIN, pong, no RSV1
        CHECK(pong.payload == "are you there");
        raw_frame_seen close = co_await read_raw_frame(c.sockets.client, c.in);
        CHECK(close.b0 == 0x88);
        c.sockets.client.close();
    });
    run(c.io);
    // Reassemble both messages and check the bits frame by frame.
    std::vector<std::string> messages;
    std::string current;
    bool first = true;
    for (const auto& f : frames) {
        const unsigned op = f.b0 & 0x0F;
        CHECK((f.b0 & 0x30) == 0);
        if (first) {
            CHECK((f.b0 & 0x40) != 0); // RSV1 on the first frame
            CHECK((op == 0x1 || op == 0x2));
        } else {
            CHECK((f.b0 & 0x40) == 0);
            CHECK(op == 0x0);
        }
        CHECK(f.payload.size() <= 10);
        current += f.payload;
        first = (f.b0 & 0x80) != 0;
        if (first)
            messages.push_back(inflate_all(std::exchange(current, {})));
    }
    REQUIRE(messages.size() == 2);
    CHECK(messages[0] == text);
    CHECK(messages[1] == long_text);
}

TEST_CASE("websocket deflate: the server inflates fragmented messages with the client's context kept") {
    raw_client_case c({.enabled = true}, {.max_message_size = 1u << 20});
    CHECK_FALSE(c.server.deflate()->client_no_context_takeover);
    ws::deflater client_side(false); // context takeover: later messages refer to earlier ones
    const std::string m = pattern(5000);
    const std::string first = client_side.compress(m);
    const std::string second = client_side.compress(m);
    CHECK(second.size() < first.size() / 2); // it did refer back
    // The second in 3-byte fragments, with a ping between two of them.
    REQUIRE(second.size() > 3);
    std::string frames = compressed_frames(second, 3, true);
    const std::string ping = raw_frame(0x9, "p", true, true);
    frames.insert(raw_frame(0x1, second.substr(0, 3), false, true, 0x40).size(), ping);
    auto [ec1, got1] = c.send_and_read(compressed_frames(first, 1u << 20, true));
    CHECK(ec1 == std::error_code());
    CHECK(got1 == m);
    auto [ec2, got2] = c.send_and_read(frames);
    CHECK(ec2 == std::error_code());
    CHECK(got2 == m);
    CHECK(c.server.got_text());
    // An empty compressed message: one 00 byte.
    auto [ec3, got3] = c.send_and_read(raw_frame(0x2, std::string(1, '\0'), true, true, 0x40));
    CHECK(ec3 == std::error_code());
    CHECK(got3.empty());
    // And an uncompressed one on the same connection (RSV1 clear).
    auto [ec4, got4] = c.send_and_read(raw_frame(0x1, "as is", true, true));
    CHECK(ec4 == std::error_code());
    CHECK(got4 == "as is");
}

TEST_CASE("websocket deflate: bad compressed data is answered with 1007") {
    SUBCASE("not deflate data") {
        raw_client_case c;
        int code = -1;
        auto [ec, got] = c.send_and_read(raw_frame(0x1, "\xff\xff\xff\xff\xff", true, true, 0x40), &code);
        CHECK(ec == ws::deflate_error::corrupt_data);
        CHECK(code == 1007);
    }
    SUBCASE("a final block followed by more bytes") {
        raw_client_case c;
        // 0x03 0x00: an empty final fixed-Huffman block; then junk.
        int code = -1;
        auto [ec, got] = c.send_and_read(raw_frame(0x2, std::string("\x03\x00\x01\x02", 4), true, true, 0x40),
                                         &code);
        CHECK(ec == ws::deflate_error::corrupt_data);
        CHECK(code == 1007);
    }
    SUBCASE("text that inflates to invalid UTF-8") {
        raw_client_case c;
        ws::deflater d;
        int code = -1;
        auto [ec, got] = c.send_and_read(raw_frame(0x1, d.compress("ok \xc0\xaf"), true, true, 0x40), &code);
        CHECK(ec == ws::error::invalid_utf8);
        CHECK(code == 1007);
    }
    SUBCASE("RSV1 on a continuation frame: 1002") {
        raw_client_case c;
        ws::deflater d;
        const std::string z = d.compress("hello hello");
        int code = -1;
        auto [ec, got] = c.send_and_read(raw_frame(0x1, z.substr(0, 3), false, true, 0x40) +
                                             raw_frame(0x0, z.substr(3), true, true, 0x40),
                                         &code);
        CHECK(ec == ws::error::misplaced_compression_bit);
        CHECK(code == 1002);
    }
    SUBCASE("RSV1 on a ping: 1002") {
        raw_client_case c;
        int code = -1;
        auto [ec, got] = c.send_and_read(raw_frame(0x9, "x", true, true, 0x40), &code);
        CHECK(ec == ws::error::misplaced_compression_bit);
        CHECK(code == 1002);
    }
}

TEST_CASE("websocket deflate: a small message inflating past the limit is answered with 1009") {
    raw_client_case c({.enabled = true}, {.max_message_size = 64 * 1024});
    ws::deflater d(true, 15, 9);
    const std::string bomb = d.compress(std::string(16u << 20, '\0')); // 16 MiB of zeros
    CHECK(bomb.size() < 64 * 1024);
    int code = -1;
    auto [ec, got] = c.send_and_read(compressed_frames(bomb, 4096, true, 0x2), &code);
    CHECK(ec == ws::error::message_too_big);
    CHECK(code == 1009);
    CHECK(got.empty());
}

namespace {

// A raw server: accepts the parley client's handshake with
// permessage-deflate, then sends `frames` (unmasked); returns the client's
// read result and the close code the raw side got.
struct client_outcome {
    std::error_code read_ec;
    std::vector<std::string> messages;
    int close_code = -1;
};

client_outcome client_reads(std::string frames, ws::stream_options limits = {}) {
    asio::io_context io;
    socket_pair sockets{io};
    ws_stream client{std::move(sockets.client)};
    limits.close_timeout = 3s;
    client.options(limits);
    client_outcome out;
    out.read_ec = asio::error::would_block;
    ws::client_options hello;
    hello.host = "127.0.0.1";
    hello.target = "/ws";
    hello.deflate.enabled = true;
    spawn(io, [&]() -> awaitable<void> {
        co_await client.async_handshake(hello, use_awaitable);
        CHECK(client.deflate().has_value());
        for (;;) {
            std::string m;
            auto [ec, n] = co_await client.async_read(m, tuple);
            if (ec) {
                out.read_ec = ec;
                break;
            }
            out.messages.push_back(std::move(m));
        }
    });
    spawn(io, [&]() -> awaitable<void> {
        std::string in;
        const std::size_t n = co_await asio::async_read_until(sockets.server, asio::dynamic_buffer(in),
                                                              "\r\n\r\n", use_awaitable);
        const std::string head = in.substr(0, n);
        in.erase(0, n);
        CHECK(head.find("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits") !=
              std::string::npos);
        const auto key_at = head.find("Sec-WebSocket-Key: ") + 19;
        const std::string key = head.substr(key_at, head.find("\r\n", key_at) - key_at);
        const std::string answer = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                                   "Sec-WebSocket-Accept: " +
                                   ws::accept_key(key) + "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
        co_await asio::async_write(sockets.server, asio::buffer(answer + frames), use_awaitable);
        out.close_code = co_await read_close_code(sockets.server, in);
        sockets.server.close();
    });
    run(io);
    return out;
}

} // namespace

TEST_CASE("websocket deflate: the client inflates the server's messages, and refuses bad ones") {
    ws::deflater d(false);
    const std::string m = pattern(20000);
    SUBCASE("whole, then fragmented with context kept") {
        const std::string a = d.compress(m);
        const std::string b = d.compress(m);
        auto out = client_reads(compressed_frames(a, 1u << 20, false) + compressed_frames(b, 5, false) +
                                raw_frame(0x8, "\x03\xe8", true, false));
        CHECK(out.read_ec == ws::error::closed);
        REQUIRE(out.messages.size() == 2);
        CHECK(out.messages[0] == m);
        CHECK(out.messages[1] == m);
        CHECK(out.close_code == 1000);
    }
    SUBCASE("bad data: 1007") {
        auto out = client_reads(raw_frame(0x1, "\xff\xfe\xfd", true, false, 0x40));
        CHECK(out.read_ec == ws::deflate_error::corrupt_data);
        CHECK(out.close_code == 1007);
    }
    SUBCASE("past the limit: 1009") {
        ws::deflater z(true, 15, 9);
        auto out = client_reads(compressed_frames(z.compress(std::string(8u << 20, 'z')), 1u << 20, false, 0x2),
                                {.max_message_size = 1u << 20});
        CHECK(out.read_ec == ws::error::message_too_big);
        CHECK(out.close_code == 1009);
    }
    SUBCASE("a server answering with an extension not offered fails the handshake") {
        asio::io_context io;
        socket_pair sockets{io};
        ws_stream client{std::move(sockets.client)};
        std::error_code hec = asio::error::would_block;
        client.async_handshake("127.0.0.1", "/ws", [&](std::error_code ec) { hec = ec; });
        spawn(io, [&]() -> awaitable<void> {
            std::string in;
            const std::size_t n = co_await asio::async_read_until(sockets.server, asio::dynamic_buffer(in),
                                                                  "\r\n\r\n", use_awaitable);
            const std::string head = in.substr(0, n);
            CHECK(head.find("Sec-WebSocket-Extensions") == std::string::npos); // not enabled: no offer
            const auto key_at = head.find("Sec-WebSocket-Key: ") + 19;
            const std::string key = head.substr(key_at, head.find("\r\n", key_at) - key_at);
            const std::string answer =
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Accept: " +
                ws::accept_key(key) + "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n";
            co_await asio::async_write(sockets.server, asio::buffer(answer), use_awaitable);
            auto [ec, k] = co_await sockets.server.async_read_some(asio::buffer(in), tuple);
            (void)k;
            sockets.server.close();
        });
        run(io);
        CHECK(hec == parley::http::error::unexpected_extension);
    }
}

#else // no zlib

TEST_CASE("websocket deflate: skipped, parley was built without zlib (Debian: apt-get install zlib1g-dev)") {
    parley::test::skip("parley was built without zlib: the stream declines permessage-deflate");
}

#endif
