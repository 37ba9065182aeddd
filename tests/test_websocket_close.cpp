// Tests for include/parley/websocket/close.hpp. Included first: the header
// must stand on its own. The received codes follow Autobahn's cases 7.7
// (valid) and 7.9 / 7.13 (invalid); the payloads its 7.3 and 7.5 cases.
#include <parley/websocket/close.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <ostream> // doctest prints std::error_code through it
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace ws = parley::websocket;

namespace {

std::vector<std::byte> close_payload(unsigned code, std::string_view reason) {
    std::vector<std::byte> p{static_cast<std::byte>(code >> 8), static_cast<std::byte>(code & 0xFF)};
    for (char c : reason)
        p.push_back(static_cast<std::byte>(c));
    return p;
}

} // namespace

TEST_CASE("websocket close: which received codes are valid") {
    for (unsigned c : {1000u, 1001u, 1002u, 1003u, 1007u, 1008u, 1009u, 1010u, 1011u, 1012u, 1013u,
                       1014u, 3000u, 3999u, 4000u, 4999u}) {
        CAPTURE(c);
        CHECK(ws::is_valid_close_code(static_cast<std::uint16_t>(c)));
    }
    for (unsigned c : {0u, 1u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 1100u, 2000u, 2999u,
                       5000u, 65535u}) {
        CAPTURE(c);
        CHECK_FALSE(ws::is_valid_close_code(static_cast<std::uint16_t>(c)));
    }
    // The whole range, against the rule written the other way round.
    for (unsigned c = 0; c <= 65535; ++c) {
        const bool invalid = c < 1000 || (c >= 1004 && c <= 1006) || (c >= 1015 && c < 3000) ||
                             c >= 5000;
        if (ws::is_valid_close_code(static_cast<std::uint16_t>(c)) == invalid) {
            CAPTURE(c);
            FAIL("disagrees with the rule");
        }
    }
}

TEST_CASE("websocket close: parse an empty payload: no status, no reason") {
    std::error_code ec = ws::error::bad_opcode;
    const auto r = ws::parse_close_payload({}, ec);
    CHECK(!ec);
    CHECK(r.code == ws::close_code::no_status);
    CHECK(r.reason.empty());
}

TEST_CASE("websocket close: a 1-byte payload is a protocol error") {
    const std::byte one[] = {std::byte{0x03}};
    std::error_code ec;
    ws::parse_close_payload(one, ec);
    CHECK(ec == ws::error::close_payload_one_byte);
    CHECK(ws::close_code_for(ec) == ws::close_code::protocol_error);
}

TEST_CASE("websocket close: code only, code and reason, 123-byte reason") {
    std::error_code ec;
    auto p = close_payload(1000, "");
    auto r = ws::parse_close_payload(p, ec);
    CHECK(!ec);
    CHECK(r.code == ws::close_code::normal);
    CHECK(r.reason.empty());

    p = close_payload(4321, "Hello \xE2\x88\xAE"); // U+222E
    r = ws::parse_close_payload(p, ec);
    CHECK(!ec);
    CHECK(static_cast<unsigned>(r.code) == 4321);
    CHECK(r.reason == "Hello \xE2\x88\xAE");
    CHECK(r.reason.data() == reinterpret_cast<const char*>(p.data()) + 2); // a view, no copy

    p = close_payload(1001, std::string(123, '*'));
    r = ws::parse_close_payload(p, ec);
    CHECK(!ec);
    CHECK(r.reason.size() == 123);

    p = close_payload(1001, std::string(124, '*'));
    ws::parse_close_payload(p, ec);
    CHECK(ec == ws::error::control_frame_too_long);
}

TEST_CASE("websocket close: invalid codes are refused with 1002") {
    for (unsigned c : {0u, 999u, 1004u, 1005u, 1006u, 1015u, 1016u, 1100u, 2000u, 2999u, 5000u,
                       65535u}) {
        CAPTURE(c);
        std::error_code ec;
        ws::parse_close_payload(close_payload(c, "x"), ec);
        CHECK(ec == ws::error::invalid_close_code);
        CHECK(ws::close_code_for(ec) == ws::close_code::protocol_error);
    }
}

TEST_CASE("websocket close: a reason that is not UTF-8 is refused with 1007") {
    for (std::string_view bad : {std::string_view("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"
                                                  "\xED\xA0\x80\x65\x64\x69\x74\x65\x64"),
                                 std::string_view("\xC0\xAF"), std::string_view("abc\xE2\x82"),
                                 std::string_view("\xFF")}) {
        std::error_code ec;
        ws::parse_close_payload(close_payload(1000, bad), ec);
        CHECK(ec == ws::error::invalid_close_reason);
        CHECK(ws::close_code_for(ec) == ws::close_code::invalid_payload);
    }
}

TEST_CASE("websocket close: write_close_payload round-trips through parse_close_payload") {
    ws::close_payload_buffer buf{};
    std::error_code ec;
    for (auto code : {ws::close_code::normal, ws::close_code::going_away,
                      ws::close_code::protocol_error, ws::close_code::unsupported_data,
                      ws::close_code::invalid_payload, ws::close_code::policy_violation,
                      ws::close_code::message_too_big, ws::close_code::mandatory_extension,
                      ws::close_code::internal_error, ws::close_code{3000}, ws::close_code{4999}}) {
        for (std::string_view reason : {std::string_view(), std::string_view("bye"),
                                        std::string_view("\xE8\xBF\x9E\xE6\x8E\xA5")}) {
            const std::size_t n = ws::write_close_payload(code, reason, buf, ec);
            REQUIRE(!ec);
            CHECK(n == 2 + reason.size());
            const auto r = ws::parse_close_payload(std::span(buf).first(n), ec);
            CHECK(!ec);
            CHECK(r.code == code);
            CHECK(r.reason == reason);
        }
    }
    // 1000 is 0x03 0xE8 on the wire.
    CHECK(ws::write_close_payload(ws::close_code::normal, "", buf, ec) == 2);
    CHECK(buf[0] == std::byte{0x03});
    CHECK(buf[1] == std::byte{0xE8});
    // 123 bytes of reason is the most.
    CHECK(ws::write_close_payload(ws::close_code::normal, std::string(123, 'r'), buf, ec) == 125);
    CHECK(!ec);
}

TEST_CASE("websocket close: what must never be sent") {
    ws::close_payload_buffer buf{};
    std::error_code ec;
    // No status: an empty payload, allowed only without a reason.
    CHECK(ws::write_close_payload(ws::close_code::no_status, "", buf, ec) == 0);
    CHECK(!ec);
    CHECK(ws::write_close_payload(ws::close_code::no_status, "why", buf, ec) == 0);
    CHECK(ec == ws::error::invalid_close_code);
    for (auto code : {ws::close_code::abnormal, ws::close_code::tls_handshake, ws::close_code{999},
                      ws::close_code{1004}, ws::close_code{2999}, ws::close_code{5000}}) {
        CHECK(ws::write_close_payload(code, "", buf, ec) == 0);
        CHECK(ec == ws::error::invalid_close_code);
    }
    CHECK(ws::write_close_payload(ws::close_code::normal, std::string(124, 'r'), buf, ec) == 0);
    CHECK(ec == ws::error::close_reason_too_long);
    CHECK(ws::write_close_payload(ws::close_code::normal, "\xC3", buf, ec) == 0);
    CHECK(ec == ws::error::invalid_utf8_to_send);
}
