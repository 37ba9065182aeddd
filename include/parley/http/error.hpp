// parley: errors of the HTTP/1.1 parsers and of the WebSocket opening
// handshake, each with the HTTP status a server answers it with.
#ifndef PARLEY_HTTP_ERROR_HPP
#define PARLEY_HTTP_ERROR_HPP

#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace parley::http {

/// What was wrong with an HTTP request or response head, or with a
/// WebSocket upgrade. status() gives the answer a server sends for each.
enum class error {
    // --- the request line (400 unless said otherwise) ---
    /// The request line is not `method SP target SP version`.
    bad_request_line = 1,
    /// A method other than GET (405, with `Allow: GET`).
    method_not_allowed,
    /// The target is not an origin-form path (`/...`) of visible characters.
    bad_target,
    /// The version is not `HTTP/<digit>.<digit>`.
    bad_version,
    /// A well-formed version other than HTTP/1.0 or HTTP/1.1 (505).
    version_not_supported,
    // --- the header section (400 unless said otherwise) ---
    /// A line ended with a bare LF or held a bare CR: parley takes CR LF only.
    bad_line_ending,
    /// A field name that is empty, holds a character outside the token set,
    /// or is followed by whitespace before its colon.
    bad_field_name,
    /// A field line without a colon.
    missing_colon,
    /// A field value holding a control character.
    bad_field_value,
    /// A line starting with whitespace (obsolete line folding).
    obsolete_line_folding,
    /// A field that must appear once (Host, Content-Length,
    /// Sec-WebSocket-Key, ...) appeared twice.
    duplicate_field,
    /// An HTTP/1.1 request without a Host field.
    missing_host,
    /// The request line and header fields exceed the size limit (431).
    header_too_large,
    /// More header fields than the limit (431).
    too_many_fields,
    /// A GET request announcing a body (Content-Length > 0 or any
    /// Transfer-Encoding).
    body_not_allowed,
    // --- the WebSocket upgrade, server side ---
    /// A GET on the WebSocket path without `Upgrade: websocket` (426).
    upgrade_required,
    /// A WebSocket upgrade over HTTP/1.0.
    upgrade_needs_http11,
    /// `Upgrade: websocket` without `Connection: Upgrade`.
    missing_connection_upgrade,
    /// Sec-WebSocket-Version missing or not 13 (426, with
    /// `Sec-WebSocket-Version: 13`).
    unsupported_websocket_version,
    /// Sec-WebSocket-Key missing, or not the base64 of 16 bytes.
    bad_websocket_key,
    /// The Origin is not on the server's allow-list (403).
    origin_not_allowed,
    /// A Sec-WebSocket-Extensions or Sec-WebSocket-Protocol value that does
    /// not parse.
    bad_extension_offer,
    // --- the client side: the server's answer to an upgrade (no status) ---
    /// The status line is not `HTTP/1.1 <3 digits> <reason>`.
    bad_status_line,
    /// The server answered with another status than 101.
    not_switching_protocols,
    /// The 101 lacks `Upgrade: websocket` or `Connection: Upgrade`.
    response_missing_upgrade,
    /// Sec-WebSocket-Accept is missing or does not match the key sent.
    bad_accept,
    /// The server selected a subprotocol that was not offered, or one was
    /// offered and the answer names several.
    unexpected_subprotocol,
    /// The server selected an extension, or parameters, not offered.
    unexpected_extension,
    /// The response head exceeds the size limit.
    response_too_large,
};

} // namespace parley::http

// Before anything below converts an error to a std::error_code.
template <>
struct std::is_error_code_enum<parley::http::error> : std::true_type {};

namespace parley::http {

/// The HTTP status code a server answers `e` with (400, 403, 405, 426,
/// 431, 505), or 0 for the client-side errors, which are not answered.
constexpr int status(error e) noexcept {
    switch (e) {
    case error::method_not_allowed:
        return 405;
    case error::version_not_supported:
        return 505;
    case error::header_too_large:
    case error::too_many_fields:
        return 431;
    case error::upgrade_required:
    case error::unsupported_websocket_version:
        return 426;
    case error::origin_not_allowed:
        return 403;
    case error::bad_status_line:
    case error::not_switching_protocols:
    case error::response_missing_upgrade:
    case error::bad_accept:
    case error::unexpected_subprotocol:
    case error::unexpected_extension:
    case error::response_too_large:
        return 0;
    default:
        return 400;
    }
}

/// The standard reason phrase of the statuses parley sends.
constexpr std::string_view reason_phrase(int status) noexcept {
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 426: return "Upgrade Required";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

namespace detail {

class error_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "parley.http"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
        case error::bad_request_line: return "malformed request line (expected: GET /path HTTP/1.1)";
        case error::method_not_allowed: return "method not allowed: only GET is served here";
        case error::bad_target: return "malformed request target (expected a path starting with /)";
        case error::bad_version: return "malformed HTTP version";
        case error::version_not_supported: return "HTTP version not supported: only HTTP/1.0 and HTTP/1.1";
        case error::bad_line_ending: return "line ending is not CR LF (bare LF or CR)";
        case error::bad_field_name: return "malformed header field name";
        case error::missing_colon: return "header field line without a colon";
        case error::bad_field_value: return "header field value holds a control character";
        case error::obsolete_line_folding: return "header field folded over lines (obsolete, refused)";
        case error::duplicate_field: return "a header field that must appear once appears twice";
        case error::missing_host: return "HTTP/1.1 request without a Host header field";
        case error::header_too_large: return "request line and header fields exceed the size limit";
        case error::too_many_fields: return "too many header fields";
        case error::body_not_allowed: return "a GET request must not have a body (Content-Length or Transfer-Encoding)";
        case error::upgrade_required: return "this address takes WebSocket connections only (Upgrade: websocket)";
        case error::upgrade_needs_http11: return "a WebSocket upgrade needs HTTP/1.1";
        case error::missing_connection_upgrade: return "WebSocket upgrade without Connection: Upgrade";
        case error::unsupported_websocket_version: return "unsupported WebSocket version: only 13 is supported";
        case error::bad_websocket_key: return "Sec-WebSocket-Key missing or not base64 of 16 bytes";
        case error::origin_not_allowed: return "the page's origin is not allowed to connect here";
        case error::bad_extension_offer: return "malformed Sec-WebSocket-Extensions or Sec-WebSocket-Protocol";
        case error::bad_status_line: return "malformed HTTP status line in the server's answer";
        case error::not_switching_protocols: return "the server refused the WebSocket upgrade (status is not 101)";
        case error::response_missing_upgrade: return "the server's 101 answer lacks Upgrade: websocket or Connection: Upgrade";
        case error::bad_accept: return "the server's Sec-WebSocket-Accept does not match the key sent";
        case error::unexpected_subprotocol: return "the server selected a subprotocol that was not offered";
        case error::unexpected_extension: return "the server selected an extension that was not offered";
        case error::response_too_large: return "the server's answer head exceeds the size limit";
        }
        return "unknown parley.http error";
    }
};

} // namespace detail

/// The category of every `parley::http::error`; its name() is "parley.http".
inline const std::error_category& error_category() noexcept {
    static const detail::error_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

/// status() of an error code of this category, or 500 for any other.
inline int status(std::error_code ec) noexcept {
    return &ec.category() == &error_category() ? status(static_cast<error>(ec.value())) : 500;
}

} // namespace parley::http

#endif
