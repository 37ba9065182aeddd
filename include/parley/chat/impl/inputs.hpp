// parley chat: protocol.hpp bodies, the client's inputs (parse_input and
// the rules of message text).
#ifndef PARLEY_CHAT_IMPL_INPUTS_HPP
#define PARLEY_CHAT_IMPL_INPUTS_HPP

#include <parley/codec/utf8.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace parley::chat {

// --- inputs -------------------------------------------------------------------

namespace detail {

constexpr bool iequals_ascii(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z')
            x = static_cast<char>(x + 32);
        if (y >= 'A' && y <= 'Z')
            y = static_cast<char>(y + 32);
        if (x != y)
            return false;
    }
    return true;
}

constexpr bool is_separator(char c) noexcept { return c == ' ' || c == '\t'; }

// The first word of `text` and the rest after the separators that follow it.
constexpr std::pair<std::string_view, std::string_view> split_word(std::string_view text) noexcept {
    std::size_t end = 0;
    while (end < text.size() && !is_separator(text[end]))
        ++end;
    std::size_t rest = end;
    while (rest < text.size() && is_separator(text[rest]))
        ++rest;
    return {text.substr(0, end), text.substr(rest)};
}

constexpr std::string_view trim(std::string_view text) noexcept {
    while (!text.empty() && is_separator(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_separator(text.back()))
        text.remove_suffix(1);
    return text;
}

// A decimal number of 1 to 19 digits, nothing else.
constexpr std::optional<std::uint64_t> decimal(std::string_view text) noexcept {
    if (text.empty() || text.size() > 19)
        return std::nullopt;
    std::uint64_t n = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
    }
    return n;
}

// A command name safe to quote in a message: printable and short.
inline std::string quote_command(std::string_view name) {
    std::string out = "/";
    std::size_t i = 0, count = 0;
    while (i < name.size() && count < 24) {
        const std::size_t start = i;
        utf8_decode_next(name, i);
        out += name.substr(start, i - start);
        ++count;
    }
    std::string printable;
    append_printable(printable, out);
    if (i < name.size())
        printable += "...";
    return printable;
}

} // namespace detail

inline bool is_quit_input(std::string_view text) noexcept {
    if (detail::iequals_ascii(text, "quit"))
        return true;
    if (text.empty() || text.front() != '/')
        return false;
    return detail::iequals_ascii(detail::split_word(text.substr(1)).first, "quit");
}

inline input parse_input(std::string_view text) {
    if (!is_valid_utf8(text))
        return bad_input{errc::invalid_utf8, "the input is not valid UTF-8; it was ignored"};
    if (is_quit_input(text))
        return quit_input{};
    if (text.size() >= 2 && text[0] == '/' && text[1] == '/')
        return say_input{text.substr(1)};
    if (text.empty() || text.front() != '/')
        return say_input{text};

    // Not a structured binding: clang 14 cannot capture one in a lambda.
    const auto command = detail::split_word(text.substr(1));
    const std::string_view name = command.first, args = command.second;
    const auto is = [&](std::string_view command) { return detail::iequals_ascii(name, command); };
    const auto usage = [](std::string_view u) {
        return bad_input{errc::bad_arguments, "usage: " + std::string(u)};
    };
    if (is("nick")) {
        const auto nick = detail::trim(args);
        if (nick.empty())
            return usage("/nick NEW");
        return nick_input{nick};
    }
    if (is("join")) {
        const auto [room, extra] = detail::split_word(args);
        if (room.empty() || !extra.empty())
            return usage("/join ROOM (room names have no spaces)");
        return join_input{room};
    }
    if (is("part") || is("list")) {
        const auto [room, extra] = detail::split_word(args);
        if (!extra.empty())
            return usage(is("part") ? "/part [ROOM]" : "/list [ROOM]");
        if (is("part"))
            return part_input{room};
        return list_input{room};
    }
    if (is("msg")) {
        const auto [nick, message] = detail::split_word(args);
        if (nick.empty() || message.empty())
            return usage("/msg NICK TEXT");
        return msg_input{nick, message};
    }
    if (is("resume")) {
        const auto [token, positions] = detail::split_word(args);
        if (token.empty())
            return usage("/resume TOKEN [ROOM=SEQ[@EPOCH] ...]");
        return resume_input{token, detail::trim(positions)};
    }
    if (is("history")) {
        const auto history_usage = usage("/history ROOM [before=SEQ] [limit=N]");
        auto [room, rest] = detail::split_word(args);
        if (room.empty())
            return history_usage;
        history_input h{room};
        while (!rest.empty()) {
            const auto [word, next] = detail::split_word(rest);
            rest = next;
            const auto eq = word.find('=');
            const auto number = eq == std::string_view::npos
                                    ? std::optional<std::uint64_t>()
                                    : detail::decimal(word.substr(eq + 1));
            if (!number || *number == 0)
                return history_usage;
            if (word.substr(0, eq) == "before")
                h.before = *number;
            else if (word.substr(0, eq) == "limit")
                h.limit = *number;
            else
                return history_usage;
        }
        return h;
    }
    if (is("help"))
        return help_input{};
    if (is("pong"))
        return pong_input{};
    if (name.empty())
        return bad_input{errc::unknown_command,
                         "'/' alone is not a command; type /help for the commands, or start a "
                         "message with '//' to send it with a leading '/'"};
    return bad_input{errc::unknown_command, "unknown command " + detail::quote_command(name) +
                                                "; type /help for the commands"};
}

inline std::optional<std::pair<errc, std::string>> message_text_problem(std::string_view text,
                                                                        std::size_t max_bytes) {
    if (text.empty())
        return std::pair{errc::empty_message, std::string("empty messages are not sent")};
    if (text.size() > max_bytes)
        return std::pair{errc::message_too_long,
                         "a message of " + std::to_string(text.size()) + " bytes exceeds the " +
                             std::to_string(max_bytes) + "-byte limit; it was not sent"};
    if (!is_valid_utf8(text))
        return std::pair{errc::invalid_utf8,
                         std::string("the message is not valid UTF-8; it was not sent")};
    for (std::size_t i = 0; i < text.size(); ++i) {
        const auto c = static_cast<unsigned char>(text[i]);
        unsigned code = 0x100; // none
        if ((c < 0x20 && c != '\t') || c == 0x7F)
            code = c;
        else if (c == 0xC2 && i + 1 < text.size() &&
                 static_cast<unsigned char>(text[i + 1]) < 0xA0)
            code = static_cast<unsigned char>(text[i + 1]); // C1 control U+0080..U+009F
        if (code != 0x100) {
            char buf[128];
            std::snprintf(buf, sizeof buf,
                          "messages cannot contain control characters (U+%04X at byte %zu); it "
                          "was not sent",
                          code, i);
            return std::pair{errc::invalid_text, std::string(buf)};
        }
    }
    return std::nullopt;
}

inline std::string help_text() {
    return "commands:\n"
           "  /nick NEW        change your nickname\n"
           "  /join ROOM       join ROOM (or switch to it); it becomes your current room\n"
           "  /part [ROOM]     leave ROOM (default: your current room)\n"
           "  /list [ROOM]     who is in ROOM (default: your current room)\n"
           "  /msg NICK TEXT   send TEXT to NICK only\n"
           "  /history ROOM [before=SEQ] [limit=N]   earlier messages of ROOM\n"
           "  /resume TOKEN [ROOM=SEQ ...]           first input after a lost connection\n"
           "  /help            this text\n"
           "  /quit or QUIT    leave the chat\n"
           "anything else is a message to your current room; start it with // to send a "
           "message that begins with /";
}

inline std::string escape_message(std::string_view text) {
    std::string out;
    if (!text.empty() && text.front() == '/')
        out += '/';
    out += text;
    return out;
}

} // namespace parley::chat

#endif
