// parley chat: rules for nicknames and room names, free of any I/O.
//
// A name is shown to other people next to text they must be able to trust:
// "[lobby] alice: hello", "* bob joined lobby". So a name may not be
// invisible, may not move or hide the text around it (bidirectional
// overrides, zero-width characters), may not break a line, and may not
// pose as the server. Names are unique ignoring case.
#ifndef PARLEY_CHAT_NICKNAME_HPP
#define PARLEY_CHAT_NICKNAME_HPP

#include <parley/codec/utf8.hpp>

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace parley::chat {

/// The longest nickname or room name, in code points.
inline constexpr std::size_t max_name_length = 32;

/// Nicknames nobody may take (compared ignoring case): they would pose as
/// the server, or (`quit`) could never be typed as a nickname because the
/// input QUIT quits.
inline constexpr std::array<std::string_view, 9> reserved_nicknames = {
    "server", "system", "admin", "administrator", "operator", "moderator", "root", "parley",
    "quit"};

/// True for code points no name may contain: C0 and C1 controls and DEL;
/// every Unicode White_Space character (so names are single words, which
/// is what lets `/msg NICK TEXT` and `/join ROOM` take them unquoted);
/// format characters (general category Cf: soft hyphen, zero-width space,
/// joiners and marks U+200B..U+200F, bidirectional embeddings, overrides and
/// isolates U+202A..U+202E and U+2066..U+2069, word joiner and invisible
/// operators U+2060..U+2064, BOM U+FEFF, tags); other default-ignorable
/// and blank-looking characters (U+034F, Hangul fillers, variation
/// selectors, U+2800); noncharacters; private-use code points; and U+FFFC,
/// U+FFFD.
constexpr bool is_forbidden_in_name(char32_t cp) noexcept {
    struct range {
        char32_t first, last;
    };
    constexpr range forbidden[] = {
        {0x0000, 0x0020},   {0x007F, 0x00A0},   {0x00AD, 0x00AD},   {0x034F, 0x034F},
        {0x0600, 0x0605},   {0x061C, 0x061C},   {0x06DD, 0x06DD},   {0x070F, 0x070F},
        {0x0890, 0x0891},   {0x08E2, 0x08E2},   {0x115F, 0x1160},   {0x1680, 0x1680},
        {0x17B4, 0x17B5},   {0x180B, 0x180F},   {0x2000, 0x200F},   {0x2028, 0x202F},
        {0x205F, 0x206F},   {0x2800, 0x2800},   {0x3000, 0x3000},   {0x3164, 0x3164},
        {0xD800, 0xF8FF}, // surrogates (never valid UTF-8) and private use
        {0xFDD0, 0xFDEF},   {0xFE00, 0xFE0F},   {0xFEFF, 0xFEFF},   {0xFFA0, 0xFFA0},
        {0xFFF0, 0xFFFD},   {0x110BD, 0x110BD}, {0x110CD, 0x110CD}, {0x13430, 0x1343F},
        {0x1BCA0, 0x1BCA3}, {0x1D173, 0x1D17A}, {0xE0000, 0xE0FFF}, {0xF0000, 0x10FFFF},
    };
    if ((cp & 0xFFFE) == 0xFFFE) // U+xxFFFE and U+xxFFFF are noncharacters
        return true;
    for (const auto& r : forbidden)
        if (cp >= r.first && cp <= r.last)
            return true;
    return false;
}

/// True for combining marks, which must not start a name (they would
/// attach to whatever is printed before it).
constexpr bool is_combining_mark(char32_t cp) noexcept {
    return (cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
           (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
           (cp >= 0xFE20 && cp <= 0xFE2F);
}

/// Simple case folding of one code point, for the scripts where case is
/// common: ASCII, Latin-1, Latin Extended-A, Greek and Cyrillic; the
/// fullwidth forms of ASCII (U+FF01..U+FF5E) fold to ASCII too, so "Ａlice"
/// cannot pose as "alice". Other code points are returned unchanged (no
/// full folding such as ß -> ss, and no normalization: precomposed "é" and
/// "e" + U+0301 stay different).
constexpr char32_t fold_code_point(char32_t cp) noexcept {
    if (cp < 0x80)
        return cp >= 'A' && cp <= 'Z' ? cp + 0x20 : cp;
    if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) // À..Þ except ×
        return cp + 0x20;
    if (cp == 0x178) // Ÿ
        return 0xFF;
    if ((cp >= 0x100 && cp <= 0x12F) || (cp >= 0x132 && cp <= 0x137) ||
        (cp >= 0x14A && cp <= 0x177))
        return cp | 1; // pairs: even upper, odd lower
    if ((cp >= 0x139 && cp <= 0x148) || (cp >= 0x179 && cp <= 0x17E))
        return (cp & 1) ? cp + 1 : cp; // pairs: odd upper, even lower
    if (cp >= 0x391 && cp <= 0x3A9 && cp != 0x3A2) // Greek capitals
        return cp + 0x20;
    if (cp == 0x3C2) // final sigma folds to sigma
        return 0x3C3;
    if (cp >= 0x410 && cp <= 0x42F) // Cyrillic А..Я
        return cp + 0x20;
    if (cp >= 0x400 && cp <= 0x40F) // Cyrillic Ѐ..Џ
        return cp + 0x50;
    if (cp >= 0xFF21 && cp <= 0xFF3A) // fullwidth Ａ..Ｚ to a..z
        return cp - 0xFF21 + 'a';
    if (cp >= 0xFF01 && cp <= 0xFF5E) // other fullwidth ASCII to ASCII
        return cp - 0xFEE0;
    return cp;
}

namespace detail {
inline std::string describe_code_point(char32_t cp) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string s = "U+";
    const int digits = cp > 0xFFFF ? (cp > 0xFFFFF ? 6 : 5) : 4;
    for (int i = digits - 1; i >= 0; --i)
        s += hex[(cp >> (4 * i)) & 0xF];
    return s;
}

// The checks nicknames and room names share. `what` is "nickname" or
// "room name".
inline std::optional<std::string> name_problem(std::string_view name, std::string_view what) {
    const std::string w(what);
    if (name.empty())
        return "a " + w + " cannot be empty";
    const auto length = utf8_length(name);
    if (!length)
        return "a " + w + " must be valid UTF-8";
    if (*length > max_name_length)
        return "a " + w + " has at most " + std::to_string(max_name_length) +
               " characters; this one has " + std::to_string(*length);
    std::size_t i = 0;
    bool first = true;
    while (i < name.size()) {
        const char32_t cp = utf8_decode_next(name, i);
        if (cp == U' ' || cp == U'\t')
            return i == 1 || i == name.size() ? "a " + w + " cannot start or end with a space"
                                              : "a " + w + " cannot contain spaces";
        if (is_forbidden_in_name(cp))
            return "a " + w + " cannot contain " + describe_code_point(cp) +
                   " (control, formatting, invisible or space characters are not allowed)";
        if (first && is_combining_mark(cp))
            return "a " + w + " cannot start with a combining mark (" + describe_code_point(cp) +
                   ")";
        first = false;
    }
    return std::nullopt;
}
} // namespace detail

/// `text` with every code point folded by fold_code_point(): the key under
/// which names are compared. Bytes that are not valid UTF-8 are copied.
inline std::string fold_case(std::string_view text) {
    if (!is_valid_utf8(text))
        return std::string(text);
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size())
        utf8_append(out, fold_code_point(utf8_decode_next(text, i)));
    return out;
}

/// True if `name` is one of reserved_nicknames, ignoring case.
inline bool is_reserved_nickname(std::string_view name) {
    const std::string folded = fold_case(name);
    for (const auto reserved : reserved_nicknames)
        if (folded == reserved)
            return true;
    return false;
}

/// Why `name` cannot be a nickname, as a sentence for the user, or nullopt
/// when it can. Valid: UTF-8; 1 to 32 code points; no character for which
/// is_forbidden_in_name() holds (so no spaces at all); not starting with a
/// combining mark or with one of `* [ ! / #` (server notices start with
/// '*' and '!', room messages with '[', commands with '/', rooms with '#');
/// not a reserved nickname. Uniqueness is the server's business.
inline std::optional<std::string> nickname_problem(std::string_view name) {
    if (auto problem = detail::name_problem(name, "nickname"))
        return problem;
    switch (name.front()) {
    case '*':
    case '[':
    case '!':
    case '/':
    case '#':
        return std::string("a nickname cannot start with '") + name.front() +
               "' (it would look like a server notice, a room or a command)";
    default:
        break;
    }
    if (is_reserved_nickname(name))
        return "the nickname \"" + std::string(name) + "\" is reserved";
    return std::nullopt;
}

/// The key under which nicknames are unique: fold_case(name).
inline std::string nickname_key(std::string_view name) { return fold_case(name); }

/// A room as the user typed it, in canonical form: one leading '#' is
/// dropped ("#Rust" and "rust" are the same room) and case is folded.
inline std::string canonical_room(std::string_view name) {
    if (!name.empty() && name.front() == '#')
        name.remove_prefix(1);
    return fold_case(name);
}

/// Why `name` (after canonical_room()) cannot be a room name, or nullopt.
/// The nickname rules for characters and length apply; '[', ']' and ','
/// are not allowed either (a room is shown as "[room]" and listed with
/// commas).
inline std::optional<std::string> room_name_problem(std::string_view name) {
    if (auto problem = detail::name_problem(name, "room name"))
        return problem;
    if (name.find_first_of("[],") != std::string_view::npos)
        return std::string("a room name cannot contain '[', ']' or ','");
    return std::nullopt;
}

} // namespace parley::chat

#endif
