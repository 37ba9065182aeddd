// Tests for include/parley/http/response.hpp. Included first: the header
// must stand on its own.
#include <parley/http/response.hpp>

#include <parley/http/response_parser.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it

#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace {

// Parses a response parley built, with parley's own strict parser: it is
// well-formed HTTP/1.1 and its body is exactly Content-Length long.
struct parsed {
    parley::http::response_parser head;
    std::string body;
};

void parse(std::string_view wire, parsed& out) {
    std::error_code ec;
    const std::size_t used = out.head.feed(wire, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(out.head.done());
    out.body = std::string(wire.substr(used));
    REQUIRE(out.head.field("Content-Length") == std::to_string(out.body.size()));
}

} // namespace

TEST_CASE("http response: make_response builds a complete answer") {
    parsed r;
    parse(parley::http::make_response(200, "text/html; charset=utf-8", "<p>hi</p>", {{"Cache-Control", "no-store"}}), r);
    CHECK(r.head.status() == 200);
    CHECK(r.head.reason() == "OK");
    CHECK(r.head.field("Content-Type") == "text/html; charset=utf-8");
    CHECK(r.head.field("Cache-Control") == "no-store");
    CHECK(r.head.field("Connection") == "close");
    CHECK(r.body == "<p>hi</p>");
    parsed nf;
    parse(parley::http::make_response(404, "text/plain", "not here\n"), nf);
    CHECK(nf.head.status() == 404);
    CHECK(nf.head.reason() == "Not Found");
    // A field cannot smuggle a line break into the head.
    CHECK_THROWS_AS(parley::http::make_response(200, "text/plain", "", {{"X", "a\r\nSet-Cookie: x"}}),
                    std::invalid_argument);
    CHECK_THROWS_AS(parley::http::make_response(200, "text/plain", "", {{"Bad Name", "a"}}),
                    std::invalid_argument);
}

TEST_CASE("http response: error_response for each status") {
    using parley::http::error;
    for (const error e : {error::bad_request_line, error::method_not_allowed, error::upgrade_required,
                          error::unsupported_websocket_version, error::origin_not_allowed,
                          error::header_too_large, error::version_not_supported}) {
        const std::error_code ec = e;
        parsed r;
        parse(parley::http::error_response(ec), r);
        CHECK(r.head.status() == parley::http::status(e));
        CHECK(r.head.field("Content-Type") == "text/plain; charset=utf-8");
        CHECK(r.head.has_token("Connection", "close"));
        // A person reading it learns the status and why.
        CHECK(r.body.find(std::to_string(r.head.status())) == 0);
        CHECK(r.body.find(ec.message()) != std::string::npos);
        if (r.head.status() == 405)
            CHECK(r.head.field("Allow") == "GET");
        if (r.head.status() == 426) {
            CHECK(r.head.field("Sec-WebSocket-Version") == "13");
            CHECK(r.head.field("Upgrade") == "websocket");
            CHECK(r.head.has_token("Connection", "upgrade"));
        }
    }
    parsed other;
    parse(parley::http::error_response(std::make_error_code(std::errc::io_error)), other);
    CHECK(other.head.status() == 500);
}
