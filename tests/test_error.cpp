// Tests for include/parley/error.hpp. Included first: the header must stand
// on its own.
#include <parley/error.hpp>

#include <doctest/doctest.h>

#include <ostream> // doctest prints std::error_code through it
#include <set>
#include <string>
#include <system_error>
#include <vector>

namespace {

constexpr const char* unknown_message = "unknown parley error";

// Every value the enum defines, found by walking up from 1 until the
// category no longer knows the number: new enumerators are covered without
// editing this file, as long as they stay contiguous (the enum starts at 1
// and lists its values in order).
std::vector<int> known_values() {
    std::vector<int> values;
    for (int v = 1; parley::error_category().message(v) != unknown_message; ++v)
        values.push_back(v);
    return values;
}

} // namespace

TEST_CASE("error: the category is named parley and is one object") {
    CHECK(std::string(parley::error_category().name()) == "parley");
    CHECK(&parley::error_category() == &parley::error_category());
    const std::error_code ec = parley::error::frame_too_large;
    CHECK(&ec.category() == &parley::error_category());
}

TEST_CASE("error: every value has its own non-empty message") {
    const auto values = known_values();
    // The enumerators as of this writing run from frame_too_large (1) to
    // malformed_message (11); later additions only grow the list.
    REQUIRE(values.size() >= 11);
    CHECK(values.back() >= static_cast<int>(parley::error::malformed_message));
    std::set<std::string> messages;
    for (int v : values) {
        const std::string m = parley::error_category().message(v);
        CAPTURE(v);
        CHECK_FALSE(m.empty());
        CHECK(messages.insert(m).second);
    }
    // Zero is success in std::error_code, and is not one of ours.
    CHECK(parley::error_category().message(0) == unknown_message);
    CHECK(parley::error_category().message(-1) == unknown_message);
    CHECK(parley::error_category().message(100000) == unknown_message);
}

TEST_CASE("error: make_error_code and implicit conversion agree") {
    const std::error_code made = parley::make_error_code(parley::error::truncated_frame);
    const std::error_code implicit = parley::error::truncated_frame;
    CHECK(made == implicit);
    CHECK(made.value() == static_cast<int>(parley::error::truncated_frame));
    CHECK(made.message() == "connection closed in the middle of a frame");
    CHECK(made == parley::error::truncated_frame);
    CHECK(made != parley::error::truncated_line);
    CHECK(static_cast<bool>(made));
    std::error_code assigned;
    assigned = parley::error::line_too_long;
    CHECK(assigned == parley::error::line_too_long);

    const std::system_error thrown(parley::error::timed_out);
    CHECK(thrown.code() == parley::error::timed_out);
    CHECK(std::string(thrown.what()).find("operation timed out") != std::string::npos);
}

TEST_CASE("error: values map to the generic std::errc conditions") {
    using parley::error;
    CHECK(std::error_code(error::timed_out) == std::errc::timed_out);
    CHECK(std::error_code(error::invalid_argument) == std::errc::invalid_argument);
    CHECK(std::error_code(error::frame_too_large) == std::errc::message_size);
    CHECK(std::error_code(error::line_too_long) == std::errc::message_size);
    CHECK(std::error_code(error::invalid_utf8) == std::errc::illegal_byte_sequence);
    CHECK(std::error_code(error::malformed_message) == std::errc::illegal_byte_sequence);

    // No accidental matches.
    CHECK(std::error_code(error::timed_out) != std::errc::message_size);
    CHECK(std::error_code(error::frame_too_large) != std::errc::timed_out);
    CHECK(std::error_code(error::truncated_frame) != std::errc::message_size);

    // Values without a generic meaning keep a condition in parley's own
    // category, so they compare equal to themselves and to nothing in errc.
    const std::error_code truncated = error::truncated_frame;
    CHECK(&truncated.default_error_condition().category() == &parley::error_category());
    CHECK(truncated.default_error_condition().value() == truncated.value());
    CHECK(truncated != std::errc::connection_aborted);
    CHECK(truncated != std::errc::connection_reset);

    // A system error with the same number is a different error.
    const std::error_code system(static_cast<int>(error::frame_too_large), std::system_category());
    CHECK(system != std::error_code(error::frame_too_large));
}
