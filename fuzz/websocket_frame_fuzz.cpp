// libFuzzer target for parley::websocket::message_reader (and, through
// it, frame.hpp, close.hpp and the UTF-8 validator; frame_writer for the
// round trip).
//
// The first bytes of the input choose the configuration; the rest is the
// byte stream a peer sent. It is decoded three ways: by a plain reference
// decoder written here from RFC 6455 (a loop over the whole buffer, with
// utf8.hpp's whole-string validator), by message_reader in one chunk with
// whole-message delivery, and by message_reader in chunks whose sizes come
// from a PRNG seeded by the input, in the delivery mode the input chooses.
// All three must give the same events and the same error. Every event must
// obey the protocol: data within the size limit, uncompressed text valid
// UTF-8, control payloads at most 125 bytes, close codes valid, nothing
// after a close. Each data message is then written with frame_writer in
// the sender's role and read back. Any difference, or any sanitizer
// report, is a crash.
//
//   byte 0: bit 0 role (server/client), bit 1 delivery (whole/pieces),
//           bit 2 permessage-deflate negotiated, bits 3-4 the size limit
//   byte 1: chunking seed
#include <parley/codec/utf8.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/frame_writer.hpp>
#include <parley/websocket/message_reader.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <vector>

namespace {

namespace ws = parley::websocket;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "websocket_frame_fuzz: %s\n", what);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond))                                                                          \
            fail(#cond);                                                                      \
    } while (0)

struct recorded {
    ws::event_kind kind;
    std::vector<std::byte> payload;
    bool compressed;
    unsigned code;
    bool operator==(const recorded&) const = default;
};

struct outcome {
    std::vector<recorded> events;
    std::error_code ec;
};

void check_event(const ws::event& ev, const ws::reader_options& opts) {
    switch (ev.kind) {
    case ws::event_kind::ping:
    case ws::event_kind::pong:
        FUZZ_CHECK(ev.payload.size() <= ws::max_control_payload);
        break;
    case ws::event_kind::close:
        FUZZ_CHECK(ev.payload.size() <= ws::max_control_payload);
        FUZZ_CHECK(ev.code == ws::close_code::no_status || ws::is_valid_close_code(ev.code));
        FUZZ_CHECK(ev.reason.size() <= ws::max_close_reason);
        FUZZ_CHECK(parley::is_valid_utf8(ev.reason));
        break;
    case ws::event_kind::text:
    case ws::event_kind::binary:
        FUZZ_CHECK(ev.payload.size() <= opts.max_message_size);
        FUZZ_CHECK(opts.compression || !ev.compressed);
        break;
    case ws::event_kind::none:
        fail("an empty event converted to true");
    }
}

outcome read(std::span<const std::byte> in, const ws::reader_options& opts, std::uint32_t seed,
             bool chunked) {
    ws::message_reader reader(opts);
    outcome r;
    std::optional<recorded> partial;
    bool closed = false;
    std::uint32_t state = seed * 2654435761u + 1;
    std::size_t fed = 0;
    do {
        std::size_t n = in.size() - fed;
        if (chunked) {
            state = state * 1103515245u + 12345u;
            const std::uint32_t x = state >> 16;
            n = x % 4 == 0 ? 1 : x % 4 == 1 ? 1 + x % 13 : x % 4 == 2 ? x % 200 : n;
            if (n > in.size() - fed)
                n = in.size() - fed;
        }
        // A private copy that dies after the chunk is drained: a view kept
        // past that is a use-after-free for AddressSanitizer.
        std::vector<std::byte> chunk(in.begin() + static_cast<std::ptrdiff_t>(fed),
                                     in.begin() + static_cast<std::ptrdiff_t>(fed + n));
        fed += n;
        reader.feed(chunk);
        std::error_code ec;
        while (auto ev = reader.next(ec)) {
            FUZZ_CHECK(!ec);
            FUZZ_CHECK(!closed); // nothing after the close
            check_event(ev, opts);
            if (ev.is_data()) {
                FUZZ_CHECK(ev.first == !partial.has_value());
                if (!partial)
                    partial = recorded{ev.kind, {}, ev.compressed, 0};
                FUZZ_CHECK(partial->kind == ev.kind);
                FUZZ_CHECK(partial->compressed == ev.compressed);
                partial->payload.insert(partial->payload.end(), ev.payload.begin(), ev.payload.end());
                FUZZ_CHECK(partial->payload.size() <= opts.max_message_size);
                if (ev.last) {
                    if (partial->kind == ws::event_kind::text && !partial->compressed)
                        FUZZ_CHECK(parley::is_valid_utf8(
                            {reinterpret_cast<const char*>(partial->payload.data()),
                             partial->payload.size()}));
                    r.events.push_back(std::move(*partial));
                    partial.reset();
                }
            } else {
                closed = closed || ev.kind == ws::event_kind::close;
                r.events.push_back({ev.kind, {ev.payload.begin(), ev.payload.end()}, false,
                                    static_cast<unsigned>(ev.code)});
            }
        }
        FUZZ_CHECK(reader.buffered() <= opts.max_message_size);
        if (ec) {
            FUZZ_CHECK(&ec.category() == &ws::error_category());
            if (r.ec)
                FUZZ_CHECK(ec == r.ec); // sticky
            r.ec = ec;
            const auto code = reader.close_code_to_send();
            FUZZ_CHECK(code == ws::close_code::protocol_error ||
                       code == ws::close_code::invalid_payload ||
                       code == ws::close_code::message_too_big);
            FUZZ_CHECK(!ec.message().empty());
        }
    } while (fed < in.size());
    std::error_code end;
    reader.finish(end);
    if (r.ec)
        FUZZ_CHECK(end == r.ec);
    return r;
}

// --- the reference decoder ----------------------------------------------------

// Whether `prefix` can still be extended into valid UTF-8 (see
// tests/test_codec_utf8_validator.cpp for why these completions suffice).
bool can_continue(const std::string& prefix) {
    static const char* const completions[] = {"",         "\x80",         "\x90",        "\xA0",
                                              "\x80\x80", "\x90\x80",     "\xA0\x80",    "\x80\x80\x80",
                                              "\x90\x80\x80", "\xA0\x80\x80"};
    for (const char* c : completions)
        if (parley::is_valid_utf8(prefix + c))
            return true;
    return false;
}

outcome reference(std::span<const std::byte> in, const ws::reader_options& opts) {
    outcome r;
    auto byte_at = [&](std::size_t i) { return std::to_integer<unsigned>(in[i]); };
    const std::uint64_t max_frame =
        opts.max_message_size > 125 ? opts.max_message_size : std::uint64_t{125};
    std::size_t pos = 0;
    bool open = false, closed = false, message_compressed = false;
    unsigned message_op = 0;
    std::string message;
    auto fail = [&](ws::error e) {
        r.ec = e;
        return r;
    };
    while (pos < in.size()) {
        if (closed)
            return fail(ws::error::data_after_close);
        const std::size_t left = in.size() - pos;
        if (left < 2)
            break;
        const unsigned b0 = byte_at(pos), b1 = byte_at(pos + 1);
        const unsigned op = b0 & 0xF, len7 = b1 & 0x7F;
        const bool fin = b0 & 0x80, rsv1 = b0 & 0x40, masked = b1 & 0x80;
        const bool control = op >= 8;
        if (!(op <= 2 || (op >= 8 && op <= 10)))
            return fail(ws::error::bad_opcode);
        if ((b0 & 0x30) || (rsv1 && !opts.compression))
            return fail(ws::error::reserved_bits);
        if (rsv1 && (op == 0 || control))
            return fail(ws::error::misplaced_compression_bit);
        if (opts.side == ws::role::server && !masked)
            return fail(ws::error::unmasked_client_frame);
        if (opts.side == ws::role::client && masked)
            return fail(ws::error::masked_server_frame);
        if (control && !fin)
            return fail(ws::error::fragmented_control_frame);
        if (control && len7 > 125)
            return fail(ws::error::control_frame_too_long);
        const std::size_t ext = len7 == 126 ? 2 : len7 == 127 ? 8 : 0;
        if (left < 2 + ext)
            break;
        std::uint64_t length = len7;
        if (ext) {
            length = 0;
            for (std::size_t i = 0; i < ext; ++i)
                length = length * 256 + byte_at(pos + 2 + i);
            if (ext == 8 && length >= (std::uint64_t{1} << 63))
                return fail(ws::error::length_out_of_range);
            if ((ext == 2 && length < 126) || (ext == 8 && length < 65536))
                return fail(ws::error::non_minimal_length);
        }
        if (length > max_frame)
            return fail(ws::error::message_too_big);
        const std::size_t header = 2 + ext + (masked ? 4 : 0);
        if (left < header)
            break;
        if (!control) {
            if (op == 0 && !open)
                return fail(ws::error::continuation_without_start);
            if (op != 0 && open)
                return fail(ws::error::message_not_finished);
            if (op != 0) {
                open = true;
                message_op = op;
                message_compressed = rsv1;
                message.clear();
            }
            if (message.size() + length > opts.max_message_size)
                return fail(ws::error::message_too_big);
        }
        const std::size_t avail =
            static_cast<std::size_t>(length < left - header ? length : left - header);
        std::string payload;
        for (std::size_t i = 0; i < avail; ++i) {
            unsigned b = byte_at(pos + header + i);
            if (masked)
                b ^= byte_at(pos + 2 + ext + i % 4);
            payload += static_cast<char>(b);
        }
        auto as_bytes = [](const std::string& s) {
            const auto b = std::as_bytes(std::span(s));
            return std::vector<std::byte>(b.begin(), b.end());
        };
        if (control) {
            if (avail < length)
                break;
            if (op == 8) {
                unsigned code = 1005;
                if (payload.size() == 1)
                    return fail(ws::error::close_payload_one_byte);
                if (payload.size() >= 2) {
                    code = static_cast<unsigned char>(payload[0]) * 256u +
                           static_cast<unsigned char>(payload[1]);
                    const bool valid = (code >= 1000 && code <= 1003) ||
                                       (code >= 1007 && code <= 1014) ||
                                       (code >= 3000 && code <= 4999);
                    if (!valid)
                        return fail(ws::error::invalid_close_code);
                    if (!parley::is_valid_utf8(payload.substr(2)))
                        return fail(ws::error::invalid_close_reason);
                }
                closed = true;
                r.events.push_back({ws::event_kind::close, as_bytes(payload), false, code});
            } else {
                r.events.push_back({op == 9 ? ws::event_kind::ping : ws::event_kind::pong,
                                    as_bytes(payload), false,
                                    static_cast<unsigned>(ws::close_code::no_status)});
            }
        } else {
            message += payload;
            const bool check = message_op == 1 && !message_compressed;
            if (check && !can_continue(message))
                return fail(ws::error::invalid_utf8);
            if (avail < length)
                break;
            if (fin) {
                if (check && !parley::is_valid_utf8(message))
                    return fail(ws::error::invalid_utf8);
                r.events.push_back({message_op == 1 ? ws::event_kind::text : ws::event_kind::binary,
                                    as_bytes(message), message_compressed, 0});
                open = false;
            }
        }
        pos += header + static_cast<std::size_t>(length);
    }
    return r;
}

// Writes a data message in the sender's role and reads it back.
void round_trip(const recorded& m, ws::role reader_side, std::uint64_t limit) {
    if (m.compressed)
        return;
    const ws::role sender = reader_side == ws::role::server ? ws::role::client : ws::role::server;
    ws::frame_writer<ws::random_mask_keys> writer(sender, ws::random_mask_keys(m.payload.size()));
    std::error_code ec;
    const ws::opcode op = m.kind == ws::event_kind::text ? ws::opcode::text : ws::opcode::binary;
    const auto frame = writer.frame({op}, m.payload, ec);
    FUZZ_CHECK(!ec);
    std::vector<std::byte> wire(frame->wire().begin(), frame->wire().end());
    ws::reader_options opts;
    opts.side = reader_side;
    opts.max_message_size = limit;
    ws::message_reader reader(opts);
    reader.feed(wire);
    const auto ev = reader.next(ec);
    FUZZ_CHECK(!ec);
    FUZZ_CHECK(ev.kind == m.kind);
    FUZZ_CHECK(std::vector<std::byte>(ev.payload.begin(), ev.payload.end()) == m.payload);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size < 2)
        return 0;
    const std::uint8_t config = data[0];
    const std::uint32_t seed = data[1];
    const std::span<const std::byte> in(reinterpret_cast<const std::byte*>(data + 2), size - 2);

    ws::reader_options opts;
    opts.side = (config & 1) ? ws::role::client : ws::role::server;
    opts.compression = (config & 4) != 0;
    static constexpr std::uint64_t limits[] = {1 << 20, 0, 125, 300};
    opts.max_message_size = limits[(config >> 3) & 3];

    ws::reader_options reference_opts = opts;
    reference_opts.mode = ws::delivery::whole;
    const outcome want = read(in, reference_opts, seed, false);
    const outcome plain = reference(in, opts);
    FUZZ_CHECK(plain.events == want.events);
    FUZZ_CHECK(plain.ec == want.ec);

    opts.mode = (config & 2) ? ws::delivery::pieces : ws::delivery::whole;
    const outcome got = read(in, opts, seed, true);
    FUZZ_CHECK(got.events == want.events);
    FUZZ_CHECK(got.ec == want.ec);

    for (const auto& e : want.events)
        if (e.kind == ws::event_kind::text || e.kind == ws::event_kind::binary)
            round_trip(e, opts.side, opts.max_message_size);
    return 0;
}
