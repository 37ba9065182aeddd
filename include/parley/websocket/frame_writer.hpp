// parley: building WebSocket frames to send, free of any I/O.
//
// A frame is built as one parley::message: header and payload in one
// allocation, ready for the outbound queues. A server's frames are not
// masked, so one frame serves every recipient of a broadcast: encode once,
// queue the same message_ptr to each. A client's frames are masked with a
// fresh key each (RFC 6455 section 5.3), so they are built per send.
#ifndef PARLEY_WEBSOCKET_FRAME_WRITER_HPP
#define PARLEY_WEBSOCKET_FRAME_WRITER_HPP

#include <parley/hub/message.hpp>
#include <parley/codec/utf8.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/error.hpp>
#include <parley/websocket/frame.hpp>

#include <concepts>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <span>
#include <string_view>
#include <system_error>
#include <utility>

namespace parley::websocket {

/// Something that gives a masking key per call.
template <class G>
concept mask_key_source = requires(G& g) {
    { g() } -> std::convertible_to<mask_key>;
};

/// parley's default source of masking keys: a fast generator (SplitMix64)
/// seeded from std::random_device, so keys differ per connection and per
/// frame and cannot be guessed from outside. Where std::random_device is
/// not a real entropy source, supply a generator of your own.
class random_mask_keys {
public:
    /// Seeded on first use: a server's writer never masks, and must not
    /// pay for std::random_device (a system call or a file read) per
    /// connection.
    random_mask_keys() noexcept = default;
    /// A fixed sequence, for tests only.
    explicit random_mask_keys(std::uint64_t seed) noexcept : state_(seed), seeded_(true) {}

    mask_key operator()() {
        if (!seeded_) {
            std::random_device device;
            state_ = (std::uint64_t{device()} << 32) ^ device();
            seeded_ = true;
        }
        state_ += 0x9E3779B97F4A7C15ull;
        std::uint64_t z = state_;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        return {std::byte(z & 0xFF), std::byte((z >> 8) & 0xFF), std::byte((z >> 16) & 0xFF),
                std::byte((z >> 24) & 0xFF)};
    }

private:
    std::uint64_t state_ = 0;
    bool seeded_ = false;
};

/// What a frame to send says besides its payload.
struct frame_spec {
    opcode op = opcode::text;
    /// Clear on all but the last frame of a fragmented message.
    bool fin = true;
    /// RSV1: the payload is compressed (permessage-deflate negotiated).
    bool compressed = false;
};

namespace detail {

// The checks every frame to send must pass.
inline bool check_outgoing(const frame_spec& spec, std::span<const std::byte> payload,
                           std::error_code& ec) noexcept {
    ec.clear();
    if (is_control(spec.op)) {
        if (payload.size() > max_control_payload)
            ec = error::control_frame_too_long;
        else if (!spec.fin)
            ec = error::fragmented_control_frame;
        else if (spec.compressed)
            ec = error::misplaced_compression_bit;
    } else if (spec.compressed && spec.op == opcode::continuation) {
        ec = error::misplaced_compression_bit;
    } else if (spec.op == opcode::text && spec.fin && !spec.compressed &&
               !is_valid_utf8({reinterpret_cast<const char*>(payload.data()), payload.size()})) {
        ec = error::invalid_utf8_to_send;
    }
    return !ec;
}

inline message_ptr build_frame(const frame_spec& spec, std::span<const std::byte> payload,
                               const mask_key* key) {
    frame_header h;
    h.fin = spec.fin;
    h.compressed = spec.compressed;
    h.op = spec.op;
    h.payload_length = payload.size();
    h.masked = key != nullptr;
    if (key)
        h.key = *key;
    header_buffer header;
    const std::size_t header_size = write_header(h, header);
    message* m = message::allocate(header_size + payload.size(), header_size);
    std::memcpy(m->mutable_data(), header.data(), header_size);
    if (!payload.empty()) {
        std::memcpy(m->mutable_data() + header_size, payload.data(), payload.size());
        if (key)
            apply_mask({m->mutable_data() + header_size, payload.size()}, *key);
    }
    return message_ptr::adopt(m);
}

} // namespace detail

/// A server's frame (unmasked) as one shareable message: a broadcast is
/// encoded once and the same message queued to every recipient. Errors,
/// returning an empty pointer: control_frame_too_long (a control payload
/// over 125 bytes), fragmented_control_frame, misplaced_compression_bit,
/// invalid_utf8_to_send (an unfragmented, uncompressed text payload that
/// is not UTF-8; a fragment of text is the caller's to check).
inline message_ptr make_server_frame(const frame_spec& spec, std::span<const std::byte> payload,
                                     std::error_code& ec) {
    if (!detail::check_outgoing(spec, payload, ec))
        return {};
    return detail::build_frame(spec, payload, nullptr);
}

/// An unfragmented server text message.
inline message_ptr make_server_text(std::string_view text, std::error_code& ec) {
    return make_server_frame({opcode::text}, std::as_bytes(std::span(text)), ec);
}

/// make_server_text() for text the caller guarantees is valid UTF-8 (an
/// encoder that writes nothing else): one pass less over the payload.
inline message_ptr make_server_text_unchecked(std::string_view text) {
    return detail::build_frame({opcode::text}, std::as_bytes(std::span(text)), nullptr);
}

/// A client's frame, masked with a fresh key from `keys`. Errors as
/// make_server_frame().
template <mask_key_source Keys>
message_ptr make_client_frame(const frame_spec& spec, std::span<const std::byte> payload,
                              Keys& keys, std::error_code& ec) {
    if (!detail::check_outgoing(spec, payload, ec))
        return {};
    const mask_key key = keys();
    return detail::build_frame(spec, payload, &key);
}

/// Builds the frames of one end of a connection: unmasked for a server,
/// masked with keys from `Keys` for a client, and the control frames
/// (ping, pong, close) either needs.
///
/// @code
/// parley::websocket::frame_writer writer(role::client);
/// std::error_code ec;
/// auto frame = writer.text("hello", ec);        // masked, fresh key
/// auto pong = writer.pong(ping_event.payload, ec);
/// auto bye = writer.close(close_code::normal, "", ec);
/// @endcode
template <mask_key_source Keys = random_mask_keys>
class frame_writer {
public:
    explicit frame_writer(role side) requires std::default_initializable<Keys>
        : side_(side) {}
    frame_writer(role side, Keys keys) : side_(side), keys_(std::move(keys)) {}

    role side() const noexcept { return side_; }

    /// Any frame; see make_server_frame() for the errors.
    message_ptr frame(const frame_spec& spec, std::span<const std::byte> payload,
                      std::error_code& ec) {
        if (side_ == role::server)
            return make_server_frame(spec, payload, ec);
        return make_client_frame(spec, payload, keys_, ec);
    }

    message_ptr text(std::string_view text, std::error_code& ec) {
        return frame({opcode::text}, std::as_bytes(std::span(text)), ec);
    }
    message_ptr binary(std::span<const std::byte> data, std::error_code& ec) {
        return frame({opcode::binary}, data, ec);
    }
    /// At most 125 bytes.
    message_ptr ping(std::span<const std::byte> data, std::error_code& ec) {
        return frame({opcode::ping}, data, ec);
    }
    /// The answer to a ping: the same payload.
    message_ptr pong(std::span<const std::byte> data, std::error_code& ec) {
        return frame({opcode::pong}, data, ec);
    }
    /// A close frame; close_code::no_status for one without a payload.
    /// Errors as write_close_payload() (a code that must not be sent, a
    /// reason over 123 bytes or not UTF-8).
    message_ptr close(close_code code, std::string_view reason, std::error_code& ec) {
        close_payload_buffer payload;
        const std::size_t n = write_close_payload(code, reason, payload, ec);
        if (ec)
            return {};
        return frame({opcode::close}, std::span<const std::byte>(payload.data(), n), ec);
    }

private:
    role side_;
    Keys keys_{};
};

} // namespace parley::websocket

#endif
