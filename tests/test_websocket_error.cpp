// Tests for include/parley/websocket/error.hpp. Included first: the header
// must stand on its own.
#include <parley/websocket/error.hpp>

#include <parley/error.hpp>
#include <parley/websocket/close.hpp>

#include <doctest/doctest.h>

#include <cstdint>
#include <ostream> // doctest prints std::error_code through it
#include <set>
#include <string>
#include <system_error>
#include <vector>

namespace ws = parley::websocket;

namespace {

constexpr const char* unknown_message = "unknown parley.websocket error";

// Every value of the enum, walking up from 1 until the category no longer
// knows the number (the enum is contiguous from 1).
std::vector<int> known_values() {
    std::vector<int> values;
    for (int v = 1; ws::error_category().message(v) != unknown_message; ++v)
        values.push_back(v);
    return values;
}

std::uint16_t code_of(ws::error e) { return static_cast<std::uint16_t>(ws::close_code_for(e)); }

} // namespace

TEST_CASE("websocket error: the category is named parley.websocket and is one object") {
    CHECK(std::string(ws::error_category().name()) == "parley.websocket");
    CHECK(&ws::error_category() == &ws::error_category());
    const std::error_code ec = ws::error::bad_opcode;
    CHECK(&ec.category() == &ws::error_category());
    // Not to be confused with parley's own error of the same number.
    CHECK(ec != std::error_code(parley::error::frame_too_large));
}

TEST_CASE("websocket error: every value has its own message naming WebSocket") {
    const auto values = known_values();
    CHECK(values.size() == static_cast<std::size_t>(ws::error::not_open));
    std::set<std::string> seen;
    for (int v : values) {
        const std::string m = ws::error_category().message(v);
        CAPTURE(v);
        CHECK(m.find("WebSocket") != std::string::npos);
        CHECK(seen.insert(m).second);
    }
    CHECK(ws::error_category().message(0) == unknown_message);
    CHECK(ws::error_category().message(1000) == unknown_message);
}

TEST_CASE("websocket error: messages a user understands") {
    CHECK(std::error_code(ws::error::unmasked_client_frame).message() ==
          "WebSocket client sent an unmasked frame");
    CHECK(std::error_code(ws::error::invalid_utf8).message() ==
          "WebSocket text message is not valid UTF-8");
    CHECK(std::error_code(ws::error::control_frame_too_long).message().find("125 bytes") !=
          std::string::npos);
}

TEST_CASE("websocket error: each error is answered with the close code RFC 6455 asks for") {
    // Bad data in a text message or a close reason: 1007.
    CHECK(code_of(ws::error::invalid_utf8) == 1007);
    CHECK(code_of(ws::error::invalid_close_reason) == 1007);
    // Too big: 1009.
    CHECK(code_of(ws::error::message_too_big) == 1009);
    // Breaches of the framing rules: 1002.
    for (auto e : {ws::error::bad_opcode, ws::error::reserved_bits,
                   ws::error::misplaced_compression_bit, ws::error::unmasked_client_frame,
                   ws::error::masked_server_frame, ws::error::non_minimal_length,
                   ws::error::length_out_of_range, ws::error::control_frame_too_long,
                   ws::error::fragmented_control_frame, ws::error::continuation_without_start,
                   ws::error::message_not_finished, ws::error::invalid_close_code,
                   ws::error::close_payload_one_byte, ws::error::data_after_close}) {
        CAPTURE(static_cast<int>(e));
        CHECK(code_of(e) == 1002);
    }
    // Local mistakes: 1011; a cut connection: 1006, which is never sent.
    CHECK(code_of(ws::error::close_reason_too_long) == 1011);
    CHECK(code_of(ws::error::invalid_utf8_to_send) == 1011);
    CHECK(code_of(ws::error::truncated) == 1006);
    CHECK_FALSE(ws::is_valid_close_code(ws::close_code_for(ws::error::truncated)));
    // The stream's own: a connection cut without a close frame is 1006 too.
    CHECK(code_of(ws::error::no_close_frame) == 1006);
    CHECK(code_of(ws::error::closed) == 1000);
    // Every code sent for a peer's error is one a peer may receive.
    for (int v : known_values()) {
        const auto e = static_cast<ws::error>(v);
        if (e != ws::error::truncated && e != ws::error::no_close_frame) {
            CAPTURE(v);
            CHECK(ws::is_valid_close_code(ws::close_code_for(e)));
        }
    }
}

TEST_CASE("websocket error: close_code_for an error_code") {
    CHECK(ws::close_code_for(std::error_code()) == ws::close_code::normal);
    CHECK(ws::close_code_for(std::error_code(ws::error::message_too_big)) ==
          ws::close_code::message_too_big);
    CHECK(ws::close_code_for(std::make_error_code(std::errc::connection_reset)) ==
          ws::close_code::internal_error);
}

TEST_CASE("websocket error: generic conditions") {
    CHECK(std::error_code(ws::error::message_too_big) == std::errc::message_size);
    CHECK(std::error_code(ws::error::invalid_utf8) == std::errc::illegal_byte_sequence);
    CHECK(std::error_code(ws::error::bad_opcode) != std::errc::message_size);
}
