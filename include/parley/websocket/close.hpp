// parley: WebSocket close status codes and the close frame's payload
// (RFC 6455 sections 5.5.1 and 7.4, and IANA's "WebSocket Close Code
// Number Registry").
//
// A close payload is empty, or a 2-byte big-endian status code followed by
// a UTF-8 reason of at most 123 bytes (a control frame holds 125).
#ifndef PARLEY_WEBSOCKET_CLOSE_HPP
#define PARLEY_WEBSOCKET_CLOSE_HPP

#include <parley/codec/utf8.hpp>
#include <parley/websocket/error.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <system_error>

namespace parley::websocket {

enum class close_code : std::uint16_t {
    normal = 1000,
    going_away = 1001,
    protocol_error = 1002,
    unsupported_data = 1003,
    /// Reported when a close frame had no payload; never sent.
    no_status = 1005,
    /// Reported when the connection ended without a close frame; never sent.
    abnormal = 1006,
    invalid_payload = 1007,
    policy_violation = 1008,
    message_too_big = 1009,
    /// Sent by a client whose required extension the server did not accept.
    mandatory_extension = 1010,
    internal_error = 1011,
    service_restart = 1012,
    try_again_later = 1013,
    bad_gateway = 1014,
    /// A TLS handshake failure, reported locally; never sent.
    tls_handshake = 1015,
};

/// The longest reason a close frame can carry: 125 bytes less the code.
inline constexpr std::size_t max_close_reason = 123;

/// Whether a peer may put `code` in a close frame: 1000-1003 and 1007-1014
/// (the registered codes), and 3000-4999 (libraries, applications). 0-999,
/// 1004-1006, 1015, 1016-2999 and 5000 up are refused.
constexpr bool is_valid_close_code(std::uint16_t code) noexcept {
    if (code >= 1000 && code <= 1003)
        return true;
    if (code >= 1007 && code <= 1014)
        return true;
    return code >= 3000 && code <= 4999;
}
constexpr bool is_valid_close_code(close_code code) noexcept {
    return is_valid_close_code(static_cast<std::uint16_t>(code));
}

/// What a close frame said.
struct close_reason {
    /// close_code::no_status when the payload was empty.
    close_code code = close_code::no_status;
    /// UTF-8, at most 123 bytes; a view into the payload it was parsed from.
    std::string_view reason;
};

/// Parses a received close payload. Errors (each answered with the code
/// close_code_for() gives): close_payload_one_byte and invalid_close_code
/// (1002), invalid_close_reason (1007), control_frame_too_long (1002) for
/// more than 125 bytes.
inline close_reason parse_close_payload(std::span<const std::byte> payload,
                                           std::error_code& ec) noexcept {
    ec.clear();
    if (payload.empty())
        return {};
    if (payload.size() == 1) {
        ec = error::close_payload_one_byte;
        return {};
    }
    if (payload.size() > 2 + max_close_reason) {
        ec = error::control_frame_too_long;
        return {};
    }
    const auto code = static_cast<std::uint16_t>(std::to_integer<unsigned>(payload[0]) << 8 |
                                                 std::to_integer<unsigned>(payload[1]));
    if (!is_valid_close_code(code)) {
        ec = error::invalid_close_code;
        return {};
    }
    const std::string_view reason(reinterpret_cast<const char*>(payload.data()) + 2,
                                  payload.size() - 2);
    if (!is_valid_utf8(reason)) {
        ec = error::invalid_close_reason;
        return {};
    }
    return {close_code{code}, reason};
}

/// Room for the largest close payload.
using close_payload_buffer = std::array<std::byte, 2 + max_close_reason>;

/// Writes the payload of a close frame to send into `out` and returns its
/// size. close_code::no_status writes an empty payload (a close frame
/// without a code; `reason` must then be empty). Errors, with nothing
/// written: invalid_close_code for a code that must not be sent (1005
/// with a reason, 1006, 1015, or anything is_valid_close_code refuses),
/// close_reason_too_long over 123 bytes, invalid_utf8_to_send for a
/// reason that is not UTF-8.
inline std::size_t write_close_payload(close_code code, std::string_view reason,
                                          close_payload_buffer& out,
                                          std::error_code& ec) noexcept {
    ec.clear();
    if (code == close_code::no_status && reason.empty())
        return 0;
    if (!is_valid_close_code(code)) {
        ec = error::invalid_close_code;
        return 0;
    }
    if (reason.size() > max_close_reason) {
        ec = error::close_reason_too_long;
        return 0;
    }
    if (!is_valid_utf8(reason)) {
        ec = error::invalid_utf8_to_send;
        return 0;
    }
    const auto value = static_cast<std::uint16_t>(code);
    out[0] = static_cast<std::byte>(value >> 8);
    out[1] = static_cast<std::byte>(value & 0xFF);
    for (std::size_t i = 0; i < reason.size(); ++i)
        out[2 + i] = static_cast<std::byte>(reason[i]);
    return 2 + reason.size();
}

} // namespace parley::websocket

#endif
