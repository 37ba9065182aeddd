// Tests for include/parley/websocket/frame_writer.hpp. Included first: the
// header must stand on its own. What the writer builds is read back with
// message_reader (the other role), and checked byte for byte against
// RFC 6455's examples.
#include <parley/websocket/frame_writer.hpp>

#include <parley/websocket/message_reader.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <ostream> // doctest prints std::error_code through it
#include <set>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ws = parley::websocket;
using bytes = std::vector<std::byte>;

namespace {

bytes wire_of(const parley::message_ptr& m) { return {m->wire().begin(), m->wire().end()}; }

std::span<const std::byte> as_span(std::string_view s) { return std::as_bytes(std::span(s)); }

// Reads one frame's worth of events back with the opposite role.
ws::event read_back(ws::role reader_side, bytes& wire, ws::message_reader& reader,
                    std::error_code& ec) {
    ws::reader_options o;
    o.side = reader_side;
    reader = ws::message_reader(o);
    reader.feed(wire);
    return reader.next(ec);
}

struct fixed_key {
    ws::mask_key operator()() const noexcept {
        return {std::byte{0x37}, std::byte{0xfa}, std::byte{0x21}, std::byte{0x3d}};
    }
};

} // namespace

TEST_CASE("websocket frame_writer: an unmasked server text frame, RFC 6455 5.7's \"Hello\"") {
    std::error_code ec;
    const auto m = ws::make_server_text("Hello", ec);
    REQUIRE(!ec);
    const bytes want{std::byte{0x81}, std::byte{0x05}, std::byte{0x48}, std::byte{0x65},
                     std::byte{0x6c}, std::byte{0x6c}, std::byte{0x6f}};
    CHECK(wire_of(m) == want);
    CHECK(m->payload().size() == 5);
    CHECK(m->frame_count() == 1);
}

TEST_CASE("websocket frame_writer: a masked client frame, RFC 6455 5.7's masked \"Hello\"") {
    fixed_key key;
    std::error_code ec;
    const auto m = ws::make_client_frame({ws::opcode::text}, as_span("Hello"), key, ec);
    REQUIRE(!ec);
    const bytes want{std::byte{0x81}, std::byte{0x85}, std::byte{0x37}, std::byte{0xfa},
                     std::byte{0x21}, std::byte{0x3d}, std::byte{0x7f}, std::byte{0x9f},
                     std::byte{0x4d}, std::byte{0x51}, std::byte{0x58}};
    CHECK(wire_of(m) == want);
}

TEST_CASE("websocket frame_writer: every length class reads back, both roles") {
    for (std::size_t len : {0u, 1u, 125u, 126u, 127u, 65535u, 65536u, 70000u}) {
        std::string payload(len, '\0');
        for (std::size_t i = 0; i < len; ++i)
            payload[i] = char('a' + i % 26);
        for (auto side : {ws::role::server, ws::role::client}) {
            CAPTURE(len);
            ws::frame_writer<> writer(side);
            std::error_code ec;
            auto m = writer.text(payload, ec);
            REQUIRE(!ec);
            bytes wire = wire_of(m);
            const std::size_t header = len < 126 ? 2 : len < 65536 ? 4 : 10;
            CHECK(wire.size() == header + (side == ws::role::client ? 4 : 0) + len);
            ws::message_reader reader;
            const auto ev = read_back(side == ws::role::server ? ws::role::client : ws::role::server,
                                      wire, reader, ec);
            REQUIRE(!ec);
            REQUIRE(ev);
            CHECK(ev.kind == ws::event_kind::text);
            CHECK(ev.text() == payload);
        }
    }
}

TEST_CASE("websocket frame_writer: a broadcast is one message shared by every recipient") {
    std::error_code ec;
    const auto m = ws::make_server_text("to everyone", ec);
    REQUIRE(!ec);
    std::vector<parley::message_ptr> queues(1000, m);
    CHECK(m->use_count() == 1001);
    for (const auto& q : queues)
        CHECK(q.get() == m.get());
}

TEST_CASE("websocket frame_writer: a client masks every frame with a fresh key") {
    ws::frame_writer<> writer(ws::role::client);
    std::set<std::vector<std::byte>> keys;
    std::error_code ec;
    for (int i = 0; i < 1000; ++i) {
        const auto m = writer.text("same payload", ec);
        REQUIRE(!ec);
        const auto w = m->wire();
        CHECK((std::to_integer<unsigned>(w[1]) & 0x80) != 0);
        keys.insert({w.begin() + 2, w.begin() + 6});
    }
    // Distinct keys (a repeat among 1,000 random 32-bit keys has odds of about 1 in 10,000).
    CHECK(keys.size() >= 999);
    // Two writers (two connections) start from different keys.
    ws::frame_writer<> other(ws::role::client);
    ws::frame_writer<> third(ws::role::client);
    const auto a = other.text("x", ec), b = third.text("x", ec);
    CHECK(bytes(a->wire().begin() + 2, a->wire().begin() + 6) !=
          bytes(b->wire().begin() + 2, b->wire().begin() + 6));
    // A caller-supplied source is used as given.
    ws::frame_writer<fixed_key> fixed(ws::role::client, fixed_key{});
    const auto c = fixed.text("Hello", ec);
    CHECK(c->wire()[2] == std::byte{0x37});
}

TEST_CASE("websocket frame_writer: control frames") {
    for (auto side : {ws::role::server, ws::role::client}) {
        ws::frame_writer<> writer(side);
        const auto reader_side = side == ws::role::server ? ws::role::client : ws::role::server;
        std::error_code ec;
        ws::message_reader reader;
        // Ping and pong of 0 and 125 bytes; 126 is refused.
        for (std::size_t n : {0u, 125u}) {
            const std::string payload(n, 'p');
            bytes wire = wire_of(writer.ping(as_span(payload), ec));
            REQUIRE(!ec);
            auto ev = read_back(reader_side, wire, reader, ec);
            CHECK(ev.kind == ws::event_kind::ping);
            CHECK(ev.text() == payload);
            wire = wire_of(writer.pong(ev.payload, ec));
            ev = read_back(reader_side, wire, reader, ec);
            CHECK(ev.kind == ws::event_kind::pong);
            CHECK(ev.text() == payload);
        }
        CHECK_FALSE(writer.ping(as_span(std::string(126, 'p')), ec));
        CHECK(ec == ws::error::control_frame_too_long);
        // Close with a code and a reason; with no status; never 1005 with a reason or 1006.
        bytes wire = wire_of(writer.close(ws::close_code::going_away, "server restart", ec));
        REQUIRE(!ec);
        auto ev = read_back(reader_side, wire, reader, ec);
        CHECK(ev.kind == ws::event_kind::close);
        CHECK(ev.code == ws::close_code::going_away);
        CHECK(ev.reason == "server restart");
        wire = wire_of(writer.close(ws::close_code::no_status, "", ec));
        REQUIRE(!ec);
        CHECK(wire.size() == (side == ws::role::client ? 6u : 2u));
        ev = read_back(reader_side, wire, reader, ec);
        CHECK(ev.code == ws::close_code::no_status);
        CHECK_FALSE(writer.close(ws::close_code::abnormal, "", ec));
        CHECK(ec == ws::error::invalid_close_code);
        CHECK_FALSE(writer.close(ws::close_code::normal, std::string(124, 'r'), ec));
        CHECK(ec == ws::error::close_reason_too_long);
    }
}

TEST_CASE("websocket frame_writer: what must not be sent") {
    std::error_code ec;
    // Text that is not UTF-8.
    CHECK_FALSE(ws::make_server_text("\xC0\xAF", ec));
    CHECK(ec == ws::error::invalid_utf8_to_send);
    // A fragmented control frame.
    CHECK_FALSE(ws::make_server_frame({ws::opcode::ping, false}, {}, ec));
    CHECK(ec == ws::error::fragmented_control_frame);
    // RSV1 on a continuation or control frame.
    CHECK_FALSE(ws::make_server_frame({ws::opcode::continuation, true, true}, {}, ec));
    CHECK(ec == ws::error::misplaced_compression_bit);
    CHECK_FALSE(ws::make_server_frame({ws::opcode::pong, true, true}, {}, ec));
    CHECK(ec == ws::error::misplaced_compression_bit);
    // A fragment of text may end inside a character: the caller checks the whole.
    auto m = ws::make_server_frame({ws::opcode::text, false}, as_span("\xE8\xBF"), ec);
    CHECK(!ec);
    CHECK(m);
    // Compressed text is not UTF-8 checked.
    m = ws::make_server_frame({ws::opcode::text, true, true}, as_span("\xFF\x00"), ec);
    CHECK(!ec);
    CHECK((std::to_integer<unsigned>(m->wire()[0]) & 0x40) != 0);
}

TEST_CASE("websocket frame_writer: a fragmented message reads back whole") {
    ws::frame_writer<> writer(ws::role::client);
    std::error_code ec;
    bytes wire;
    const std::string parts[] = {"\xE8", "\xBF\x9E hello ", "world"};
    for (std::size_t i = 0; i < 3; ++i) {
        const ws::frame_spec spec{i == 0 ? ws::opcode::text : ws::opcode::continuation, i == 2};
        const auto m = writer.frame(spec, as_span(parts[i]), ec);
        REQUIRE(!ec);
        wire.insert(wire.end(), m->wire().begin(), m->wire().end());
    }
    ws::message_reader reader;
    const auto ev = read_back(ws::role::server, wire, reader, ec);
    REQUIRE(ev);
    CHECK(ev.text() == "\xE8\xBF\x9E hello world");
}
