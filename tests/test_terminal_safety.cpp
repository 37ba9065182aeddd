// Terminal safety: nothing a peer sends can reach a terminal as a control
// sequence. Checks the chat client's sanitize() (examples/common/
// terminal.hpp, which everything chat_client prints goes through) and the
// server's line mode (to_line(), what nc users see), code point by code
// point over the ranges that matter. chat_client_tty.sh checks the client
// end to end on a real terminal.
#include "../examples/common/terminal.hpp"

#include <parley/chat/protocol.hpp>
#include <parley/codec/utf8.hpp>

#include <doctest/doctest.h>

#include <string>
#include <string_view>

namespace {

constexpr std::string_view fffd = "\xEF\xBF\xBD";

std::string utf8(char32_t cp) {
    std::string out;
    parley::utf8_append(out, cp);
    return out;
}

// The code points no terminal may receive from the network.
bool must_be_neutralised(char32_t cp) {
    return cp < 0x20 || cp == 0x7F || (cp >= 0x80 && cp <= 0x9F) ||  // C0, DEL, C1 (ESC is 0x1B)
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069) || // bidi
           cp == 0x200E || cp == 0x200F || cp == 0x061C || cp == 0x2028 || cp == 0x2029;
}

// A line-mode message event carrying `text`, as the server writes it.
std::string line_mode(std::string_view text) {
    parley::chat::message_event e;
    e.id = 1;
    e.room = "lobby";
    e.from = "mallory";
    e.text = std::string(text);
    e.time = "2024-05-01T12:34:56.789Z";
    return parley::chat::to_line(parley::chat::event(e));
}

} // namespace

TEST_CASE("terminal safety: the client's sanitize() neutralises every control code point") {
    namespace ex = parley::examples;
    int neutralised = 0;
    for (char32_t cp = 0; cp < 0x2100; ++cp) {
        if (cp >= 0xD800 && cp <= 0xDFFF)
            continue;
        const std::string in = "a" + utf8(cp) + "b";
        const std::string out = ex::sanitize(in);
        CAPTURE(static_cast<unsigned>(cp));
        if (cp == '\t') {
            CHECK(out == "a b");
        } else if (must_be_neutralised(cp)) {
            CHECK(out == "a" + std::string(fffd) + "b");
            ++neutralised;
        } else {
            CHECK(out == in);
        }
    }
    CHECK(neutralised > 60);
    // A whole attack: clear screen, retitle, recolour a nickname, reverse.
    const std::string attack = "\x1b[2J\x1b]0;pwned\x07\x1b[31mmallory\xe2\x80\xae!olleh\x7f\xc2\x9b";
    const std::string safe = ex::sanitize(attack);
    CHECK(safe.find('\x1b') == std::string::npos);
    CHECK(safe.find('\x07') == std::string::npos);
    CHECK(safe.find('\x7f') == std::string::npos);
    CHECK(safe.find("\xe2\x80\xae") == std::string::npos);
    CHECK(safe.find("\xc2\x9b") == std::string::npos);
    // Bytes that are not UTF-8 (a lone C1 byte, an overlong ESC) too.
    CHECK(ex::sanitize("\x9b" "31m") == std::string(fffd) + "31m");
    CHECK(ex::sanitize("\xc0\x9b") == std::string(fffd) + std::string(fffd));
    CHECK(ex::sanitize("caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd") == "caf\xc3\xa9 \xe4\xbd\xa0\xe5\xa5\xbd");
}

TEST_CASE("terminal safety: the server's line mode neutralises the same code points") {
    for (char32_t cp = 0; cp < 0x2100; ++cp) {
        if ((cp >= 0xD800 && cp <= 0xDFFF) || cp == '\t')
            continue;
        const std::string line = line_mode("a" + utf8(cp) + "b");
        CAPTURE(static_cast<unsigned>(cp));
        if (must_be_neutralised(cp))
            CHECK(line.find("a" + std::string(fffd) + "b") != std::string::npos);
        else
            CHECK(line.find("a" + utf8(cp) + "b") != std::string::npos);
    }
}
