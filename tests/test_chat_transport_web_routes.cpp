// Tests for include/parley/chat/transport/web_routes.hpp: what the chat's
// web port answers to each request, with no network. Included first: the
// header must stand on its own.
#include <parley/chat/transport/web_routes.hpp>

#include <parley/http/response_parser.hpp>

#include <doctest/doctest.h>

#include <ostream>
#include <string>
#include <string_view>
#include <system_error>

namespace {

namespace transport = parley::chat::transport;
using kind = transport::web_answer::kind;

transport::web_answer route(std::string_view wire, const transport::web_options& options = {}) {
    parley::http::request_parser p;
    std::error_code ec;
    p.feed(wire, ec);
    if (ec)
        return transport::refuse_web_request(ec);
    REQUIRE(p.done());
    return transport::route_web_request(p, options);
}

std::string upgrade(std::string_view origin_field) {
    return "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           std::string(origin_field) + "\r\n";
}

int status_of(const std::string& response) {
    parley::http::response_parser r;
    std::error_code ec;
    r.feed(response, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(r.done());
    return r.status();
}

} // namespace

TEST_CASE("web routes: GET / is the chat page, with headers that keep it to itself") {
    const auto a = route("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(a.what == kind::respond);
    CHECK(a.status == 200);
    CHECK_FALSE(a.error);
    CHECK(status_of(a.response) == 200);
    CHECK(a.response.find("Content-Type: text/html; charset=utf-8\r\n") != std::string::npos);
    CHECK(a.response.find("frame-ancestors 'none'") != std::string::npos);
    CHECK(a.response.find("X-Content-Type-Options: nosniff") != std::string::npos);
    CHECK(a.response.find("Content-Length: " + std::to_string(parley::chat::web::chat_page.size())) !=
          std::string::npos);
    CHECK(a.response.ends_with(parley::chat::web::chat_page));
    CHECK(route("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n").status == 200);
}

TEST_CASE("web routes: GET /ws upgrades; the page's own origin only, unless told otherwise") {
    const auto same = route(upgrade("Origin: http://127.0.0.1:8080\r\n"));
    CHECK(same.what == kind::upgrade);
    CHECK(same.status == 101);
    CHECK(status_of(same.response) == 101);
    CHECK(same.response.find("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=") != std::string::npos);
    // A program, not a browser: no Origin at all.
    CHECK(route(upgrade("")).what == kind::upgrade);
    // Another site's page: refused (cross-site WebSocket hijacking).
    const auto other = route(upgrade("Origin: https://evil.example\r\n"));
    CHECK(other.what == kind::respond);
    CHECK(other.status == 403);
    CHECK(status_of(other.response) == 403);
    // The scheme counts: the port is not under TLS.
    CHECK(route(upgrade("Origin: https://127.0.0.1:8080\r\n")).status == 403);
    transport::web_options secure;
    secure.secure = true;
    CHECK(route(upgrade("Origin: https://127.0.0.1:8080\r\n"), secure).what == kind::upgrade);
    // An allow-list replaces the same-origin rule.
    transport::web_options listed;
    listed.allowed_origins = {"https://chat.example.org"};
    CHECK(route(upgrade("Origin: https://chat.example.org\r\n"), listed).what == kind::upgrade);
    CHECK(route(upgrade("Origin: http://127.0.0.1:8080\r\n"), listed).status == 403);
}

TEST_CASE("web routes: everything else is a plain HTTP error") {
    CHECK(route("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
    CHECK(status_of(route("GET /nothing HTTP/1.1\r\nHost: x\r\n\r\n").response) == 404);
    // /ws without the upgrade: 426, naming the version to use.
    const auto plain = route("GET /ws HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(plain.status == 426);
    CHECK(plain.response.find("Sec-WebSocket-Version: 13") != std::string::npos);
    CHECK(route("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").status == 405);
    CHECK(route("GET / HTTP/2.0\r\nHost: x\r\n\r\n").status == 505);
    CHECK(route("GET / HTTP/1.1\r\n\r\n").status == 400); // no Host
    const auto big = route("GET / HTTP/1.1\r\nHost: x\r\nX: " + std::string(9000, 'a') + "\r\n\r\n");
    CHECK(big.status == 431);
    CHECK(big.what == kind::respond);
    CHECK(status_of(big.response) == 431);
}

TEST_CASE("web routes: /healthz is ok; /metrics asks the server at each request, or is not found") {
    const auto health = route("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(health.what == kind::respond);
    CHECK(health.status == 200);
    CHECK(health.response.find("\r\n\r\nok\n") != std::string::npos);

    CHECK(route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").status == 404);
    transport::web_options options;
    int calls = 0;
    options.metrics = [&] { return "parley_chat_rooms " + std::to_string(++calls) + "\n"; };
    const auto first = route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", options);
    CHECK(first.status == 200);
    CHECK(first.what == kind::respond);
    CHECK(first.response.find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(first.response.find("\r\n\r\nparley_chat_rooms 1\n") != std::string::npos);
    const auto second = route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", options);
    CHECK(second.response.find("\r\n\r\nparley_chat_rooms 2\n") != std::string::npos);
}

#if PARLEY_HAVE_ZLIB
TEST_CASE("websocket deflate: web routes accept permessage-deflate when told, without context takeover") {
    const std::string offer = "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n";
    // Off by default: declined.
    const auto off = route(upgrade(offer));
    CHECK(off.what == kind::upgrade);
    CHECK_FALSE(off.deflate);
    CHECK(off.response.find("permessage-deflate") == std::string::npos);
    transport::web_options on;
    on.deflate = true;
    const auto yes = route(upgrade(offer), on);
    CHECK(yes.what == kind::upgrade);
    CHECK(yes.deflate);
    CHECK(yes.response.find("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                            "client_no_context_takeover") != std::string::npos);
    // An offer limiting the server's window would need a broadcast
    // compressed apart: declined, the connection goes uncompressed.
    const auto limited =
        route(upgrade("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n"), on);
    CHECK(limited.what == kind::upgrade);
    CHECK_FALSE(limited.deflate);
    // ... unless a later offer in the list is acceptable.
    const auto second = route(upgrade("Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10, "
                                      "permessage-deflate\r\n"),
                              on);
    CHECK(second.deflate);
    // No offer at all.
    CHECK_FALSE(route(upgrade(""), on).deflate);
}
#endif
