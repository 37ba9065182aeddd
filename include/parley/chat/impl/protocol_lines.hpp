// parley chat: protocol.hpp bodies, the events in line mode (to_line) and
// the printable form of any text for a terminal.
#ifndef PARLEY_CHAT_IMPL_PROTOCOL_LINES_HPP
#define PARLEY_CHAT_IMPL_PROTOCOL_LINES_HPP

#include <parley/codec/utf8.hpp>

#include <string>
#include <string_view>

namespace parley::chat {

// --- lines --------------------------------------------------------------------

namespace detail {

// Appends `text` for a terminal: control characters other than TAB (and
// "\n" when `newlines` is set), the invisible direction controls and line
// separators (U+061C, U+200E, U+200F, U+2028..U+202E, U+2066..U+2069) and
// invalid UTF-8 become U+FFFD, so no event can move the cursor, change
// colours, forge a line or display in another order than it was written.
inline void append_printable(std::string& out, std::string_view text, bool newlines = false) {
    static constexpr std::string_view replacement = "\xEF\xBF\xBD";
    std::size_t i = 0;
    while (i < text.size()) {
        const auto c = static_cast<unsigned char>(text[i]);
        if (c < 0x80) {
            const bool allowed = c >= 0x20 ? c != 0x7F : (c == '\t' || (newlines && c == '\n'));
            if (allowed)
                out += static_cast<char>(c);
            else
                out += replacement;
            ++i;
            continue;
        }
        const std::size_t len = utf8_sequence_at(text, i);
        if (len == 0) {
            out += replacement;
            ++i;
            continue;
        }
        const auto seq = text.substr(i, len);
        std::size_t at = 0;
        const char32_t cp = utf8_decode_next(seq, at);
        const bool unsafe = (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E ||
                            cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) ||
                            (cp >= 0x2066 && cp <= 0x2069);
        if (unsafe)
            out += replacement;
        else
            out += seq;
        i += len;
    }
}

} // namespace detail

inline std::string to_line(const event& e) {
    std::string out;
    auto put = [&out](std::string_view text) { detail::append_printable(out, text); };
    std::visit(
        [&](const auto& ev) {
            using T = std::decay_t<decltype(ev)>;
            if constexpr (std::is_same_v<T, welcome_event>) {
                detail::append_printable(out, ev.prompt, true);
            } else if constexpr (std::is_same_v<T, nick_accepted_event>) {
                out += "* welcome, ";
                put(ev.nick);
                out += "! type /help for the commands";
                if (!ev.resume_token.empty()) {
                    out += "\n* if your connection drops, send this first to resume: /resume ";
                    put(ev.resume_token);
                }
            } else if constexpr (std::is_same_v<T, message_event>) {
                out += '[';
                put(ev.room);
                out += "] ";
                put(ev.from);
                out += ": ";
                put(ev.text);
            } else if constexpr (std::is_same_v<T, private_event>) {
                out += "[private] ";
                put(ev.from);
                out += " -> ";
                put(ev.to);
                out += ": ";
                put(ev.text);
            } else if constexpr (std::is_same_v<T, join_event>) {
                out += "* ";
                put(ev.nick);
                out += " joined ";
                put(ev.room);
            } else if constexpr (std::is_same_v<T, leave_event>) {
                out += "* ";
                put(ev.nick);
                out += " left ";
                put(ev.room);
                out += " (";
                put(ev.reason);
                out += ')';
            } else if constexpr (std::is_same_v<T, rename_event>) {
                out += "* ";
                put(ev.old_nick);
                out += " is now known as ";
                put(ev.new_nick);
            } else if constexpr (std::is_same_v<T, members_event>) {
                out += "* members of ";
                put(ev.room);
                out += " (" + std::to_string(ev.count) + "):";
                for (std::size_t i = 0; i < ev.members.size(); ++i) {
                    out += i == 0 ? " " : ", ";
                    put(ev.members[i]);
                }
                if (ev.count > ev.members.size())
                    out += ", ...";
            } else if constexpr (std::is_same_v<T, error_event>) {
                out += "! ";
                put(ev.code);
                out += ": ";
                put(ev.message);
            } else if constexpr (std::is_same_v<T, notice_event>) {
                std::string_view text = ev.text;
                for (;;) {
                    const auto newline = text.find('\n');
                    out += "* ";
                    put(text.substr(0, newline));
                    if (newline == std::string_view::npos)
                        break;
                    out += '\n';
                    text.remove_prefix(newline + 1);
                }
            } else if constexpr (std::is_same_v<T, ping_event>) {
                out += "* ping";
            } else if constexpr (std::is_same_v<T, resumed_event>) {
                out += "* resumed as ";
                put(ev.nick);
                out += ev.recovered ? ": nothing was missed" : ": some messages may be missing";
                for (const auto& r : ev.rooms) {
                    if (r.recovered)
                        continue;
                    out += "\n* ";
                    put(r.room);
                    out += ": some messages up to " + std::to_string(r.seq) +
                           " may be missing; /history ";
                    put(r.room);
                    out += " shows what is kept";
                }
            } else if constexpr (std::is_same_v<T, history_event>) {
                out += "* history of ";
                put(ev.room);
                out += ": " + std::to_string(ev.messages.size()) + " message(s)";
                for (const auto& m : ev.messages) {
                    out += "\n" + std::to_string(m.seq) + " ";
                    put(std::string_view(m.time).substr(0, 19));
                    out += ' ';
                    put(m.from);
                    out += ": ";
                    put(m.text);
                }
                if (ev.more && !ev.messages.empty()) {
                    out += "\n* older: /history ";
                    put(ev.room);
                    out += " before=" + std::to_string(ev.messages.front().seq);
                }
            } else {
                out += "* (";
                put(ev.type);
                out += " event)";
            }
        },
        e);
    return out;
}

} // namespace parley::chat

#endif
