// Tests for include/parley/websocket/handshake.hpp: the RFC 6455 example,
// keys, every refusal and its answer, subprotocol selection, and parley's
// client against parley's server, split at every point. Included first:
// the header must stand on its own.
#include <parley/websocket/handshake.hpp>

#include <parley/http/request_parser.hpp>
#include <parley/http/response_parser.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <system_error>

namespace {

using parley::http::error;
namespace ws = parley::websocket;

const std::string rfc_key = "dGhlIHNhbXBsZSBub25jZQ==";

std::string request_with(std::string_view fields) {
    return "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n" + std::string(fields) + "\r\n";
}

const std::string good_fields = "Upgrade: websocket\r\n"
                                "Connection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                "Sec-WebSocket-Version: 13\r\n";

// Parses `wire` (which must parse) and runs accept_upgrade on it.
ws::server_handshake accept(std::string_view wire, const ws::server_options& options = {}) {
    parley::http::request_parser p;
    std::error_code ec;
    p.feed(wire, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(p.done());
    return ws::accept_upgrade(p, options);
}

// Parses a response parley wrote.
void parse_response(std::string_view wire, parley::http::response_parser& r) {
    std::error_code ec;
    CHECK(r.feed(wire, ec) == wire.size());
    REQUIRE_FALSE(ec);
    REQUIRE(r.done());
}

} // namespace

TEST_CASE("websocket handshake: the RFC 6455 example key and accept") {
    CHECK(ws::accept_key(rfc_key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    const ws::server_handshake hs = accept(request_with(good_fields));
    REQUIRE(hs);
    parley::http::response_parser r;
    parse_response(hs.response, r);
    CHECK(r.status() == 101);
    CHECK(r.field("Sec-WebSocket-Accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(r.field("Upgrade") == "websocket");
    CHECK(r.field("Connection") == "Upgrade");
    CHECK_FALSE(r.field("Sec-WebSocket-Protocol"));
    CHECK_FALSE(r.field("Sec-WebSocket-Extensions"));
    CHECK(hs.subprotocol.empty());
    CHECK_FALSE(hs.deflate);
}

TEST_CASE("websocket handshake: keys") {
    CHECK(ws::valid_key(rfc_key));
    CHECK_FALSE(ws::valid_key(""));
    CHECK_FALSE(ws::valid_key("dGhlIHNhbXBsZSBub25jZQ"));     // padding left out
    CHECK_FALSE(ws::valid_key("dGhlIHNhbXBsZSBub25jZR=="));   // bits under the padding
    CHECK_FALSE(ws::valid_key("dGhlIHNhbXBsZSBub25jZQ=="
                              "AAAA"));                      // 19 bytes
    CHECK_FALSE(ws::valid_key("dGhlIHNhbXBsZSBub25j"));       // 15 bytes
    CHECK_FALSE(ws::valid_key("dGhlIHNhbXBsZSBub25jZQ=\""));
    std::mt19937 fixed(42);
    const std::string a = ws::make_key(fixed);
    CHECK(ws::valid_key(a));
    std::mt19937 same(42);
    CHECK(ws::make_key(same) == a); // the caller's generator decides
    std::set<std::string> fresh;
    for (int i = 0; i < 100; ++i) {
        const std::string k = ws::make_key();
        CHECK(ws::valid_key(k));
        fresh.insert(k);
    }
    CHECK(fresh.size() == 100);
}

TEST_CASE("websocket handshake: every refusal and its answer") {
    struct refused {
        std::string fields;
        error expected;
        int status;
    };
    const refused cases[] = {
        {"", error::upgrade_required, 426},
        {"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", error::upgrade_required, 426},
        {"Upgrade: h2c\r\nConnection: Upgrade\r\n", error::upgrade_required, 426},
        {"Upgrade: websocket\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
         error::missing_connection_upgrade, 400},
        {"Upgrade: websocket\r\nConnection: keep-alive\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n",
         error::missing_connection_upgrade, 400},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
         error::unsupported_websocket_version, 426},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 8\r\n",
         error::unsupported_websocket_version, 426},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n", error::bad_websocket_key, 400},
        {"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: c2hvcnQ=\r\nSec-WebSocket-Version: 13\r\n",
         error::bad_websocket_key, 400},
        {good_fields + "Sec-WebSocket-Protocol: chat, b@d\r\n", error::bad_extension_offer, 400},
        {good_fields + "Sec-WebSocket-Extensions: permessage-deflate; =1\r\n", error::bad_extension_offer, 400},
    };
    for (const refused& r : cases) {
        CAPTURE(r.fields);
        const ws::server_handshake hs = accept(request_with(r.fields));
        CHECK_FALSE(hs);
        CHECK(hs.error == r.expected);
        parley::http::response_parser answer;
        parse_response(std::string_view(hs.response).substr(0, hs.response.find("\r\n\r\n") + 4), answer);
        CHECK(answer.status() == r.status);
        CHECK(answer.has_token("Connection", "close"));
        CHECK(hs.response.find(hs.error.message()) != std::string::npos);
        if (r.status == 426)
            CHECK(answer.field("Sec-WebSocket-Version") == "13");
    }
    // HTTP/1.0 cannot upgrade.
    const ws::server_handshake old = accept("GET /ws HTTP/1.0\r\n" + good_fields + "\r\n");
    CHECK(old.error == error::upgrade_needs_http11);
    CHECK(parley::http::status(old.error) == 400);
}

TEST_CASE("websocket handshake: the Origin allow-list") {
    ws::server_options options;
    options.allowed_origins = {"http://127.0.0.1:8080", "https://chat.example"};
    CHECK(accept(request_with(good_fields + "Origin: http://127.0.0.1:8080\r\n"), options));
    CHECK(accept(request_with(good_fields + "Origin: HTTPS://Chat.Example\r\n"), options));
    CHECK(accept(request_with(good_fields), options)); // no Origin: not a browser
    const auto evil = accept(request_with(good_fields + "Origin: http://evil.example\r\n"), options);
    CHECK(evil.error == error::origin_not_allowed);
    CHECK(evil.response.rfind("HTTP/1.1 403 Forbidden\r\n", 0) == 0);
    CHECK(accept(request_with(good_fields + "Origin: null\r\n"), options).error == error::origin_not_allowed);
    options.allow_no_origin = false;
    CHECK(accept(request_with(good_fields), options).error == error::origin_not_allowed);
    // With no list, any origin is accepted.
    CHECK(accept(request_with(good_fields + "Origin: http://evil.example\r\n")));
}

TEST_CASE("websocket handshake: subprotocol selection follows the server's preference") {
    ws::server_options options;
    options.subprotocols = {"parley.v2", "parley.v1"};
    const auto both = accept(request_with(good_fields + "Sec-WebSocket-Protocol: parley.v1, parley.v2\r\n"), options);
    REQUIRE(both);
    CHECK(both.subprotocol == "parley.v2");
    CHECK(both.response.find("Sec-WebSocket-Protocol: parley.v2\r\n") != std::string::npos);
    const auto split = accept(request_with(good_fields + "Sec-WebSocket-Protocol: x\r\n"
                                                         "Sec-WebSocket-Protocol: parley.v1\r\n"),
                              options);
    CHECK(split.subprotocol == "parley.v1");
    const auto none = accept(request_with(good_fields + "Sec-WebSocket-Protocol: mqtt\r\n"), options);
    REQUIRE(none);
    CHECK(none.subprotocol.empty());
    CHECK(none.response.find("Sec-WebSocket-Protocol") == std::string::npos);
    // Names are compared exactly.
    CHECK(accept(request_with(good_fields + "Sec-WebSocket-Protocol: PARLEY.V1\r\n"), options).subprotocol.empty());
}

TEST_CASE("websocket handshake: parley's client and server, split at every point") {
    ws::client_options co;
    co.host = "127.0.0.1:8080";
    co.target = "/ws?room=lobby";
    co.origin = "http://127.0.0.1:8080";
    co.subprotocols = {"parley.v1", "chat"};
    ws::client_handshake client(co);
    ws::server_options so;
    so.subprotocols = {"chat"};
    so.allowed_origins = {"http://127.0.0.1:8080"};

    parley::http::request_parser request;
    std::error_code ec;
    CHECK(request.feed(client.request(), ec) == client.request().size());
    REQUIRE_FALSE(ec);
    REQUIRE(request.done());
    CHECK(request.target() == "/ws?room=lobby");
    const ws::server_handshake server = ws::accept_upgrade(request, so);
    REQUIRE(server);
    CHECK(server.subprotocol == "chat");

    const std::string first_frame = "\x81\x05hello";
    const std::string wire = server.response + first_frame;
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        ws::client_handshake c(co, client.key());
        std::size_t used = c.feed(std::string_view(wire).substr(0, cut), ec);
        REQUIRE_FALSE(ec);
        used += c.feed(std::string_view(wire).substr(used), ec);
        REQUIRE_FALSE(ec);
        CHECK(c.done());
        CHECK(wire.substr(used) == first_frame);
        CHECK(c.subprotocol() == "chat");
        CHECK_FALSE(c.deflate());
    }
}

TEST_CASE("websocket handshake: the client refuses a bad answer") {
    ws::client_options co;
    co.host = "localhost";
    co.subprotocols = {"chat"};
    const auto answer = [&](std::string_view wire) {
        ws::client_handshake c(co, rfc_key);
        std::error_code ec;
        c.feed(wire, ec);
        CHECK_FALSE(c.done());
        return ec;
    };
    const std::string ok = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n";
    {
        ws::client_handshake c(co, rfc_key);
        std::error_code ec;
        c.feed(ok + "\r\n", ec);
        CHECK_FALSE(ec);
        CHECK(c.done());
        CHECK(c.subprotocol().empty()); // the server may select none
    }
    CHECK(answer(parley::http::error_response(error::upgrade_required)) == error::not_switching_protocols);
    CHECK(answer("HTTP/1.1 200 OK\r\n\r\n") == error::not_switching_protocols);
    CHECK(answer("HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") == error::response_missing_upgrade);
    CHECK(answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") == error::response_missing_upgrade);
    CHECK(answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n") ==
          error::bad_accept);
    CHECK(answer("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo\r\n\r\n") == error::bad_accept);
    CHECK(answer(ok + "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n") == error::bad_accept);
    CHECK(answer(ok + "Sec-WebSocket-Protocol: mqtt\r\n\r\n") == error::unexpected_subprotocol);
    CHECK(answer(ok + "Sec-WebSocket-Protocol: chat\r\nSec-WebSocket-Protocol: chat\r\n\r\n") ==
          error::unexpected_subprotocol);
    CHECK(answer(ok + "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n") == error::unexpected_extension);
    CHECK(answer(ok + "Sec-WebSocket-Extensions: x-custom\r\n\r\n") == error::unexpected_extension);
    CHECK(answer("HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\r\n\r\n") == error::bad_line_ending);
}

TEST_CASE("websocket handshake: the client's request is checked when built") {
    ws::client_options co;
    co.host = "localhost";
    co.target = "ws";
    CHECK_THROWS_AS(ws::client_handshake{co}, std::invalid_argument);
    co.target = "/a b";
    CHECK_THROWS_AS(ws::client_handshake{co}, std::invalid_argument);
    co.target = "/";
    co.host = "localhost\r\nX-Injected: 1";
    CHECK_THROWS_AS(ws::client_handshake{co}, std::invalid_argument);
    co.host = "localhost";
    co.subprotocols = {"a b"};
    CHECK_THROWS_AS(ws::client_handshake{co}, std::invalid_argument);
}
