// Tests for include/parley/http/request_parser.hpp: valid heads whole and
// split at every point, each refusal with its status, the limits at their
// edge, and the bytes after the head left to the caller. Included first:
// the header must stand on its own.
#include <parley/http/request_parser.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>

namespace {

using parley::http::error;
using parley::http::request_parser;

const std::string upgrade = "GET /ws?room=1 HTTP/1.1\r\n"
                            "Host: 127.0.0.1:8080\r\n"
                            "Upgrade: websocket\r\n"
                            "Connection: keep-alive, Upgrade\r\n"
                            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                            "Sec-WebSocket-Version: 13\r\n"
                            "\r\n";

struct outcome {
    std::error_code ec;
    std::size_t used = 0;
    bool done = false;
};

// Feeds `text` whole.
outcome parse(std::string_view text, request_parser& p) {
    outcome o;
    o.used = p.feed(text, o.ec);
    o.done = p.done();
    return o;
}

outcome parse(std::string_view text, parley::http::head_limits limits = {}) {
    request_parser p(limits);
    return parse(text, p);
}

// The error `text` is refused with, fed whole.
std::error_code refusal(std::string_view text) { return parse(text).ec; }

} // namespace

TEST_CASE("http request_parser: a WebSocket upgrade, whole") {
    request_parser p;
    const outcome o = parse(upgrade, p);
    REQUIRE_FALSE(o.ec);
    CHECK(o.done);
    CHECK(o.used == upgrade.size());
    CHECK(p.method() == "GET");
    CHECK(p.target() == "/ws?room=1");
    CHECK(p.path() == "/ws");
    CHECK(p.version_minor() == 1);
    CHECK(p.field_count() == 5);
    CHECK(p.field("host") == "127.0.0.1:8080");
    CHECK(p.field("SEC-WEBSOCKET-KEY") == "dGhlIHNhbXBsZSBub25jZQ==");
    CHECK_FALSE(p.field("Origin"));
    CHECK(p.has_token("connection", "upgrade"));
    CHECK(p.has_token("Connection", "Keep-Alive"));
    CHECK_FALSE(p.has_token("Connection", "close"));
    CHECK(p.field_name(1) == "Upgrade");
    CHECK(p.field_value(1) == "websocket");
    CHECK(p.size() == upgrade.size());
}

TEST_CASE("http request_parser: every split point gives the same result, and the bytes after the head are left") {
    const std::string after = "\x81\x85" "abcd" "12345"; // a frame sent right behind the head
    const std::string wire = upgrade + after;
    for (std::size_t cut = 0; cut <= wire.size(); ++cut) {
        request_parser p;
        std::error_code ec;
        const std::size_t first = p.feed(std::string_view(wire).substr(0, cut), ec);
        REQUIRE_FALSE(ec);
        CHECK(first == std::min(cut, upgrade.size()));
        const std::size_t second = p.feed(std::string_view(wire).substr(first), ec);
        REQUIRE_FALSE(ec);
        CHECK(p.done());
        CHECK(first + second == upgrade.size());
        CHECK(wire.substr(first + second) == after);
        CHECK(p.target() == "/ws?room=1");
        CHECK(p.field("Sec-WebSocket-Version") == "13");
        // Once done it takes nothing more.
        CHECK(p.feed("GET", ec) == 0);
        CHECK_FALSE(ec);
    }
    // One byte at a time.
    request_parser p;
    std::error_code ec;
    std::size_t used = 0;
    for (const char c : wire)
        used += p.feed(std::string_view(&c, 1), ec);
    CHECK_FALSE(ec);
    CHECK(used == upgrade.size());
    CHECK(p.field("Connection") == "keep-alive, Upgrade");
}

TEST_CASE("http request_parser: what is accepted") {
    CHECK(parse("GET / HTTP/1.0\r\n\r\n").done); // HTTP/1.0 needs no Host
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\n\r\n").done);
    CHECK(parse("GET / HTTP/1.1\r\nHost:x\r\n\r\n").done); // OWS is optional
    CHECK(parse("GET / HTTP/1.1\r\nHost: \t x \t\r\n\r\n").done);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").done);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nX-Empty:\r\n\r\n").done);
    CHECK(parse("GET / HTTP/1.1\r\nHost: x\r\nX-Utf8: \xE8\xBF\x9E\r\n\r\n").done); // obs-text
    CHECK(parse("GET /a/b?c=d&e=%20 HTTP/1.1\r\nHost: x\r\n\r\n").done);
    request_parser p;
    parse("GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\na: 2\r\n\r\n", p);
    CHECK(p.count("A") == 2);
    CHECK(p.field("a") == "1"); // the first
}

TEST_CASE("http request_parser: each malformed head gets its error and status") {
    using parley::http::status;
    struct refused {
        std::string_view text;
        error expected;
        int status;
    };
    const refused cases[] = {
        {"GET / HTTP/1.1\nHost: x\r\n\r\n", error::bad_line_ending, 400},
        {"GET / HTTP/1.1\r\nHost: x\n\r\n", error::bad_line_ending, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\n\n", error::bad_line_ending, 400},
        {"GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n", error::bad_line_ending, 400},
        {"\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n", error::bad_request_line, 400},
        {"GET  / HTTP/1.1\r\nHost: x\r\n\r\n", error::bad_request_line, 400},
        {"GET / HTTP/1.1 \r\nHost: x\r\n\r\n", error::bad_request_line, 400},
        {"GET /\r\n\r\n", error::bad_request_line, 400},
        {" GET / HTTP/1.1\r\n\r\n", error::bad_request_line, 400},
        {"G(T / HTTP/1.1\r\n\r\n", error::bad_request_line, 400},
        {"\x16\x03\x01\x02\x00", error::bad_request_line, 400}, // a TLS hello: refused at once
        {"POST / HTTP/1.1\r\nHost: x\r\n\r\n", error::method_not_allowed, 405},
        {"get / HTTP/1.1\r\nHost: x\r\n\r\n", error::method_not_allowed, 405}, // methods are case-sensitive
        {"HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", error::method_not_allowed, 405},
        {"GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", error::bad_target, 400},
        {"GET * HTTP/1.1\r\nHost: x\r\n\r\n", error::bad_target, 400},
        {"GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", error::bad_target, 400},
        {"GET /\x7F HTTP/1.1\r\nHost: x\r\n\r\n", error::bad_target, 400},
        {"GET /\xC3\xA9 HTTP/1.1\r\nHost: x\r\n\r\n", error::bad_target, 400},
        {"GET / HTTP/1.1x\r\nHost: x\r\n\r\n", error::bad_version, 400},
        {"GET / http/1.1\r\nHost: x\r\n\r\n", error::bad_version, 400},
        {"GET / HTTP/1\r\nHost: x\r\n\r\n", error::bad_version, 400},
        {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", error::version_not_supported, 505},
        {"GET / HTTP/1.2\r\nHost: x\r\n\r\n", error::version_not_supported, 505},
        {"GET / HTTP/0.9\r\n\r\n", error::version_not_supported, 505},
        {"GET / HTTP/1.1\r\nHost : x\r\n\r\n", error::bad_field_name, 400},
        {"GET / HTTP/1.1\r\nHo(st: x\r\n\r\n", error::bad_field_name, 400},
        {"GET / HTTP/1.1\r\n: x\r\n\r\n", error::bad_field_name, 400},
        {"GET / HTTP/1.1\r\nHost x\r\n\r\n", error::missing_colon, 400},
        {std::string_view("GET / HTTP/1.1\r\nHost: x\0y\r\n\r\n", 29), error::bad_field_value, 400},
        {"GET / HTTP/1.1\r\nHost: x\x7F\r\n\r\n", error::bad_field_value, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n", error::obsolete_line_folding, 400},
        {"GET / HTTP/1.1\r\n Host: x\r\n\r\n", error::obsolete_line_folding, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n", error::duplicate_field, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nSec-WebSocket-Key: a\r\nSec-WebSocket-Key: b\r\n\r\n",
         error::duplicate_field, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nOrigin: a\r\norigin: a\r\n\r\n", error::duplicate_field, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
         error::duplicate_field, 400},
        {"GET / HTTP/1.1\r\n\r\n", error::missing_host, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello", error::body_not_allowed, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", error::body_not_allowed, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", error::bad_field_value, 400},
        {"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 2\r\n\r\n", error::bad_field_value, 400},
    };
    for (const refused& r : cases) {
        CAPTURE(r.text);
        const std::error_code ec = refusal(r.text);
        CHECK(ec == r.expected);
        CHECK(status(ec) == r.status);
        CHECK(ec.category().name() == std::string("parley.http"));
        // The same error wherever the bytes are split.
        for (std::size_t cut = 0; cut <= r.text.size(); ++cut) {
            request_parser p;
            std::error_code split;
            const std::size_t first = p.feed(r.text.substr(0, cut), split);
            if (!split)
                p.feed(r.text.substr(first), split);
            CHECK_MESSAGE(split == r.expected, "split at ", cut);
        }
    }
    // A bad byte in the method is refused as a bad request line, split or
    // not, before the line ends.
    CHECK(refusal("G\x01T\n") == error::bad_request_line);
    CHECK(refusal("GE\rT / HTTP/1.1\r\n") == error::bad_request_line);
}

TEST_CASE("http request_parser: an error sticks, and is found at any split") {
    const std::string bad = "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n";
    for (std::size_t cut = 0; cut <= bad.size(); ++cut) {
        request_parser p;
        std::error_code ec;
        const std::size_t first = p.feed(std::string_view(bad).substr(0, cut), ec);
        if (!ec)
            p.feed(std::string_view(bad).substr(first), ec);
        CHECK(ec == error::bad_field_name);
        CHECK_FALSE(p.done());
        std::error_code again;
        CHECK(p.feed("\r\n\r\n", again) == 0);
        CHECK(again == error::bad_field_name);
    }
}

TEST_CASE("http request_parser: the head size limit, exactly and one byte over") {
    const std::string start = "GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ";
    const std::string end = "\r\n\r\n";
    const std::size_t limit = 8 * 1024;
    const std::string exact = start + std::string(limit - start.size() - end.size(), 'p') + end;
    REQUIRE(exact.size() == limit);
    const std::string over = start + std::string(limit + 1 - start.size() - end.size(), 'p') + end;
    CHECK(parse(exact).done);
    CHECK(parse(exact + "trailing").used == limit);
    const outcome o = parse(over);
    CHECK(o.ec == error::header_too_large);
    CHECK(parley::http::status(o.ec) == 431);
    CHECK(o.used <= over.size());
    // Byte by byte too: refused when byte 8,193 arrives, not at the end.
    request_parser p;
    std::error_code ec;
    std::size_t fed = 0;
    while (!ec && fed < over.size())
        p.feed(std::string_view(over).substr(fed++, 1), ec);
    CHECK(ec == error::header_too_large);
    CHECK(fed == limit + 1);
    // A request that never ends its line is refused at the limit, too.
    CHECK(parse("GET /" + std::string(limit, 'a')).ec == error::header_too_large);
    // The limit is configurable.
    parley::http::head_limits small;
    small.max_bytes = 64;
    CHECK(parse(upgrade, small).ec == error::header_too_large);
    small.max_bytes = upgrade.size();
    CHECK(parse(upgrade, small).done);
}

TEST_CASE("http request_parser: the field count limit") {
    parley::http::head_limits limits;
    limits.max_fields = 3;
    const std::string three = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
    const std::string four = "GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK(parse(three, limits).done);
    const outcome o = parse(four, limits);
    CHECK(o.ec == error::too_many_fields);
    CHECK(parley::http::status(o.ec) == 431);
    // The default is 64.
    std::string many = "GET / HTTP/1.1\r\n";
    for (int i = 0; i < 64; ++i)
        many += "H" + std::to_string(i) + ": v\r\n";
    CHECK(parse(many + "\r\n").ec == error::missing_host); // 64 fields taken, none is Host
    CHECK(parse(many + "Host: x\r\n\r\n").ec == error::too_many_fields);
}

TEST_CASE("http request_parser: reset() reads the next request") {
    request_parser p;
    std::error_code ec;
    p.feed("POST / HTTP/1.1\r\n", ec);
    CHECK(ec == error::method_not_allowed);
    p.reset();
    CHECK(p.feed(upgrade, ec) == upgrade.size());
    CHECK_FALSE(ec);
    CHECK(p.done());
    CHECK(p.path() == "/ws");
}
