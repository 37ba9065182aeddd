// libFuzzer target for parley::websocket::message_reader (and, through
// it, frame.hpp, close.hpp and the UTF-8 validator; frame_writer for the
// round trip).
//
// The first bytes of the input choose the configuration; the rest is the
// byte stream a peer sent. It is read twice: whole, in one chunk, with
// whole-message delivery (the reference), and in chunks whose sizes come
// from a PRNG seeded by the input, in the delivery mode the input chooses.
// Both must give the same events and the same error. Every event must
// obey the protocol: data within the size limit, uncompressed text valid
// UTF-8, control payloads at most 125 bytes, close codes valid, nothing
// after a close. Each data message is then written with frame_writer in
// the sender's role and read back. Any difference, or any sanitizer
// report, is a crash.
//
//   byte 0: bit 0 role (server/client), bit 1 delivery (whole/pieces),
//           bit 2 permessage-deflate negotiated, bits 3-4 the size limit
//   byte 1: chunking seed
#include <parley/utf8.hpp>
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

    opts.mode = (config & 2) ? ws::delivery::pieces : ws::delivery::whole;
    const outcome got = read(in, opts, seed, true);
    FUZZ_CHECK(got.events == want.events);
    FUZZ_CHECK(got.ec == want.ec);

    for (const auto& e : want.events)
        if (e.kind == ws::event_kind::text || e.kind == ws::event_kind::binary)
            round_trip(e, opts.side, opts.max_message_size);
    return 0;
}
