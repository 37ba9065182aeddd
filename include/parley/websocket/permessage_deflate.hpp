// parley: negotiating permessage-deflate (RFC 7692) in the opening
// handshake, both sides. Pure header parsing, no zlib: the compressor and
// inflater that use the outcome are in websocket/deflate.hpp, which needs
// zlib; this header does not, so a build without zlib still parses offers
// (and declines them).
//
// The parameters, and parley's rules for them:
// - server_no_context_takeover: the server compresses every message alone.
//   parley's server asks for it by default (a server may add it unasked):
//   a broadcast is then compressed once and the same bytes suit everyone.
// - client_no_context_takeover: the client compresses every message alone;
//   the server may add it unasked (option, off by default).
// - server_max_window_bits (8..15): the client limits the server's window;
//   the server answers with the same or a smaller value. zlib cannot
//   compress with a 256-byte window, so an offer of 8 is declined.
// - client_max_window_bits: the client says it can limit its window
//   (optionally to a value); only then may the server set it. The
//   inflater always uses a 32 KiB window, which reads any smaller one.
// An offer with an unknown, repeated or ill-valued parameter is declined
// (the next offer is tried), not an error; a header that does not parse
// at all is a 400.
#ifndef PARLEY_WEBSOCKET_PERMESSAGE_DEFLATE_HPP
#define PARLEY_WEBSOCKET_PERMESSAGE_DEFLATE_HPP

#include <parley/detail/http_head.hpp>
#include <parley/http/error.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace parley::websocket {

/// Errors of a compressed message's inflation (websocket/deflate.hpp),
/// declared here so that code handling them needs no zlib.
enum class deflate_error {
    /// The message inflates past the size limit (close with 1009).
    message_too_big = 1,
    /// The compressed data is not valid deflate data (close with 1007).
    corrupt_data,
};

} // namespace parley::websocket

template <>
struct std::is_error_code_enum<parley::websocket::deflate_error> : std::true_type {};

namespace parley::websocket {

namespace detail {

class deflate_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "parley.websocket.deflate"; }
    std::string message(int ev) const override {
        switch (static_cast<deflate_error>(ev)) {
        case deflate_error::message_too_big:
            return "compressed message inflates past the message size limit";
        case deflate_error::corrupt_data:
            return "compressed message is not valid deflate data";
        }
        return "unknown parley.websocket.deflate error";
    }
};

} // namespace detail

/// The category of every `deflate_error`; its name() is
/// "parley.websocket.deflate".
inline const std::error_category& deflate_category() noexcept {
    static const detail::deflate_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(deflate_error e) noexcept {
    return {static_cast<int>(e), deflate_category()};
}

/// The close code (RFC 6455 7.4.1) to answer `e` with: 1009 or 1007.
constexpr std::uint16_t deflate_close_code(deflate_error e) noexcept {
    return e == deflate_error::message_too_big ? 1009 : 1007;
}

/// The outcome of a negotiation: what both sides use.
struct deflate_params {
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    /// 9..15 for a parley server (8 is declined), 8..15 from another.
    int server_max_window_bits = 15;
    int client_max_window_bits = 15;
    /// Whether client_max_window_bits is to be written in the response.
    bool send_client_max_window_bits = false;
    /// Whether server_max_window_bits is to be written in the response.
    bool send_server_max_window_bits = false;

    friend bool operator==(const deflate_params&, const deflate_params&) = default;
};

/// What a server accepts. Compression is off unless `enabled`.
struct deflate_server_options {
    bool enabled = false;
    /// Compress each server message alone (see the file comment).
    bool server_no_context_takeover = true;
    /// Ask clients to compress each message alone.
    bool client_no_context_takeover = false;
    /// The largest window the server compresses with, 9..15.
    int server_max_window_bits = 15;
    /// A limit for the client's window, 8..15; below 15 it is sent when
    /// the client's offer allows it.
    int client_max_window_bits = 15;
    /// false: decline offers that limit the server's window below
    /// server_max_window_bits, so that every connection reads data
    /// compressed with that one window (a server sharing one compressed
    /// broadcast among recipients).
    bool allow_server_window_limit = true;
};

/// What a client offers. Compression is off unless `enabled`.
struct deflate_client_options {
    bool enabled = false;
    bool server_no_context_takeover = false;
    bool client_no_context_takeover = false;
    /// Sent when below 15: a limit on the server's window, 9..15.
    int server_max_window_bits = 15;
};

namespace detail {

struct extension_param {
    std::string_view name;
    std::optional<std::string> value; // unquoted
};

struct extension {
    std::string_view name;
    std::vector<extension_param> params;
};

// Parses one Sec-WebSocket-Extensions value (RFC 6455 section 9.1:
// 1#( token *( ";" token [ "=" ( token / quoted-string ) ] ) ), appending
// to `out`. False if it does not parse.
inline bool parse_extensions(std::string_view text, std::vector<extension>& out) {
    using ::parley::detail::http::is_ows;
    using ::parley::detail::http::is_tchar;
    std::size_t i = 0;
    const auto skip_ows = [&] {
        while (i < text.size() && is_ows(text[i]))
            ++i;
    };
    const auto token = [&]() -> std::string_view {
        const std::size_t start = i;
        while (i < text.size() && is_tchar(text[i]))
            ++i;
        return text.substr(start, i - start);
    };
    bool need_element = false; // after a comma, RFC 9110 allows empty elements
    while (true) {
        skip_ows();
        if (i == text.size())
            return !out.empty() || !need_element;
        if (text[i] == ',') {
            ++i;
            continue;
        }
        extension ext;
        ext.name = token();
        if (ext.name.empty())
            return false;
        skip_ows();
        while (i < text.size() && text[i] == ';') {
            ++i;
            skip_ows();
            extension_param p;
            p.name = token();
            if (p.name.empty())
                return false;
            skip_ows();
            if (i < text.size() && text[i] == '=') {
                ++i;
                skip_ows();
                std::string value;
                if (i < text.size() && text[i] == '"') {
                    ++i;
                    bool closed = false;
                    while (i < text.size()) {
                        char c = text[i++];
                        if (c == '"') {
                            closed = true;
                            break;
                        }
                        if (c == '\\') {
                            if (i == text.size())
                                return false;
                            c = text[i++];
                        }
                        value += c;
                    }
                    if (!closed)
                        return false;
                    // RFC 6455 9.1: a quoted value must still be a token.
                    if (!::parley::detail::http::is_token(value))
                        return false;
                } else {
                    value = std::string(token());
                    if (value.empty())
                        return false;
                }
                p.value = std::move(value);
                skip_ows();
            }
            ext.params.push_back(std::move(p));
        }
        out.push_back(std::move(ext));
        if (i == text.size())
            return true;
        if (text[i] != ',')
            return false;
        ++i;
        need_element = true;
    }
}

// "8".."15", digits only, no leading zero.
inline std::optional<int> window_bits(const std::optional<std::string>& value) {
    if (!value || value->empty() || value->size() > 2 || (*value)[0] == '0')
        return std::nullopt;
    int v = 0;
    for (const char c : *value) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + (c - '0');
    }
    if (v < 8 || v > 15)
        return std::nullopt;
    return v;
}

// The server's answer to one permessage-deflate offer, or nothing to
// decline it.
inline std::optional<deflate_params> accept_offer(const extension& offer, const deflate_server_options& opts) {
    deflate_params p;
    bool seen[4] = {};
    std::optional<int> server_bits;
    bool client_bits_allowed = false;
    std::optional<int> client_bits;
    for (const extension_param& param : offer.params) {
        int which = -1;
        if (param.name == "server_no_context_takeover")
            which = 0;
        else if (param.name == "client_no_context_takeover")
            which = 1;
        else if (param.name == "server_max_window_bits")
            which = 2;
        else if (param.name == "client_max_window_bits")
            which = 3;
        if (which < 0 || seen[which])
            return std::nullopt; // unknown or repeated
        seen[which] = true;
        switch (which) {
        case 0:
        case 1:
            if (param.value)
                return std::nullopt;
            (which == 0 ? p.server_no_context_takeover : p.client_no_context_takeover) = true;
            break;
        case 2:
            server_bits = window_bits(param.value);
            if (!server_bits || *server_bits == 8)
                return std::nullopt; // zlib cannot compress with a 256-byte window
            break;
        default:
            client_bits_allowed = true;
            if (param.value) {
                client_bits = window_bits(param.value);
                if (!client_bits)
                    return std::nullopt;
            }
        }
    }
    p.server_no_context_takeover = p.server_no_context_takeover || opts.server_no_context_takeover;
    p.client_no_context_takeover = p.client_no_context_takeover || opts.client_no_context_takeover;
    p.server_max_window_bits = opts.server_max_window_bits;
    if (server_bits && *server_bits < opts.server_max_window_bits && !opts.allow_server_window_limit)
        return std::nullopt;
    if (server_bits) {
        p.server_max_window_bits = std::min(*server_bits, opts.server_max_window_bits);
        p.send_server_max_window_bits = true;
    }
    if (client_bits_allowed) {
        p.client_max_window_bits = std::min(client_bits.value_or(15), opts.client_max_window_bits);
        p.send_client_max_window_bits = p.client_max_window_bits < 15 || client_bits.has_value();
    }
    return p;
}

} // namespace detail

/// Server side: the first acceptable permessage-deflate offer among the
/// values of every Sec-WebSocket-Extensions field (`values`), or nothing
/// when compression is off, not offered, or every offer is declined. Sets
/// `ec` to bad_extension_offer when a value does not parse.
template <class Values>
std::optional<deflate_params> negotiate_deflate(const Values& values, const deflate_server_options& opts,
                                                std::error_code& ec) {
    ec = {};
    std::vector<detail::extension> offers;
    for (const std::string_view value : values)
        if (!detail::parse_extensions(value, offers)) {
            ec = ::parley::http::error::bad_extension_offer;
            return std::nullopt;
        }
    if (!opts.enabled)
        return std::nullopt;
    for (const detail::extension& offer : offers)
        if (offer.name == "permessage-deflate")
            if (auto p = detail::accept_offer(offer, opts))
                return p;
    return std::nullopt;
}

/// The Sec-WebSocket-Extensions value a server answers with.
inline std::string deflate_response(const deflate_params& p) {
    std::string out = "permessage-deflate";
    if (p.server_no_context_takeover)
        out += "; server_no_context_takeover";
    if (p.client_no_context_takeover)
        out += "; client_no_context_takeover";
    if (p.send_server_max_window_bits)
        out += "; server_max_window_bits=" + std::to_string(p.server_max_window_bits);
    if (p.send_client_max_window_bits)
        out += "; client_max_window_bits=" + std::to_string(p.client_max_window_bits);
    return out;
}

/// The Sec-WebSocket-Extensions value a client offers. It always says
/// client_max_window_bits (parley's client can limit its window).
inline std::string deflate_offer(const deflate_client_options& o) {
    std::string out = "permessage-deflate; client_max_window_bits";
    if (o.server_no_context_takeover)
        out += "; server_no_context_takeover";
    if (o.client_no_context_takeover)
        out += "; client_no_context_takeover";
    if (o.server_max_window_bits < 15)
        out += "; server_max_window_bits=" + std::to_string(o.server_max_window_bits);
    return out;
}

/// Client side: checks the server's answer (the values of every
/// Sec-WebSocket-Extensions field of the 101) against the offer made with
/// `o`. Nothing when the server declined; unexpected_extension when it
/// selected something not offered, or parameters the offer does not allow
/// (or a client window of 8, which zlib cannot compress with).
template <class Values>
std::optional<deflate_params> accept_deflate_response(const Values& values, const deflate_client_options& o,
                                                      std::error_code& ec) {
    ec = {};
    std::vector<detail::extension> answer;
    for (const std::string_view value : values)
        if (!detail::parse_extensions(value, answer)) {
            ec = ::parley::http::error::unexpected_extension;
            return std::nullopt;
        }
    if (answer.empty())
        return std::nullopt;
    if (!o.enabled || answer.size() != 1 || answer[0].name != "permessage-deflate") {
        ec = ::parley::http::error::unexpected_extension;
        return std::nullopt;
    }
    deflate_params p;
    bool seen[4] = {};
    for (const detail::extension_param& param : answer[0].params) {
        int which = -1;
        if (param.name == "server_no_context_takeover")
            which = 0;
        else if (param.name == "client_no_context_takeover")
            which = 1;
        else if (param.name == "server_max_window_bits")
            which = 2;
        else if (param.name == "client_max_window_bits")
            which = 3;
        bool ok = which >= 0 && !seen[which];
        if (ok) {
            seen[which] = true;
            if (which <= 1) {
                ok = !param.value;
                (which == 0 ? p.server_no_context_takeover : p.client_no_context_takeover) = true;
            } else if (which == 2) {
                const auto bits = detail::window_bits(param.value);
                ok = bits && *bits <= o.server_max_window_bits;
                p.server_max_window_bits = bits.value_or(15);
                p.send_server_max_window_bits = true;
            } else {
                const auto bits = detail::window_bits(param.value);
                ok = bits && *bits > 8;
                p.client_max_window_bits = bits.value_or(15);
                p.send_client_max_window_bits = true;
            }
        }
        if (!ok) {
            ec = ::parley::http::error::unexpected_extension;
            return std::nullopt;
        }
    }
    // RFC 7692 7.1.1.1 and 7.1.2.1: a server accepting these must echo them.
    if ((o.server_no_context_takeover && !p.server_no_context_takeover) ||
        (o.server_max_window_bits < 15 && !p.send_server_max_window_bits)) {
        ec = ::parley::http::error::unexpected_extension;
        return std::nullopt;
    }
    return p;
}

} // namespace parley::websocket

#endif
