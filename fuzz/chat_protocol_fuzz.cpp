// libFuzzer target for the chat protocol's parsers, both directions:
// - the client side: json::parse and parse_event (what a client does with a
//   frame from the server);
// - the server side: parse_input, the nickname and room rules and the
//   message text rules (what the server does with a client's input).
//
// Every input goes through all of them. Besides sanitizer reports, these
// properties are checked (any failure aborts):
// - a JSON document that parses serializes to JSON that parses to an equal
//   value, and serializing is then stable;
// - an event that parses encodes (to_json) to an equal event;
// - a line-mode rendering (to_line) is valid UTF-8 with no control
//   character but TAB and (for notices) LF, whatever the event holds;
// - views parse_input returns lie inside the input; error messages are
//   valid UTF-8 without control characters;
// - an accepted nickname is 1 to 32 code points of valid UTF-8 without
//   spaces or controls; case folding is valid UTF-8 and idempotent;
// - accepted message text has no control character but TAB.
#include <parley/chat/json.hpp>
#include <parley/chat/nickname.hpp>
#include <parley/chat/protocol.hpp>
#include <parley/codec/utf8.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <variant>

namespace {

namespace pc = parley::chat;

[[noreturn]] void fail(const char* what) {
    std::fprintf(stderr, "chat_protocol_fuzz: %s\n", what);
    std::abort();
}

#define FUZZ_CHECK(cond)                                                                      \
    do {                                                                                      \
        if (!(cond))                                                                          \
            fail(#cond);                                                                      \
    } while (0)

// Valid UTF-8 with no C0 control (but TAB, and LF when allowed), DEL or C1.
bool printable(std::string_view text, bool newlines = false) {
    if (!parley::is_valid_utf8(text))
        return false;
    std::size_t i = 0;
    while (i < text.size()) {
        const char32_t cp = parley::utf8_decode_next(text, i);
        if (cp == U'\t' || (newlines && cp == U'\n'))
            continue;
        if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F))
            return false;
    }
    return true;
}

bool inside(std::string_view part, std::string_view whole) {
    return part.empty() ||
           (part.data() >= whole.data() && part.data() + part.size() <= whole.data() + whole.size());
}

void check_json(std::string_view text) {
    pc::json::parse_error error;
    auto v = pc::json::parse(text, error, {.max_bytes = 64 * 1024, .max_depth = 16});
    if (!v) {
        FUZZ_CHECK(!error.message.empty());
        FUZZ_CHECK(error.offset <= text.size());
        return;
    }
    const std::string once = pc::json::serialize(*v);
    pc::json::parse_error error2;
    auto again = pc::json::parse(once, error2, {.max_bytes = 1024 * 1024, .max_depth = 16});
    FUZZ_CHECK(again.has_value());
    FUZZ_CHECK(*again == *v);
    FUZZ_CHECK(pc::json::serialize(*again) == once);
}

void check_event(std::string_view payload) {
    std::string error;
    auto e = pc::parse_event(payload, error);
    if (!e) {
        FUZZ_CHECK(!error.empty());
        return;
    }
    const bool is_notice = std::holds_alternative<pc::notice_event>(*e);
    const bool is_welcome = std::holds_alternative<pc::welcome_event>(*e);
    FUZZ_CHECK(printable(pc::to_line(*e), is_notice || is_welcome));
    if (std::holds_alternative<pc::unknown_event>(*e))
        return;
    const std::string json = pc::to_json(*e);
    auto back = pc::parse_event(json, error);
    FUZZ_CHECK(back.has_value());
    FUZZ_CHECK(*back == *e);
}

void check_input(std::string_view text) {
    const pc::input in = pc::parse_input(text);
    std::visit(
        [&](const auto& i) {
            using T = std::decay_t<decltype(i)>;
            if constexpr (std::is_same_v<T, pc::say_input>) {
                FUZZ_CHECK(inside(i.text, text));
            } else if constexpr (std::is_same_v<T, pc::nick_input>) {
                FUZZ_CHECK(inside(i.nick, text) && !i.nick.empty());
            } else if constexpr (std::is_same_v<T, pc::join_input>) {
                FUZZ_CHECK(inside(i.room, text) && !i.room.empty());
            } else if constexpr (std::is_same_v<T, pc::part_input> ||
                                 std::is_same_v<T, pc::list_input>) {
                FUZZ_CHECK(inside(i.room, text));
            } else if constexpr (std::is_same_v<T, pc::msg_input>) {
                FUZZ_CHECK(inside(i.nick, text) && inside(i.text, text));
                FUZZ_CHECK(!i.nick.empty() && !i.text.empty());
            } else if constexpr (std::is_same_v<T, pc::quit_input>) {
                FUZZ_CHECK(pc::is_quit_input(text));
            } else if constexpr (std::is_same_v<T, pc::bad_input>) {
                FUZZ_CHECK(printable(i.message));
            }
        },
        in);
    if (!std::holds_alternative<pc::quit_input>(in))
        FUZZ_CHECK(!pc::is_quit_input(text) || !parley::is_valid_utf8(text));

    if (auto problem = pc::message_text_problem(text, 4096)) {
        FUZZ_CHECK(printable(problem->second));
    } else {
        FUZZ_CHECK(!text.empty() && text.size() <= 4096 && printable(text));
    }

    if (auto problem = pc::nickname_problem(text)) {
        FUZZ_CHECK(printable(*problem));
    } else {
        const auto length = parley::utf8_length(text);
        FUZZ_CHECK(length && *length >= 1 && *length <= pc::max_name_length);
        FUZZ_CHECK(printable(text) && text.find(' ') == std::string_view::npos);
        FUZZ_CHECK(!pc::is_reserved_nickname(text));
    }
    const std::string room = pc::canonical_room(text);
    if (!pc::room_name_problem(room))
        FUZZ_CHECK(printable(room) && room.find_first_of("[], ") == std::string::npos);

    if (parley::is_valid_utf8(text)) {
        const std::string folded = pc::fold_case(text);
        FUZZ_CHECK(parley::is_valid_utf8(folded));
        FUZZ_CHECK(pc::fold_case(folded) == folded);
    }

    // Whatever a client manages to put in a field, line mode prints it
    // harmlessly.
    FUZZ_CHECK(printable(pc::to_line(pc::message_event{1, std::string(text), std::string(text),
                                                       std::string(text), "", 0, {}})));
    FUZZ_CHECK(printable(pc::to_line(pc::notice_event{"x", std::string(text)}), true));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    check_json(text);
    check_event(text);
    check_input(text);
    return 0;
}
