// Tests for include/parley/http/response_parser.hpp. Included first: the
// header must stand on its own.
#include <parley/http/response_parser.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>

namespace {
const std::string answer = "HTTP/1.1 101 Switching Protocols\r\n"
                           "Upgrade: websocket\r\n"
                           "Connection: Upgrade\r\n"
                           "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                           "\r\n";
}

TEST_CASE("http response_parser: a 101 at every split point, bytes after it left") {
    const std::string wire = answer + "\x81\x02hi";
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        parley::http::response_parser p;
        std::error_code ec;
        std::size_t used = p.feed(std::string_view(wire).substr(0, cut), ec);
        REQUIRE_FALSE(ec);
        used += p.feed(std::string_view(wire).substr(used), ec);
        REQUIRE_FALSE(ec);
        CHECK(p.done());
        CHECK(used == answer.size());
        CHECK(p.status() == 101);
        CHECK(p.reason() == "Switching Protocols");
        CHECK(p.field("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        CHECK(p.has_token("Connection", "upgrade"));
    }
}

TEST_CASE("http response_parser: refusals") {
    using parley::http::error;
    const auto refusal = [](std::string_view text) {
        parley::http::response_parser p;
        std::error_code ec;
        p.feed(text, ec);
        return ec;
    };
    CHECK_FALSE(refusal("HTTP/1.1 200 \r\n\r\n")); // an empty reason is fine
    CHECK(refusal("HTTP/1.1 200\r\n\r\n") == error::bad_status_line);
    CHECK(refusal("HTTP/2 101 Switching\r\n\r\n") == error::bad_status_line);
    CHECK(refusal("HTTP/1.1 1O1 x\r\n\r\n") == error::bad_status_line);
    CHECK(refusal("HTTP/1.1 099 x\r\n\r\n") == error::bad_status_line);
    CHECK(refusal("SSH-2.0-OpenSSH") == error::bad_status_line); // at once, not at the limit
    CHECK(refusal("HTTP/1.1 101 x\nUpgrade: websocket\r\n\r\n") == error::bad_line_ending);
    CHECK(refusal("HTTP/1.1 101 x\r\nUpgrade : websocket\r\n\r\n") == error::bad_field_name);
    CHECK(refusal("HTTP/1.1 101 x\r\nX: " + std::string(9000, 'a')) == error::response_too_large);
}
