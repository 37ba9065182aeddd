// Tests for include/parley/websocket/message_reader.hpp. Included first:
// the header must stand on its own.
//
// Conformance cases modelled on the Autobahn testsuite's case list,
// sections 1 (framing), 2 (pings and pongs), 3 (reserved bits), 4
// (opcodes), 5 (fragmentation), 6 (UTF-8, fail-fast), 7 (close) and 9
// (limits), as far as they concern the receiving side; each is fed whole,
// in 1-byte chunks and at every split point, in both delivery modes.
// Frames are built here by hand from RFC 6455's picture, not with the
// library's writer.
#include <parley/websocket/message_reader.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ws = parley::websocket;
using bytes = std::vector<std::byte>;
using ws::event_kind;

namespace {

std::string to_string(std::span<const std::byte> b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

struct frame_spec {
    unsigned opcode = 1;
    std::string payload;
    bool fin = true;
    unsigned rsv = 0; // 0x40, 0x20, 0x10
};

// One frame on the wire; masked with a key derived from `seed` when `masked`.
bytes encode(const frame_spec& f, bool masked, unsigned seed = 1) {
    bytes w{std::byte((f.fin ? 0x80 : 0) | f.rsv | f.opcode)};
    const std::uint64_t len = f.payload.size();
    const unsigned m = masked ? 0x80 : 0;
    if (len < 126) {
        w.push_back(std::byte(m | len));
    } else if (len < 65536) {
        w.push_back(std::byte(m | 126));
        w.push_back(std::byte(len >> 8));
        w.push_back(std::byte(len & 0xFF));
    } else {
        w.push_back(std::byte(m | 127));
        for (int i = 7; i >= 0; --i)
            w.push_back(std::byte((len >> (8 * i)) & 0xFF));
    }
    std::byte key[4] = {std::byte(0x11 * seed + 3), std::byte(0x5A ^ seed), std::byte(seed * 7),
                        std::byte(0xC3 + seed)};
    if (masked)
        w.insert(w.end(), key, key + 4);
    for (std::size_t i = 0; i < f.payload.size(); ++i)
        w.push_back(std::byte(f.payload[i]) ^ (masked ? key[i % 4] : std::byte{0}));
    return w;
}

bytes stream(const std::vector<frame_spec>& frames, bool masked) {
    bytes all;
    unsigned seed = 1;
    for (const auto& f : frames) {
        const bytes w = encode(f, masked, seed++);
        all.insert(all.end(), w.begin(), w.end());
    }
    return all;
}

std::string close_payload(unsigned code, std::string_view reason = {}) {
    std::string p{char(code >> 8), char(code & 0xFF)};
    return p + std::string(reason);
}

// What came out, copied, with data pieces joined into messages.
struct recorded {
    event_kind kind = event_kind::none;
    std::string payload{};
    unsigned code = 0;
    std::string reason{};
    bool operator==(const recorded&) const = default;
};

struct outcome {
    std::vector<recorded> events;
    std::error_code ec;
    std::size_t error_at = 0; // input bytes fed when the error came
    std::size_t pieces = 0;   // data events seen
    bool operator==(const outcome& o) const { return events == o.events && ec == o.ec; }
};

doctest::String toString(const outcome& o) {
    std::string s = "events:";
    for (const auto& e : o.events)
        s += " " + std::to_string(int(e.kind)) + "(" + std::to_string(e.payload.size()) + ")";
    s += " error: " + o.ec.message();
    return s.c_str();
}

ws::reader_options options(ws::role side, ws::delivery mode = ws::delivery::whole,
                           std::uint64_t max = 1 << 20) {
    ws::reader_options o;
    o.side = side;
    o.mode = mode;
    o.max_message_size = max;
    return o;
}

// Feeds `wire` to a fresh reader in chunks cut at `cuts` (each chunk a
// private copy, so a view kept too long shows up under ASan) and records
// what comes out. Data pieces are joined; their first/last flags checked.
outcome run(const bytes& wire, const ws::reader_options& opts, const std::vector<std::size_t>& cuts) {
    ws::message_reader reader(opts);
    outcome r;
    std::optional<recorded> partial;
    std::size_t start = 0;
    auto drain = [&](std::size_t end) {
        bytes chunk(wire.begin() + static_cast<std::ptrdiff_t>(start),
                    wire.begin() + static_cast<std::ptrdiff_t>(end));
        start = end;
        reader.feed(chunk);
        std::error_code ec;
        while (auto ev = reader.next(ec)) {
            REQUIRE(!ec);
            if (ev.is_data()) {
                ++r.pieces;
                CHECK(ev.first == !partial.has_value());
                if (opts.mode == ws::delivery::whole)
                    CHECK((ev.first && ev.last));
                if (!partial)
                    partial = recorded{ev.kind, {}, 0, {}};
                CHECK(partial->kind == ev.kind);
                partial->payload += to_string(ev.payload);
                if (ev.last) {
                    r.events.push_back(*partial);
                    partial.reset();
                }
            } else {
                const bool is_close = ev.kind == event_kind::close;
                r.events.push_back({ev.kind, to_string(ev.payload),
                                    is_close ? static_cast<unsigned>(ev.code) : 0u,
                                    std::string(ev.reason)});
            }
        }
        if (ec && !r.ec) {
            r.ec = ec;
            r.error_at = end;
            CHECK(reader.last_error() == ec);
        }
    };
    for (std::size_t c : cuts)
        drain(c);
    drain(wire.size());
    return r;
}

outcome run_whole(const bytes& wire, const ws::reader_options& opts) { return run(wire, opts, {}); }

// Runs `wire` whole, byte by byte and split at every point (two chunks),
// in both delivery modes, and checks every run gives the same outcome,
// which it returns (from the whole run in whole mode).
outcome run_every_way(const bytes& wire, ws::role side, std::uint64_t max = 1 << 20) {
    const outcome want = run_whole(wire, options(side, ws::delivery::whole, max));
    for (auto mode : {ws::delivery::whole, ws::delivery::pieces}) {
        const auto opts = options(side, mode, max);
        CHECK(run_whole(wire, opts) == want);
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < wire.size(); ++i)
            every.push_back(i);
        CHECK(run(wire, opts, every) == want);
        if (wire.size() <= 4096) {
            for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
                const outcome got = run(wire, opts, {cut});
                if (!(got == want)) {
                    CAPTURE(cut);
                    CHECK(got == want);
                    break;
                }
            }
        }
    }
    return want;
}

recorded text(std::string s) { return {event_kind::text, std::move(s), 0, {}}; }
recorded binary(std::string s) { return {event_kind::binary, std::move(s), 0, {}}; }
recorded ping(std::string s) { return {event_kind::ping, std::move(s), 0, {}}; }
recorded pong(std::string s) { return {event_kind::pong, std::move(s), 0, {}}; }
recorded close_event(unsigned code, std::string reason = {}) {
    std::string payload = code == 1005 ? std::string() : close_payload(code, reason);
    return {event_kind::close, payload, code, std::move(reason)};
}

std::string filler(std::size_t n, char c = '*') { return std::string(n, c); }

} // namespace

// --- Section 1: framing -----------------------------------------------------

TEST_CASE("websocket message_reader: text and binary messages of 0 to 65536 bytes (Autobahn 1.1, 1.2)") {
    for (std::size_t len : {0u, 125u, 126u, 127u, 128u, 65535u, 65536u}) {
        for (auto side : {ws::role::server, ws::role::client}) {
            CAPTURE(len);
            const bool masked = side == ws::role::server;
            std::string payload(len, '\0');
            for (std::size_t i = 0; i < len; ++i)
                payload[i] = char('a' + i % 26);
            auto out = run_every_way(stream({{1, payload}}, masked), side);
            CHECK(out.events == std::vector<recorded>{text(payload)});
            CHECK(!out.ec);
            std::string bin(len, '\0');
            for (std::size_t i = 0; i < len; ++i)
                bin[i] = char(0xFE - i % 7);
            out = run_every_way(stream({{2, bin}}, masked), side);
            CHECK(out.events == std::vector<recorded>{binary(bin)});
        }
    }
}

TEST_CASE("websocket message_reader: 65536 bytes fed in 997-byte chunks (Autobahn 1.1.8, 1.2.8)") {
    const std::string payload = filler(65536, 'x');
    const bytes wire = stream({{2, payload}}, true);
    std::vector<std::size_t> cuts;
    for (std::size_t c = 997; c < wire.size(); c += 997)
        cuts.push_back(c);
    for (auto mode : {ws::delivery::whole, ws::delivery::pieces}) {
        const auto out = run(wire, options(ws::role::server, mode), cuts);
        CHECK(out.events == std::vector<recorded>{binary(payload)});
        if (mode == ws::delivery::pieces)
            CHECK(out.pieces == cuts.size() + 1);
    }
}

TEST_CASE("websocket message_reader: masking for the role") {
    auto out = run_every_way(stream({{1, "hello"}}, false), ws::role::server);
    CHECK(out.ec == ws::error::unmasked_client_frame);
    CHECK(out.events.empty());
    out = run_every_way(stream({{1, "hello"}}, true), ws::role::client);
    CHECK(out.ec == ws::error::masked_server_frame);
    ws::message_reader reader(options(ws::role::client));
    bytes wire = stream({{1, "hello"}}, true);
    reader.feed(wire);
    std::error_code ec;
    CHECK_FALSE(reader.next(ec));
    CHECK(reader.close_code_to_send() == ws::close_code::protocol_error);
}

// --- Section 2: pings and pongs ----------------------------------------------

TEST_CASE("websocket message_reader: pings and pongs (Autobahn 2.1-2.4, 2.6-2.10)") {
    // 2.1 empty ping; 2.2 text payload; 2.3 binary payload; 2.4 125 bytes.
    for (std::string payload : {std::string(), std::string("Hello, world!"),
                                std::string("\x00\xff\xfe\xfd\xfc\xfb\x00\xff", 8), filler(125)}) {
        const auto out = run_every_way(stream({{9, payload}}, true), ws::role::server);
        CHECK(out.events == std::vector<recorded>{ping(payload)});
        CHECK(!out.ec);
    }
    // 2.7, 2.8: unsolicited pongs are reported, nothing else; 2.9: pong then ping.
    auto out = run_every_way(stream({{10, ""}, {10, "unsolicited"}, {9, "ping!"}}, true),
                             ws::role::server);
    CHECK(out.events == std::vector<recorded>{pong(""), pong("unsolicited"), ping("ping!")});
    // 2.10: ten pings in a row, each answered in order.
    std::vector<frame_spec> pings;
    std::vector<recorded> want;
    for (int i = 0; i < 10; ++i) {
        pings.push_back({9, "payload-" + std::to_string(i)});
        want.push_back(ping("payload-" + std::to_string(i)));
    }
    CHECK(run_every_way(stream(pings, false), ws::role::client).events == want);
}

TEST_CASE("websocket message_reader: a 126-byte ping is a protocol error (Autobahn 2.5)") {
    const auto out = run_every_way(stream({{9, filler(126)}}, true), ws::role::server);
    CHECK(out.events.empty());
    CHECK(out.ec == ws::error::control_frame_too_long);
    CHECK(ws::close_code_for(out.ec) == ws::close_code::protocol_error);
}

// --- Section 3: reserved bits ------------------------------------------------

TEST_CASE("websocket message_reader: reserved bits fail the connection (Autobahn 3.1-3.7)") {
    struct reserved_case {
        unsigned opcode, rsv;
    };
    for (auto c : {reserved_case{1, 0x20}, reserved_case{1, 0x40}, reserved_case{1, 0x10},
                   reserved_case{1, 0x60}, reserved_case{2, 0x50}, reserved_case{9, 0x30},
                   reserved_case{8, 0x70}}) {
        CAPTURE(c.opcode);
        CAPTURE(c.rsv);
        // A good message first, then the bad frame, then one that must not be read.
        const bytes wire = stream({{1, "Hello, world!"}, {c.opcode, c.opcode == 8 ? close_payload(1000) : "x", true, c.rsv},
                                   {9, "after"}},
                                  true);
        const auto out = run_every_way(wire, ws::role::server);
        CHECK(out.events == std::vector<recorded>{text("Hello, world!")});
        CHECK(out.ec == ws::error::reserved_bits);
    }
}

TEST_CASE("websocket message_reader: RSV1 marks a compressed message when deflate is negotiated") {
    auto opts = options(ws::role::server);
    opts.compression = true;
    // Compressed bytes are not UTF-8 checked by the reader.
    const bytes wire = stream({{1, "\xF2\x48\xCD\xC9", false, 0x40}, {0, "\xC9\x07\x00", true}}, true);
    ws::message_reader reader(opts);
    bytes copy = wire;
    reader.feed(copy);
    std::error_code ec;
    auto ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(ev.kind == event_kind::text);
    CHECK(ev.compressed);
    CHECK(ev.text() == "\xF2\x48\xCD\xC9\xC9\x07\x00");
    // RSV1 on a continuation is refused.
    const bytes bad = stream({{1, "a", false, 0x40}, {0, "b", true, 0x40}}, true);
    copy = bad;
    ws::message_reader second(opts);
    second.feed(copy);
    while (second.next(ec)) {
    }
    CHECK(ec == ws::error::misplaced_compression_bit);
}

// --- Section 4: opcodes ------------------------------------------------------

TEST_CASE("websocket message_reader: reserved opcodes fail the connection (Autobahn 4.1, 4.2)") {
    for (unsigned op : {3u, 4u, 5u, 6u, 7u, 11u, 12u, 13u, 14u, 15u}) {
        CAPTURE(op);
        // Alone, with a payload, after a text message, after a text and a ping.
        CHECK(run_every_way(stream({{op, ""}}, true), ws::role::server).ec == ws::error::bad_opcode);
        CHECK(run_every_way(stream({{op, "reserved payload"}}, true), ws::role::server).ec ==
              ws::error::bad_opcode);
        const auto out = run_every_way(
            stream({{1, "Hello, world!"}, {9, "p"}, {op, "x"}, {9, "never"}}, true), ws::role::server);
        CHECK(out.events == std::vector<recorded>{text("Hello, world!"), ping("p")});
        CHECK(out.ec == ws::error::bad_opcode);
        CHECK(ws::close_code_for(out.ec) == ws::close_code::protocol_error);
    }
}

// --- Section 5: fragmentation ------------------------------------------------

TEST_CASE("websocket message_reader: fragmented control frames are refused (Autobahn 5.1, 5.2)") {
    for (unsigned op : {9u, 10u}) {
        const auto out = run_every_way(stream({{op, "frag", false}, {0, "ment", true}}, true),
                                       ws::role::server);
        CHECK(out.events.empty());
        CHECK(out.ec == ws::error::fragmented_control_frame);
    }
}

TEST_CASE("websocket message_reader: fragmented messages, with control frames between (Autobahn 5.3-5.8, 5.19, 5.20)") {
    auto out = run_every_way(stream({{1, "frag", false}, {0, "ment1", true}}, true), ws::role::server);
    CHECK(out.events == std::vector<recorded>{text("fragment1")});
    out = run_every_way(
        stream({{1, "frag", false}, {9, "ping between"}, {0, "ment1", true}}, true), ws::role::server);
    CHECK(out.events == std::vector<recorded>{ping("ping between"), text("fragment1")});
    // Five fragments with pings and pongs between.
    out = run_every_way(stream({{1, "f1", false},
                                {0, "f2", false},
                                {9, "p1"},
                                {0, "f3", false},
                                {10, "unsolicited"},
                                {0, "f4", false},
                                {9, "p2"},
                                {0, "f5", true}},
                               false),
                        ws::role::client);
    CHECK(out.events == std::vector<recorded>{ping("p1"), pong("unsolicited"), ping("p2"),
                                              text("f1f2f3f4f5")});
    // Empty fragments (Autobahn 6.1.2, 6.1.3).
    out = run_every_way(stream({{1, "", false}, {0, "", false}, {0, "", true}}, true),
                        ws::role::server);
    CHECK(out.events == std::vector<recorded>{text("")});
    out = run_every_way(stream({{2, "", false}, {0, "middle", false}, {0, "", true}}, true),
                        ws::role::server);
    CHECK(out.events == std::vector<recorded>{binary("middle")});
}

TEST_CASE("websocket message_reader: continuation without a start (Autobahn 5.9-5.14)") {
    for (bool fin : {true, false}) {
        const auto out = run_every_way(
            stream({{0, "non-continuation payload", fin}, {1, "Hello, world!"}}, true),
            ws::role::server);
        CHECK(out.events.empty());
        CHECK(out.ec == ws::error::continuation_without_start);
        CHECK(ws::close_code_for(out.ec) == ws::close_code::protocol_error);
    }
}

TEST_CASE("websocket message_reader: continuation after a finished message (Autobahn 5.15-5.17)") {
    auto out = run_every_way(stream({{1, "fragment1", false},
                                     {0, "fragment2", true},
                                     {0, "fragment3", false},
                                     {1, "fragment4", true}},
                                    true),
                             ws::role::server);
    CHECK(out.events == std::vector<recorded>{text("fragment1fragment2")});
    CHECK(out.ec == ws::error::continuation_without_start);
    out = run_every_way(stream({{0, "fragment1", false}, {1, "fragment2", false}}, true),
                        ws::role::server);
    CHECK(out.ec == ws::error::continuation_without_start);
}

TEST_CASE("websocket message_reader: a new message inside a fragmented one (Autobahn 5.18)") {
    const auto out = run_every_way(stream({{1, "fragment1", false}, {1, "fragment2", true}}, true),
                                   ws::role::server);
    CHECK(out.events.empty());
    CHECK(out.ec == ws::error::message_not_finished);
    CHECK(ws::close_code_for(out.ec) == ws::close_code::protocol_error);
}

// --- Section 6: UTF-8 --------------------------------------------------------

TEST_CASE("websocket message_reader: valid UTF-8 split inside characters across frames (Autobahn 6.2)") {
    const std::string hello = "Hello-\xC2\xB5@\xC3\x9F\xC3\xB6\xC3\xA4\xC3\xBC\xC3\xA0\xC3\xA1-UTF-8!!";
    // One frame per byte: every character is split across frames.
    std::vector<frame_spec> frames;
    for (std::size_t i = 0; i < hello.size(); ++i)
        frames.push_back({i == 0 ? 1u : 0u, hello.substr(i, 1), i + 1 == hello.size()});
    auto out = run_every_way(stream(frames, true), ws::role::server);
    CHECK(out.events == std::vector<recorded>{text(hello)});
    CHECK(!out.ec);
    // U+10FFFF (the last code point) and a noncharacter are valid.
    out = run_every_way(stream({{1, "\xF4\x8F", false}, {0, "\xBF\xBF\xEF\xBF\xBE", true}}, true),
                        ws::role::server);
    CHECK(out.events == std::vector<recorded>{text("\xF4\x8F\xBF\xBF\xEF\xBF\xBE")});
}

TEST_CASE("websocket message_reader: invalid UTF-8 fails fast, on the first bad byte (Autobahn 6.3, 6.4)") {
    const std::string part1 = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"; // valid
    const std::string part2 = "\xF4\x90\x80\x80"; // above U+10FFFF, bad at 0x90
    const std::string part3 = "edited";
    for (auto mode : {ws::delivery::whole, ws::delivery::pieces}) {
        for (bool masked : {true, false}) {
            const auto side = masked ? ws::role::server : ws::role::client;
            // 6.4.1: three fragments: the second fails, the third is never needed.
            const bytes f1 = encode({1, part1, false}, masked, 1);
            const bytes f2 = encode({0, part2, false}, masked, 2);
            bytes wire = f1;
            wire.insert(wire.end(), f2.begin(), f2.end());
            const bytes f3 = encode({0, part3, true}, masked, 3);
            wire.insert(wire.end(), f3.begin(), f3.end());
            // Fed byte by byte: the error comes with the 0x90, the second
            // payload byte of the second frame.
            std::vector<std::size_t> every;
            for (std::size_t i = 1; i < wire.size(); ++i)
                every.push_back(i);
            const auto out = run(wire, options(side, mode), every);
            CHECK(out.ec == ws::error::invalid_utf8);
            CHECK(ws::close_code_for(out.ec) == ws::close_code::invalid_payload);
            CHECK(out.error_at == f1.size() + (f2.size() - part2.size()) + 2);
            CHECK(out.events.empty());

            // 6.4.3: one frame, its payload fed in three chunks: valid, the
            // bad sequence, the rest. The error comes with the second chunk.
            const bytes one = encode({1, part1 + part2 + part3}, masked, 4);
            const std::size_t header = one.size() - (part1 + part2 + part3).size();
            const auto out2 = run(one, options(side, mode),
                                  {header + part1.size(), header + part1.size() + part2.size()});
            CHECK(out2.ec == ws::error::invalid_utf8);
            CHECK(out2.error_at == header + part1.size() + part2.size());
        }
    }
}

TEST_CASE("websocket message_reader: malformed UTF-8 samples are refused with 1007 (Autobahn 6.5-6.21)") {
    for (std::string_view bad :
         {std::string_view("\x80"), std::string_view("\xC0\xAF"), std::string_view("\xE0\x80\xAF"),
          std::string_view("\xF0\x80\x80\xAF"), std::string_view("\xED\xA0\x80"),
          std::string_view("\xED\xA0\x80\xED\xB0\x80"), std::string_view("\xFE"),
          std::string_view("\xFF\xFF"), std::string_view("\xC2"), // truncated at the end
          std::string_view("\xF8\x88\x80\x80\x80"), std::string_view("\xC0 \xC1 ")}) {
        CAPTURE(bad);
        const auto out = run_every_way(stream({{1, std::string(bad)}}, true), ws::role::server);
        CHECK(out.events.empty());
        CHECK(out.ec == ws::error::invalid_utf8);
        // The same bytes as a binary message are fine.
        CHECK(run_every_way(stream({{2, std::string(bad)}}, true), ws::role::server).events ==
              std::vector<recorded>{binary(std::string(bad))});
    }
    // A truncated character at the end of a fragmented message fails on
    // its final frame.
    const auto out = run_every_way(stream({{1, "ok", false}, {0, "\xE2\x82", true}}, true),
                                   ws::role::server);
    CHECK(out.ec == ws::error::invalid_utf8);
}

// --- Section 7: close --------------------------------------------------------

TEST_CASE("websocket message_reader: close payloads (Autobahn 7.3)") {
    // 7.3.1 empty: no status.
    auto out = run_every_way(stream({{8, ""}}, true), ws::role::server);
    CHECK(out.events == std::vector<recorded>{close_event(1005)});
    CHECK(!out.ec);
    // 7.3.2 one byte.
    out = run_every_way(stream({{8, "a"}}, true), ws::role::server);
    CHECK(out.ec == ws::error::close_payload_one_byte);
    CHECK(ws::close_code_for(out.ec) == ws::close_code::protocol_error);
    // 7.3.3 code only; 7.3.4 code and reason; 7.3.5 123-byte reason.
    out = run_every_way(stream({{8, close_payload(1000)}}, true), ws::role::server);
    CHECK(out.events == std::vector<recorded>{close_event(1000)});
    out = run_every_way(stream({{8, close_payload(1000, "Hello World!")}}, true), ws::role::server);
    CHECK(out.events == std::vector<recorded>{close_event(1000, "Hello World!")});
    out = run_every_way(stream({{8, close_payload(1000, filler(123))}}, false), ws::role::client);
    CHECK(out.events == std::vector<recorded>{close_event(1000, filler(123))});
    // 7.3.6 124-byte reason: a 126-byte control frame.
    out = run_every_way(stream({{8, close_payload(1000, filler(124))}}, true), ws::role::server);
    CHECK(out.ec == ws::error::control_frame_too_long);
    // 7.5.1 a reason that is not UTF-8: 1007.
    out = run_every_way(
        stream({{8, close_payload(1000, "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5\xED\xA0\x80"
                                        "\x65\x64\x69\x74\x65\x64")}},
               true),
        ws::role::server);
    CHECK(out.ec == ws::error::invalid_close_reason);
    CHECK(ws::close_code_for(out.ec) == ws::close_code::invalid_payload);
}

TEST_CASE("websocket message_reader: valid and invalid close codes (Autobahn 7.7, 7.9, 7.13)") {
    for (unsigned code : {1000u, 1001u, 1002u, 1003u, 1007u, 1008u, 1009u, 1010u, 1011u, 3000u,
                          3999u, 4000u, 4999u}) {
        CAPTURE(code);
        const auto out = run_every_way(stream({{8, close_payload(code)}}, true), ws::role::server);
        CHECK(out.events == std::vector<recorded>{close_event(code)});
        CHECK(!out.ec);
    }
    for (unsigned code : {0u, 999u, 1004u, 1005u, 1006u, 1016u, 1100u, 2000u, 2999u, 5000u, 65535u}) {
        CAPTURE(code);
        const auto out = run_every_way(stream({{8, close_payload(code)}}, true), ws::role::server);
        CHECK(out.events.empty());
        CHECK(out.ec == ws::error::invalid_close_code);
        CHECK(ws::close_code_for(out.ec) == ws::close_code::protocol_error);
    }
}

TEST_CASE("websocket message_reader: nothing is accepted after the close (Autobahn 7.1)") {
    // 7.1.2-7.1.4: a close, then a close, a ping or a text.
    for (frame_spec after : {frame_spec{8, close_payload(1000)}, frame_spec{9, "ping"},
                             frame_spec{1, "text"}}) {
        const auto out = run_every_way(stream({{8, close_payload(1000)}, after}, true),
                                       ws::role::server);
        CHECK(out.events == std::vector<recorded>{close_event(1000)});
        CHECK(out.ec == ws::error::data_after_close);
    }
    // 7.1.5: a close between the fragments of a message ends it unfinished.
    const auto out = run_every_way(
        stream({{1, "fragment1", false}, {8, close_payload(1000)}, {0, "fragment2", true}}, true),
        ws::role::server);
    CHECK(out.events == std::vector<recorded>{close_event(1000)});
    CHECK(out.ec == ws::error::data_after_close);

    ws::message_reader reader(options(ws::role::server));
    bytes wire = stream({{8, close_payload(1001, "bye")}}, true);
    reader.feed(wire);
    std::error_code ec;
    const auto ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(ev.code == ws::close_code::going_away);
    CHECK(ev.reason == "bye");
    CHECK(reader.closed());
    CHECK_FALSE(reader.next(ec)); // nothing more, no error while nothing is fed
    CHECK(!ec);
    reader.finish(ec);
    CHECK(!ec);
}

// --- Section 9: limits -------------------------------------------------------

TEST_CASE("websocket message_reader: large messages in frames and chunks of many sizes (Autobahn 9.1-9.6)") {
    const std::size_t size = 1 << 20; // 1 MiB (9.x go to 16 MiB; the logic is the same)
    std::string payload(size, '\0');
    for (std::size_t i = 0; i < size; ++i)
        payload[i] = char('A' + i % 23);
    for (std::size_t frame_size : {std::size_t{64}, std::size_t{4096}, std::size_t{65536}, size}) {
        std::vector<frame_spec> frames;
        for (std::size_t pos = 0; pos < size; pos += frame_size)
            frames.push_back({pos == 0 ? 1u : 0u, payload.substr(pos, frame_size),
                              pos + frame_size >= size});
        const bytes wire = stream(frames, true);
        for (std::size_t chop : {64u, 1000u, 65536u}) {
            std::vector<std::size_t> cuts;
            for (std::size_t c = chop; c < wire.size(); c += chop)
                cuts.push_back(c);
            for (auto mode : {ws::delivery::whole, ws::delivery::pieces}) {
                CAPTURE(frame_size);
                CAPTURE(chop);
                const auto out = run(wire, options(ws::role::server, mode, size), cuts);
                REQUIRE(out.events.size() == 1);
                CHECK(out.events[0].payload == payload);
                CHECK(!out.ec);
            }
        }
    }
}

TEST_CASE("websocket message_reader: the size limit is checked from the headers, before buffering") {
    const std::uint64_t limit = 1000;
    // One frame just over the limit: refused when its length field is read.
    bytes wire = stream({{2, filler(1001)}}, true);
    auto out = run(wire, options(ws::role::server, ws::delivery::whole, limit), {4, 5});
    CHECK(out.ec == ws::error::message_too_big);
    CHECK(ws::close_code_for(out.ec) == ws::close_code::message_too_big);
    CHECK(out.error_at == 4);
    CHECK(run_every_way(stream({{2, filler(1000)}}, true), ws::role::server, limit).events ==
          std::vector<recorded>{binary(filler(1000))});
    // Fragments adding up past the limit: refused at the header that crosses it.
    wire = stream({{1, filler(600), false}, {9, "p"}, {0, filler(401), true}}, true);
    out = run_every_way(wire, ws::role::server, limit);
    CHECK(out.events == std::vector<recorded>{ping("p")});
    CHECK(out.ec == ws::error::message_too_big);
    CHECK(run_every_way(stream({{1, filler(600), false}, {0, filler(400), true}}, true),
                        ws::role::server, limit)
              .events == std::vector<recorded>{text(filler(1000))});

    // A peer announcing 2^62 bytes costs nothing: no byte is buffered.
    ws::message_reader reader(options(ws::role::client));
    bytes huge{std::byte{0x82}, std::byte{127}, std::byte{0x40}, std::byte{0}, std::byte{0},
               std::byte{0},    std::byte{0},   std::byte{0},    std::byte{0}, std::byte{0}};
    reader.feed(huge);
    std::error_code ec;
    CHECK_FALSE(reader.next(ec));
    CHECK(ec == ws::error::message_too_big);
    CHECK(reader.buffered() == 0);
    // The error is sticky.
    bytes good = stream({{1, "hi"}}, false);
    reader.feed(good);
    CHECK_FALSE(reader.next(ec));
    CHECK(ec == ws::error::message_too_big);
}

TEST_CASE("websocket message_reader: ping payloads of every size up to 125 bytes in 1-byte chunks (Autobahn 2.6)") {
    for (std::size_t n = 0; n <= 125; n += 5) {
        std::string payload(n, '\0');
        for (std::size_t i = 0; i < n; ++i)
            payload[i] = char(i * 3);
        const bytes wire = stream({{9, payload}}, true);
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < wire.size(); ++i)
            every.push_back(i);
        CHECK(run(wire, options(ws::role::server), every).events == std::vector<recorded>{ping(payload)});
    }
}

// --- Ownership, delivery, end of input ----------------------------------------

TEST_CASE("websocket message_reader: who owns the bytes") {
    // A message in one frame inside one chunk: a view of the caller's
    // buffer, unmasked in place.
    const bytes original = stream({{1, "in place"}}, true);
    bytes wire = original;
    ws::message_reader reader(options(ws::role::server));
    reader.feed(wire);
    std::error_code ec;
    auto ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(ev.payload.data() == wire.data() + 6);
    CHECK(ev.text() == "in place");
    CHECK(reader.buffered() == 0);
    CHECK(wire != original); // unmasked in place: the caller's buffer changed

    // Split across chunks: gathered in the reader's buffer.
    bytes part1(original.begin(), original.begin() + 9), part2(original.begin() + 9, original.end());
    reader.reset();
    reader.feed(part1);
    CHECK_FALSE(reader.next(ec));
    CHECK(reader.buffered() == 3);
    reader.feed(part2);
    ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(ev.text() == "in place");
    CHECK(ev.payload.data() != part2.data() + 0);
    CHECK_FALSE(reader.next(ec));
    CHECK(reader.buffered() == 0); // released on the next call

    // Pieces mode never gathers.
    part1.assign(original.begin(), original.begin() + 9);
    part2.assign(original.begin() + 9, original.end());
    ws::message_reader pieces(options(ws::role::server, ws::delivery::pieces));
    pieces.feed(part1);
    ev = pieces.next(ec);
    REQUIRE(ev);
    CHECK(ev.first);
    CHECK_FALSE(ev.last);
    CHECK(ev.text() == "in ");
    CHECK(ev.payload.data() == part1.data() + 6);
    CHECK_FALSE(pieces.next(ec));
    CHECK(pieces.buffered() == 0);
    CHECK(pieces.in_message());
    pieces.feed(part2);
    ev = pieces.next(ec);
    REQUIRE(ev);
    CHECK_FALSE(ev.first);
    CHECK(ev.last);
    CHECK(ev.text() == "place");
    CHECK_FALSE(pieces.in_message());
}

TEST_CASE("websocket message_reader: the end of the input") {
    std::error_code ec;
    ws::message_reader reader(options(ws::role::server));
    reader.finish(ec);
    CHECK(!ec); // nothing started: a clean end (the stream reports 1006)

    bytes wire = stream({{1, "abc", false}, {0, "def", true}}, true);
    for (std::size_t cut = 1; cut < wire.size(); ++cut) {
        reader.reset();
        bytes part(wire.begin(), wire.begin() + static_cast<std::ptrdiff_t>(cut));
        reader.feed(part);
        while (reader.next(ec)) {
        }
        REQUIRE(!ec);
        reader.finish(ec);
        CAPTURE(cut);
        CHECK(ec == ws::error::truncated);
    }
    reader.reset();
    reader.feed(wire);
    while (reader.next(ec)) {
    }
    reader.finish(ec);
    CHECK(!ec);
}

TEST_CASE("websocket message_reader: random valid streams give the same events however they are cut") {
    std::mt19937 rng(13);
    for (int round = 0; round < 200; ++round) {
        const bool masked = round % 2 == 0;
        const auto side = masked ? ws::role::server : ws::role::client;
        std::vector<frame_spec> frames;
        std::vector<recorded> want;
        const int messages = 1 + static_cast<int>(rng() % 6);
        for (int m = 0; m < messages; ++m) {
            const bool is_text = rng() % 2;
            const int pieces = 1 + static_cast<int>(rng() % 4);
            std::string whole;
            for (int p = 0; p < pieces; ++p) {
                std::string part;
                const std::size_t len = rng() % 3 == 0 ? rng() % 300 : rng() % 10;
                // Text from whole characters (6.2 above splits inside them).
                static const std::string_view chars[] = {"a", "\xC3\xA9", "\xE8\xBF\x9E"};
                for (std::size_t i = 0; i < len; ++i)
                    part += is_text ? std::string(chars[rng() % 3]) : std::string(1, char(rng()));
                whole += part;
                frames.push_back({p == 0 ? (is_text ? 1u : 2u) : 0u, part, p + 1 == pieces});
                if (rng() % 4 == 0 && p + 1 < pieces) {
                    frames.push_back({9, "between"});
                    want.push_back(ping("between"));
                }
            }
            want.push_back(is_text ? text(whole) : binary(whole));
        }
        const bytes wire = stream(frames, masked);
        for (auto mode : {ws::delivery::whole, ws::delivery::pieces}) {
            for (int cutting = 0; cutting < 5; ++cutting) {
                std::vector<std::size_t> cuts;
                for (std::size_t pos = 0;;) {
                    pos += 1 + rng() % (cutting == 0 ? 2 : 64);
                    if (pos >= wire.size())
                        break;
                    cuts.push_back(pos);
                }
                const auto out = run(wire, options(side, mode), cuts);
                CHECK(!out.ec);
                CHECK(out.events == want);
            }
        }
    }
}

TEST_CASE("websocket message_reader: 1,000 messages in one chunk, each handed out in place (Autobahn 9.7, 9.8)") {
    std::vector<frame_spec> frames;
    for (int i = 0; i < 1000; ++i)
        frames.push_back({i % 2 ? 2u : 1u, "message " + std::to_string(i)});
    bytes wire = stream(frames, true);
    ws::message_reader reader(options(ws::role::server));
    reader.feed(wire);
    std::error_code ec;
    int count = 0;
    while (auto ev = reader.next(ec)) {
        CHECK(ev.text() == "message " + std::to_string(count));
        CHECK(ev.kind == (count % 2 ? event_kind::binary : event_kind::text));
        CHECK(ev.payload.data() >= wire.data());
        CHECK(ev.payload.data() < wire.data() + wire.size());
        CHECK(reader.buffered() == 0);
        ++count;
    }
    CHECK(!ec);
    CHECK(count == 1000);
}

TEST_CASE("websocket message_reader: reset() starts over after an error or a close") {
    ws::message_reader reader(options(ws::role::server));
    bytes bad = stream({{3, ""}}, true);
    reader.feed(bad);
    std::error_code ec;
    CHECK_FALSE(reader.next(ec));
    CHECK(ec == ws::error::bad_opcode);
    reader.reset();
    CHECK(!reader.last_error());
    bytes good = stream({{1, "again"}, {8, close_payload(1000)}}, true);
    reader.feed(good);
    auto ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(ev.text() == "again");
    ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(reader.closed());
    reader.reset();
    CHECK_FALSE(reader.closed());
    bytes more = stream({{2, "after reset"}}, true);
    reader.feed(more);
    ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(ev.text() == "after reset");
}

TEST_CASE("websocket message_reader: an idle reader is small") {
    // The target is at most 4 KiB of server memory per idle
    // WebSocket connection; the reader's share, with no message under way,
    // is its own size: its gathering buffer is given back after each use.
    CHECK(sizeof(ws::message_reader) <= 512);
    ws::message_reader reader(options(ws::role::server, ws::delivery::whole, 1 << 20));
    const std::string big(200 * 1024, 'b');
    const bytes wire = stream({{2, big}}, true);
    // Fed in two chunks, so the message is gathered.
    bytes a(wire.begin(), wire.begin() + 1000), b(wire.begin() + 1000, wire.end());
    std::error_code ec;
    reader.feed(a);
    CHECK_FALSE(reader.next(ec));
    reader.feed(b);
    auto ev = reader.next(ec);
    REQUIRE(ev);
    CHECK(ev.payload.size() == big.size());
    CHECK(reader.heap_bytes() >= big.size());
    CHECK_FALSE(reader.next(ec));
    CHECK(reader.buffered() == 0);
    CHECK(reader.heap_bytes() == 0);
    // A small one too.
    const bytes small = stream({{2, "small"}}, true);
    bytes c(small.begin(), small.begin() + 7), d(small.begin() + 7, small.end());
    reader.feed(c);
    CHECK_FALSE(reader.next(ec));
    CHECK(reader.heap_bytes() > 0);
    reader.feed(d);
    REQUIRE(reader.next(ec));
    CHECK_FALSE(reader.next(ec));
    CHECK(reader.heap_bytes() == 0);
}
