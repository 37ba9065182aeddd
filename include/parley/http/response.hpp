// parley: complete HTTP/1.1 responses for a server that answers a request
// and then closes the connection (the chat page, its errors, refused
// WebSocket upgrades). Every response carries Content-Length and
// `Connection: close`.
#ifndef PARLEY_HTTP_RESPONSE_HPP
#define PARLEY_HTTP_RESPONSE_HPP

#include <parley/detail/http_head.hpp>
#include <parley/http/error.hpp>

#include <initializer_list>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace parley::http {

/// A header field to add to a response.
struct field {
    std::string_view name;
    std::string_view value;
};

/// Appends `name: value` CR LF to `out`.
/// @throws std::invalid_argument if the name is not a token or the value
/// holds CR, LF or NUL (which would let a value forge fields or a body).
inline void append_field(std::string& out, std::string_view name, std::string_view value) {
    if (!::parley::detail::http::is_token(name) ||
        value.find_first_of(std::string_view("\r\n\0", 3)) != std::string_view::npos)
        throw std::invalid_argument("parley::http: invalid header field " + std::string(name));
    out.append(name).append(": ").append(value).append("\r\n");
}

/// `HTTP/1.1 <status> <reason>` CR LF, the fields, Content-Type (when
/// `content_type` is not empty), Content-Length, `Connection: close`
/// (unless `extra` names Connection), the empty line and the body.
inline std::string make_response(int status, std::string_view content_type, std::string_view body,
                                 std::initializer_list<field> extra = {}) {
    std::string out;
    out.reserve(128 + body.size());
    out.append("HTTP/1.1 ")
        .append(std::to_string(status))
        .append(" ")
        .append(reason_phrase(status))
        .append("\r\n");
    bool connection = false;
    for (const field& f : extra) {
        append_field(out, f.name, f.value);
        connection = connection || ::parley::detail::http::iequals(f.name, "Connection");
    }
    if (!content_type.empty())
        append_field(out, "Content-Type", content_type);
    append_field(out, "Content-Length", std::to_string(body.size()));
    if (!connection)
        append_field(out, "Connection", "close");
    out.append("\r\n").append(body);
    return out;
}

/// The plain-text answer to a request refused with `ec`: status(ec) with
/// its reason, the error's message as the body, and the fields the status
/// needs (405: `Allow: GET`; 426: `Upgrade: websocket`,
/// `Sec-WebSocket-Version: 13`). The connection is to be closed after it.
inline std::string error_response(std::error_code ec) {
    int code = status(ec);
    if (code == 0)
        code = 500; // a client-side error has no answer of its own
    const std::string body = std::to_string(code) + " " + std::string(reason_phrase(code)) + ": " +
                             ec.message() + "\n";
    constexpr std::string_view text = "text/plain; charset=utf-8";
    switch (code) {
    case 405:
        return make_response(code, text, body, {{"Allow", "GET"}});
    case 426:
        // RFC 9110 section 15.5.22: a 426 names the protocol in Upgrade,
        // and Upgrade is then a connection option.
        return make_response(code, text, body,
                             {{"Upgrade", "websocket"},
                              {"Connection", "Upgrade, close"},
                              {"Sec-WebSocket-Version", "13"}});
    default:
        return make_response(code, text, body);
    }
}

} // namespace parley::http

#endif
