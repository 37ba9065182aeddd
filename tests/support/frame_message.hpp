// frame(text): a hub message holding one frame, for the tests that publish
// or send; the test fails (REQUIRE) if the frame cannot be made.
#ifndef PARLEY_TESTS_SUPPORT_FRAME_MESSAGE_HPP
#define PARLEY_TESTS_SUPPORT_FRAME_MESSAGE_HPP

#include <parley/hub/message.hpp>

#include <doctest/doctest.h>

#include <string>
#include <system_error>

namespace parley::test {

inline parley::message_ptr frame(const std::string& text) {
    std::error_code ec;
    auto m = parley::make_frame_message(text, ec);
    REQUIRE_FALSE(ec);
    return m;
}

} // namespace parley::test

#endif
