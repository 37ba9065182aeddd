// Tests for include/parley/websocket/permessage_deflate.hpp: offers
// accepted, declined or refused by the server, the response written, and
// the client's check of the answer. No zlib needed. Included first: the
// header must stand on its own.
#include <parley/websocket/permessage_deflate.hpp>

#include <parley/http/request_parser.hpp>
#include <parley/websocket/handshake.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

namespace ws = parley::websocket;
using parley::http::error;

std::optional<ws::deflate_params> negotiate(std::vector<std::string_view> values, std::error_code& ec,
                                            ws::deflate_server_options o = {.enabled = true}) {
    return ws::negotiate_deflate(values, o, ec);
}

std::optional<ws::deflate_params> negotiate(std::string_view value,
                                            ws::deflate_server_options o = {.enabled = true}) {
    std::error_code ec;
    auto p = ws::negotiate_deflate(std::vector<std::string_view>{value}, o, ec);
    CHECK_FALSE(ec);
    return p;
}

} // namespace

TEST_CASE("permessage-deflate: the server accepts a plain offer with its defaults") {
    const auto p = negotiate("permessage-deflate");
    REQUIRE(p);
    CHECK(p->server_no_context_takeover); // parley's default: shareable broadcasts
    CHECK_FALSE(p->client_no_context_takeover);
    CHECK(p->server_max_window_bits == 15);
    CHECK(ws::deflate_response(*p) == "permessage-deflate; server_no_context_takeover");
    // A browser's offer.
    const auto chrome = negotiate("permessage-deflate; client_max_window_bits");
    REQUIRE(chrome);
    CHECK(ws::deflate_response(*chrome) == "permessage-deflate; server_no_context_takeover");
    CHECK(chrome->client_max_window_bits == 15);
}

TEST_CASE("permessage-deflate: parameters and their rules") {
    {
        const auto p = negotiate("permessage-deflate; server_max_window_bits=10; client_no_context_takeover");
        REQUIRE(p);
        CHECK(p->server_max_window_bits == 10);
        CHECK(p->client_no_context_takeover);
        CHECK(ws::deflate_response(*p) ==
              "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10");
    }
    {
        // The server answers with the same or a smaller window.
        ws::deflate_server_options o{.enabled = true, .server_max_window_bits = 9};
        const auto p = negotiate("permessage-deflate; server_max_window_bits=12", o);
        REQUIRE(p);
        CHECK(p->server_max_window_bits == 9);
        // Not offered: the server uses its smaller window without saying so.
        const auto q = negotiate("permessage-deflate", o);
        REQUIRE(q);
        CHECK(q->server_max_window_bits == 9);
        CHECK(ws::deflate_response(*q).find("server_max_window_bits") == std::string::npos);
    }
    {
        // A server sharing one compressed frame among recipients declines
        // offers that limit its window below its own; the next is tried.
        ws::deflate_server_options o{.enabled = true, .allow_server_window_limit = false};
        CHECK_FALSE(negotiate("permessage-deflate; server_max_window_bits=12", o));
        const auto p = negotiate("permessage-deflate; server_max_window_bits=15", o);
        REQUIRE(p);
        CHECK(p->server_max_window_bits == 15);
        const auto q = negotiate("permessage-deflate; server_max_window_bits=12, permessage-deflate", o);
        REQUIRE(q);
        CHECK(q->server_max_window_bits == 15);
        CHECK(ws::deflate_response(*q) == "permessage-deflate; server_no_context_takeover");
    }
    {
        // client_max_window_bits only when the client allowed it.
        ws::deflate_server_options o{.enabled = true, .client_max_window_bits = 10};
        CHECK(ws::deflate_response(*negotiate("permessage-deflate", o)).find("client_max_window_bits") ==
              std::string::npos);
        const auto p = negotiate("permessage-deflate; client_max_window_bits", o);
        REQUIRE(p);
        CHECK(p->client_max_window_bits == 10);
        CHECK(ws::deflate_response(*p).find("client_max_window_bits=10") != std::string::npos);
        const auto q = negotiate("permessage-deflate; client_max_window_bits=9", o);
        CHECK(q->client_max_window_bits == 9);
        const auto r = negotiate("permessage-deflate; client_max_window_bits=\"12\"", o); // quoted
        REQUIRE(r);
        CHECK(r->client_max_window_bits == 10);
    }
    {
        ws::deflate_server_options o{.enabled = true, .server_no_context_takeover = false};
        CHECK_FALSE(negotiate("permessage-deflate", o)->server_no_context_takeover);
        CHECK(negotiate("permessage-deflate; server_no_context_takeover", o)->server_no_context_takeover);
    }
}

TEST_CASE("permessage-deflate: bad offers are declined, the next one is tried") {
    for (const std::string_view bad : {
             "permessage-deflate; unknown",
             "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
             "permessage-deflate; server_no_context_takeover=1",
             "permessage-deflate; server_max_window_bits",
             "permessage-deflate; server_max_window_bits=16",
             "permessage-deflate; server_max_window_bits=7",
             "permessage-deflate; server_max_window_bits=08",
             "permessage-deflate; server_max_window_bits=8", // zlib cannot
             "permessage-deflate; client_max_window_bits=0",
             "x-webkit-deflate-frame",
         }) {
        CAPTURE(bad);
        CHECK_FALSE(negotiate(bad));
        const auto next = negotiate(std::string(bad) + ", permessage-deflate; client_no_context_takeover");
        REQUIRE(next);
        CHECK(next->client_no_context_takeover);
    }
    // Offers may come in several fields.
    std::error_code ec;
    const auto p = negotiate({"foo", "permessage-deflate; server_max_window_bits=11"}, ec);
    CHECK_FALSE(ec);
    REQUIRE(p);
    CHECK(p->server_max_window_bits == 11);
    // Off: nothing is accepted, but the header is still checked.
    CHECK_FALSE(negotiate("permessage-deflate", {}));
}

TEST_CASE("permessage-deflate: a header that does not parse is a 400") {
    for (const std::string_view bad : {"permessage-deflate;", "permessage-deflate; =1", "permessage-deflate; a=",
                                       "permessage-deflate; a=\"1", "permessage-deflate; a=\"1 2\"", ";x", "a b",
                                       "permessage-deflate; a=1;; b"}) {
        CAPTURE(bad);
        std::error_code ec;
        CHECK_FALSE(negotiate({bad}, ec));
        CHECK(ec == error::bad_extension_offer);
        CHECK(parley::http::status(ec) == 400);
    }
    std::error_code ec;
    CHECK(negotiate({"permessage-deflate , , x"}, ec)); // empty list elements are allowed
    CHECK_FALSE(ec);
}

TEST_CASE("permessage-deflate: the client checks the answer against its offer") {
    ws::deflate_client_options o{.enabled = true};
    CHECK(ws::deflate_offer(o) == "permessage-deflate; client_max_window_bits");
    const auto check = [&](std::vector<std::string_view> answer, std::error_code& ec) {
        return ws::accept_deflate_response(answer, o, ec);
    };
    std::error_code ec;
    CHECK_FALSE(check({}, ec)); // declined
    CHECK_FALSE(ec);
    auto p = check({"permessage-deflate; server_no_context_takeover; client_max_window_bits=10"}, ec);
    CHECK_FALSE(ec);
    REQUIRE(p);
    CHECK(p->server_no_context_takeover);
    CHECK(p->client_max_window_bits == 10);
    // Python websockets 10.4's server answers a plain offer like this: a
    // server window the client did not ask to limit is accepted (it only
    // makes the server's window smaller), and the client window it set.
    p = check({"permessage-deflate; server_max_window_bits=12; client_max_window_bits=12"}, ec);
    CHECK_FALSE(ec);
    REQUIRE(p);
    CHECK(p->server_max_window_bits == 12);
    CHECK(p->client_max_window_bits == 12);
    CHECK_FALSE(p->server_no_context_takeover);
    for (const std::string_view bad : {"permessage-deflate; client_max_window_bits",   // needs a value
                                       "permessage-deflate; client_max_window_bits=8", // zlib cannot
                                       "permessage-deflate; foo", "permessage-deflate, permessage-deflate",
                                       "x-other", "permessage-deflate; server_no_context_takeover=x", ";"}) {
        CAPTURE(bad);
        CHECK_FALSE(check({bad}, ec));
        CHECK(ec == error::unexpected_extension);
    }
    o.server_max_window_bits = 10;
    o.server_no_context_takeover = true;
    CHECK(ws::deflate_offer(o) ==
          "permessage-deflate; client_max_window_bits; server_no_context_takeover; server_max_window_bits=10");
    CHECK_FALSE(check({"permessage-deflate; server_max_window_bits=10"}, ec)); // no_context_takeover not echoed
    CHECK(ec == error::unexpected_extension);
    CHECK_FALSE(check({"permessage-deflate; server_no_context_takeover; server_max_window_bits=11"}, ec));
    CHECK(ec == error::unexpected_extension);
    p = check({"permessage-deflate; server_no_context_takeover; server_max_window_bits=9"}, ec);
    CHECK_FALSE(ec);
    REQUIRE(p);
    CHECK(p->server_max_window_bits == 9);
}

TEST_CASE("permessage-deflate: negotiated through parley's handshake, both sides") {
    ws::client_options co;
    co.host = "localhost";
    co.deflate.enabled = true;
    ws::client_handshake client(co);
    CHECK(client.request().find("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n") !=
          std::string::npos);
    parley::http::request_parser request;
    std::error_code ec;
    request.feed(client.request(), ec);
    REQUIRE(request.done());
    ws::server_options so;
    so.deflate.enabled = true;
    const auto server = ws::accept_upgrade(request, so);
    REQUIRE(server);
    REQUIRE(server.deflate);
    client.feed(server.response, ec);
    CHECK_FALSE(ec);
    REQUIRE(client.done());
    REQUIRE(client.deflate());
    CHECK(client.deflate()->server_no_context_takeover);
    // A server with compression off declines it, and the client goes on without.
    const auto off = ws::accept_upgrade(request, {});
    CHECK_FALSE(off.deflate);
    ws::client_handshake again(co, client.key());
    again.feed(off.response, ec);
    CHECK_FALSE(ec);
    CHECK(again.done());
    CHECK_FALSE(again.deflate());
}
