// parley: the WebSocket opening handshake (RFC 6455 section 4), both
// sides, free of I/O.
//
// Server: parse the request with http::request_parser, then
//
// @code
// auto hs = parley::websocket::accept_upgrade(parser, options);
// write(hs.response);                  // a 101, or a complete HTTP error
// if (hs.error) close after the write;
// else the WebSocket starts; bytes the parser did not take are its first
// @endcode
//
// Client: client_handshake builds the request and reads the answer:
//
// @code
// parley::websocket::client_handshake hs({.host = "127.0.0.1:8080", .target = "/ws"});
// write(hs.request());
// read, then hs.feed(bytes, ec) until hs.done() or ec; bytes it did not
// take are the first WebSocket bytes
// @endcode
#ifndef PARLEY_WEBSOCKET_HANDSHAKE_HPP
#define PARLEY_WEBSOCKET_HANDSHAKE_HPP

#include <parley/detail/base64.hpp>
#include <parley/detail/http_head.hpp>
#include <parley/detail/sha1.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/http/response.hpp>
#include <parley/http/response_parser.hpp>
#include <parley/websocket/permessage_deflate.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace parley::websocket {

/// The GUID RFC 6455 appends to the key before hashing.
inline constexpr std::string_view handshake_guid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The Sec-WebSocket-Accept value for a Sec-WebSocket-Key:
/// base64(SHA-1(key + GUID)), 28 characters.
inline std::string accept_key(std::string_view key) {
    ::parley::detail::sha1 h;
    h.update(key);
    h.update(handshake_guid);
    const auto digest = h.digest();
    return ::parley::detail::base64::encode(std::span<const std::uint8_t>(digest));
}

/// Whether `key` is a valid Sec-WebSocket-Key: the strict base64 of 16
/// bytes (24 characters ending in "==").
inline bool valid_key(std::string_view key) noexcept {
    std::array<std::uint8_t, 18> bytes{};
    if (key.size() != 24)
        return false;
    const auto n = ::parley::detail::base64::decode(key, bytes.data());
    return n && *n == 16;
}

/// A new Sec-WebSocket-Key: 16 bytes from `random`, base64.
template <class UniformRandomBitGenerator>
std::string make_key(UniformRandomBitGenerator& random) {
    std::uniform_int_distribution<unsigned> byte(0, 255);
    std::array<std::uint8_t, 16> nonce{};
    for (auto& b : nonce)
        b = static_cast<std::uint8_t>(byte(random));
    return ::parley::detail::base64::encode(std::span<const std::uint8_t>(nonce));
}

/// A new Sec-WebSocket-Key from a per-thread generator seeded by
/// std::random_device.
inline std::string make_key() {
    thread_local std::mt19937 random = [] {
        std::random_device device;
        std::seed_seq seed{device(), device(), device(), device(), device(), device(), device(), device()};
        return std::mt19937(seed);
    }();
    return make_key(random);
}

// --- server side ----------------------------------------------------------

/// What a server accepts.
struct server_options {
    /// Origins allowed to connect (e.g. "http://127.0.0.1:8080"), compared
    /// ASCII case-insensitively with the Origin field; others get 403.
    /// Empty: any origin. The check protects browsers' users from other
    /// sites' pages (cross-site WebSocket hijacking); clients that are not
    /// browsers send no Origin and are let through by `allow_no_origin`.
    std::vector<std::string> allowed_origins;
    bool allow_no_origin = true;
    /// Subprotocols the server speaks, preferred first. The first of them
    /// the client offers is selected; none in common selects none (the
    /// client then decides whether to go on).
    std::vector<std::string> subprotocols;
    /// permessage-deflate, off by default.
    deflate_server_options deflate;
};

/// The outcome of accept_upgrade().
struct server_handshake {
    /// Empty when the upgrade is accepted; else why not (a
    /// parley::http::error; http::status(error) is the answer's status).
    std::error_code error;
    /// What to write: the 101, or a complete HTTP error response after
    /// which the connection is closed.
    std::string response;
    /// The selected subprotocol, empty for none.
    std::string subprotocol;
    /// The negotiated permessage-deflate, if any.
    std::optional<deflate_params> deflate;

    explicit operator bool() const noexcept { return !error; }
};

namespace detail {

template <class Head>
std::vector<std::string_view> field_values(const Head& head, std::string_view name) {
    std::vector<std::string_view> out;
    for (std::size_t i = 0; i < head.field_count(); ++i)
        if (::parley::detail::http::iequals(head.field_name(i), name))
            out.push_back(head.field_value(i));
    return out;
}

} // namespace detail

/// Checks a parsed request (request.done()) as a WebSocket upgrade, in
/// this order: `Upgrade: websocket` (else 426), HTTP/1.1 (400),
/// `Connection: Upgrade` (400), `Sec-WebSocket-Version: 13` (else 426
/// naming 13), a valid key (400), the Origin (403), then the subprotocol
/// and extension offers (400 when they do not parse). Fills `response`
/// either way.
inline server_handshake accept_upgrade(const http::request_parser& request, const server_options& options) {
    using http::error;
    server_handshake hs;
    const auto refuse = [&](std::error_code ec) {
        hs.error = ec;
        hs.response = http::error_response(ec);
        return std::move(hs);
    };
    if (!request.has_token("Upgrade", "websocket"))
        return refuse(error::upgrade_required);
    if (request.version_minor() < 1)
        return refuse(error::upgrade_needs_http11);
    if (!request.has_token("Connection", "upgrade"))
        return refuse(error::missing_connection_upgrade);
    if (request.field("Sec-WebSocket-Version") != "13")
        return refuse(error::unsupported_websocket_version);
    const auto key = request.field("Sec-WebSocket-Key");
    if (!key || !valid_key(*key))
        return refuse(error::bad_websocket_key);
    if (!options.allowed_origins.empty()) {
        const auto origin = request.field("Origin");
        bool allowed = !origin && options.allow_no_origin;
        for (const std::string& o : options.allowed_origins)
            allowed = allowed || (origin && ::parley::detail::http::iequals(*origin, o));
        if (!allowed)
            return refuse(error::origin_not_allowed);
    }
    // Subprotocol names are compared exactly (RFC 6455 11.3.4 registers
    // them case-sensitively); the client's list must be tokens.
    bool protocols_ok = true;
    std::string_view chosen;
    const auto offered = detail::field_values(request, "Sec-WebSocket-Protocol");
    for (const std::string_view value : offered)
        protocols_ok = protocols_ok && !::parley::detail::http::for_each_element(value, [](std::string_view p) {
            return !::parley::detail::http::is_token(p);
        });
    if (!protocols_ok)
        return refuse(error::bad_extension_offer);
    for (const std::string& mine : options.subprotocols) {
        for (const std::string_view value : offered)
            if (::parley::detail::http::for_each_element(value, [&](std::string_view p) { return p == mine; }))
                chosen = mine;
        if (!chosen.empty())
            break;
    }
    std::error_code ec;
    hs.deflate = negotiate_deflate(detail::field_values(request, "Sec-WebSocket-Extensions"), options.deflate, ec);
    if (ec)
        return refuse(ec);
    hs.subprotocol = std::string(chosen);
    hs.response = "HTTP/1.1 101 Switching Protocols\r\n"
                  "Upgrade: websocket\r\n"
                  "Connection: Upgrade\r\n";
    http::append_field(hs.response, "Sec-WebSocket-Accept", accept_key(*key));
    if (!hs.subprotocol.empty())
        http::append_field(hs.response, "Sec-WebSocket-Protocol", hs.subprotocol);
    if (hs.deflate)
        http::append_field(hs.response, "Sec-WebSocket-Extensions", deflate_response(*hs.deflate));
    hs.response += "\r\n";
    return hs;
}

// --- client side ----------------------------------------------------------

/// What a client asks for.
struct client_options {
    /// The Host field: "host" or "host:port".
    std::string host;
    /// The request target: a path starting with '/', with any query.
    std::string target = "/";
    /// An Origin field to send, if not empty.
    std::string origin;
    /// Subprotocols to offer, preferred first.
    std::vector<std::string> subprotocols;
    /// permessage-deflate to offer, off by default.
    deflate_client_options deflate;
};

/// One client handshake: the request to write, and the reading and
/// checking of the server's answer. Not thread-safe.
class client_handshake {
public:
    /// With a fresh key from make_key().
    /// @throws std::invalid_argument for a target that is not a path or a
    /// field holding CR, LF or NUL.
    explicit client_handshake(client_options options) : client_handshake(std::move(options), make_key()) {}

    /// With a given key (tests; a caller's own generator via make_key(g)).
    client_handshake(client_options options, std::string key)
        : options_(std::move(options)), key_(std::move(key)) {
        const std::string_view target = options_.target;
        if (target.empty() || target.front() != '/' ||
            target.find_first_of(std::string_view(" \t\r\n\0#", 6)) != std::string_view::npos)
            throw std::invalid_argument("parley::websocket: the target must be a path, e.g. /ws");
        request_ = "GET " + options_.target + " HTTP/1.1\r\n";
        http::append_field(request_, "Host", options_.host);
        request_ += "Upgrade: websocket\r\n"
                    "Connection: Upgrade\r\n";
        http::append_field(request_, "Sec-WebSocket-Key", key_);
        request_ += "Sec-WebSocket-Version: 13\r\n";
        if (!options_.origin.empty())
            http::append_field(request_, "Origin", options_.origin);
        if (!options_.subprotocols.empty()) {
            std::string list;
            for (const std::string& p : options_.subprotocols) {
                if (!::parley::detail::http::is_token(p))
                    throw std::invalid_argument("parley::websocket: a subprotocol must be a token: " + p);
                list += (list.empty() ? "" : ", ") + p;
            }
            http::append_field(request_, "Sec-WebSocket-Protocol", list);
        }
        if (options_.deflate.enabled)
            http::append_field(request_, "Sec-WebSocket-Extensions", deflate_offer(options_.deflate));
        request_ += "\r\n";
    }

    /// The upgrade request to write.
    const std::string& request() const noexcept { return request_; }
    /// The key sent.
    const std::string& key() const noexcept { return key_; }

    /// Takes bytes of the server's answer and returns how many it took;
    /// bytes after the head are the first WebSocket bytes. Sets `ec` if
    /// the answer is malformed or refuses the upgrade (the response() tells
    /// the status), and takes nothing more.
    std::size_t feed(std::string_view bytes, std::error_code& ec) {
        if (error_) {
            ec = error_;
            return 0;
        }
        const std::size_t used = response_.feed(bytes, ec);
        if (!ec && response_.done() && !done_)
            ec = check();
        error_ = ec;
        done_ = response_.done() && !ec;
        return used;
    }

    /// Whether the server accepted the upgrade.
    bool done() const noexcept { return done_; }
    /// The subprotocol the server selected, empty for none.
    std::string_view subprotocol() const noexcept { return subprotocol_; }
    /// The negotiated permessage-deflate, if any.
    const std::optional<deflate_params>& deflate() const noexcept { return deflate_; }
    /// The server's answer as parsed.
    const http::response_parser& response() const noexcept { return response_; }

private:
    std::error_code check() {
        using http::error;
        if (response_.status() != 101)
            return error::not_switching_protocols;
        if (!response_.has_token("Upgrade", "websocket") || !response_.has_token("Connection", "upgrade"))
            return error::response_missing_upgrade;
        if (response_.count("Sec-WebSocket-Accept") != 1 ||
            *response_.field("Sec-WebSocket-Accept") != accept_key(key_))
            return error::bad_accept;
        if (const std::size_t n = response_.count("Sec-WebSocket-Protocol"); n != 0) {
            const std::string_view chosen = *response_.field("Sec-WebSocket-Protocol");
            bool offered = false;
            for (const std::string& p : options_.subprotocols)
                offered = offered || p == chosen;
            if (n != 1 || !offered)
                return error::unexpected_subprotocol;
            subprotocol_ = std::string(chosen);
        }
        std::error_code ec;
        deflate_ = accept_deflate_response(detail::field_values(response_, "Sec-WebSocket-Extensions"),
                                           options_.deflate, ec);
        return ec;
    }

    client_options options_;
    std::string key_;
    std::string request_;
    http::response_parser response_;
    std::string subprotocol_;
    std::optional<deflate_params> deflate_;
    bool done_ = false;
    std::error_code error_;
};

} // namespace parley::websocket

#endif
