// parley: the errors of the WebSocket codec (RFC 6455) and the close code
// that answers each.
#ifndef PARLEY_WEBSOCKET_ERROR_HPP
#define PARLEY_WEBSOCKET_ERROR_HPP

#include <cstdint>
#include <string>
#include <system_error>
#include <type_traits>

namespace parley::websocket {

/// A close status code (RFC 6455 section 7.4). The named values and the
/// rules for which codes may be received or sent are in close.hpp.
enum class close_code : std::uint16_t;

/// What a peer (or the local side) got wrong. Every decoding error is
/// final: the connection must be closed with close_code_for(e).
enum class error {
    /// A frame used an opcode RFC 6455 reserves (3-7, 11-15).
    bad_opcode = 1,
    /// RSV2 or RSV3 was set, or RSV1 without a negotiated extension.
    reserved_bits,
    /// RSV1 (compressed) on a continuation or control frame: permessage-
    /// deflate allows it on the first frame of a data message only.
    misplaced_compression_bit,
    /// A client sent a frame without a mask (a server must refuse it).
    unmasked_client_frame,
    /// A server sent a masked frame (a client must refuse it).
    masked_server_frame,
    /// A 16- or 64-bit length field held a value a shorter field can hold.
    non_minimal_length,
    /// A 64-bit length field had its most significant bit set.
    length_out_of_range,
    /// A ping, pong or close frame carried more than 125 bytes.
    control_frame_too_long,
    /// A ping, pong or close frame had FIN clear.
    fragmented_control_frame,
    /// A continuation frame arrived with no fragmented message to continue.
    continuation_without_start,
    /// A text or binary frame arrived while a fragmented message was still
    /// open (its final continuation had not come).
    message_not_finished,
    /// A message (or a frame) is larger than the configured limit.
    message_too_big,
    /// A text message, or part of one, is not valid UTF-8.
    invalid_utf8,
    /// A close frame carried a status code that must not be sent.
    invalid_close_code,
    /// A close frame carried a 1-byte payload (a code needs 2).
    close_payload_one_byte,
    /// A close frame's reason is not valid UTF-8.
    invalid_close_reason,
    /// A close reason longer than 123 bytes was to be sent.
    close_reason_too_long,
    /// A text message to send is not valid UTF-8.
    invalid_utf8_to_send,
    /// Bytes arrived after the peer's close frame.
    data_after_close,
    /// The connection ended in the middle of a frame or message.
    truncated,
    // --- reported by websocket::stream (stream.hpp) ---
    /// The WebSocket was closed: the close handshake is done (the peer's
    /// code and reason are in stream::peer_close()), or a close was sent.
    closed,
    /// The connection ended without a close frame (close code 1006).
    no_close_frame,
    /// An operation on a stream with no WebSocket open on it (before the
    /// handshake, after a failed one, or after the close).
    not_open,
};

} // namespace parley::websocket

template <>
struct std::is_error_code_enum<parley::websocket::error> : std::true_type {};

namespace parley::websocket {

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "parley.websocket"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::bad_opcode:
            return "WebSocket frame with a reserved opcode";
        case error::reserved_bits:
            return "WebSocket frame with reserved bits set (RSV1 without a negotiated extension, "
                   "RSV2 or RSV3)";
        case error::misplaced_compression_bit:
            return "WebSocket compression bit (RSV1) set on a continuation or control frame";
        case error::unmasked_client_frame:
            return "WebSocket client sent an unmasked frame";
        case error::masked_server_frame:
            return "WebSocket server sent a masked frame";
        case error::non_minimal_length:
            return "WebSocket frame length not in its shortest form";
        case error::length_out_of_range:
            return "WebSocket frame length has its most significant bit set";
        case error::control_frame_too_long:
            return "WebSocket control frame (ping, pong or close) longer than 125 bytes";
        case error::fragmented_control_frame:
            return "WebSocket control frame (ping, pong or close) fragmented";
        case error::continuation_without_start:
            return "WebSocket continuation frame without a message to continue";
        case error::message_not_finished:
            return "WebSocket data frame started a new message inside a fragmented one";
        case error::message_too_big:
            return "WebSocket message exceeds the maximum message size";
        case error::invalid_utf8:
            return "WebSocket text message is not valid UTF-8";
        case error::invalid_close_code:
            return "WebSocket close frame with an invalid status code";
        case error::close_payload_one_byte:
            return "WebSocket close frame with a 1-byte payload";
        case error::invalid_close_reason:
            return "WebSocket close reason is not valid UTF-8";
        case error::close_reason_too_long:
            return "WebSocket close reason longer than 123 bytes";
        case error::invalid_utf8_to_send:
            return "text to send in a WebSocket text message is not valid UTF-8";
        case error::data_after_close:
            return "WebSocket data after the close frame";
        case error::truncated:
            return "connection closed in the middle of a WebSocket frame or message";
        case error::closed:
            return "WebSocket connection closed (close handshake)";
        case error::no_close_frame:
            return "connection ended without a WebSocket close frame (abnormal closure, 1006)";
        case error::not_open:
            return "no WebSocket connection is open on this stream";
        }
        return "unknown parley.websocket error";
    }

    std::error_condition default_error_condition(int ev) const noexcept override {
        switch (static_cast<error>(ev)) {
        case error::message_too_big:
        case error::control_frame_too_long:
        case error::close_reason_too_long:
            return std::errc::message_size;
        case error::invalid_utf8:
        case error::invalid_close_reason:
        case error::invalid_utf8_to_send:
            return std::errc::illegal_byte_sequence;
        default:
            return std::error_condition(ev, *this);
        }
    }
};

} // namespace detail

/// The category of every websocket::error; its name() is "parley.websocket".
inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// The close code to send when `e` ends a connection (RFC 6455 7.4.1):
/// 1007 for bad text data, 1009 for a message over the limit, 1002 for
/// every other breach of the protocol. Errors made locally (a reason too
/// long, text to send not UTF-8) give 1011; `truncated` gives 1006, which
/// is never sent: the connection is simply dropped.
constexpr close_code close_code_for(error e) noexcept {
    switch (e) {
    case error::invalid_utf8:
    case error::invalid_close_reason:
        return close_code{1007};
    case error::message_too_big:
        return close_code{1009};
    case error::close_reason_too_long:
    case error::invalid_utf8_to_send:
        return close_code{1011};
    case error::truncated:
    case error::no_close_frame:
        return close_code{1006};
    case error::closed:
        return close_code{1000};
    default:
        return close_code{1002};
    }
}

/// close_code_for() of a websocket error; 1011 (internal error) for an
/// error of another category, 1000 for no error.
inline close_code close_code_for(std::error_code ec) noexcept {
    if (!ec)
        return close_code{1000};
    if (ec.category() == error_category())
        return close_code_for(static_cast<error>(ec.value()));
    return close_code{1011};
}

} // namespace parley::websocket

#endif
