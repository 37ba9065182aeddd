// The input line of a terminal chat client, as a state machine without I/O:
// it is fed the bytes the keyboard sends and hands back the submitted lines
// and the bytes that draw the line on the terminal. Shared by the examples;
// not part of parley's API. tests/test_line_editor.cpp drives it with no
// terminal; tests/chat_client_tty.sh drives chat_client in tmux.
#ifndef PARLEY_EXAMPLES_COMMON_LINE_EDITOR_HPP
#define PARLEY_EXAMPLES_COMMON_LINE_EDITOR_HPP

#include "terminal.hpp"

#include <parley/codec/utf8.hpp>

#include <algorithm>
#include <cstddef>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

namespace parley::examples {

/// Keeps the line being typed (UTF-8 code points with their display
/// widths, CJK wide = 2 columns), the cursor in it and what was typed
/// before, and draws the prompt and the line, wrapped over as many rows as
/// it needs.
///
/// Keys: printable text is inserted at the cursor; Left/Right (and Ctrl-B/F),
/// Home/End (and Ctrl-A/E), Ctrl-Left/Right and Alt-B/F by word; Backspace
/// (DEL or Ctrl-H), Delete, Ctrl-D on a non-empty line; Ctrl-U, Ctrl-K and
/// Ctrl-W (and Alt-Backspace) delete before the cursor, after it and the
/// word before it; Up/Down (and Ctrl-P/N) go through the history, keeping
/// the line being typed; Enter submits; Ctrl-D on an empty line is the end
/// of input; Ctrl-L asks for a clear screen. Both the CSI (ESC [) and SS3
/// (ESC O) forms of the cursor keys are understood; other escape sequences
/// are swallowed whole.
///
/// Drawing: render() writes the prompt and the line from the start of the
/// rows it took last time (which it erases) and leaves the cursor where it
/// belongs; erase() takes the rows away, so that text can be printed where
/// they were and the line drawn again below it. Nothing else may write to
/// the terminal between the two. A line taller than the screen shows the
/// rows around the cursor. When the width changes the terminal is
/// assumed to reflow the wrapped rows, keeping the cursor on its character,
/// as tmux and most terminals today do (xterm does not: there Ctrl-L
/// repairs the screen).
class line_editor {
public:
    struct result {
        std::vector<std::string> lines; ///< submitted, in order
        bool end_of_input = false;      ///< Ctrl-D on an empty line
        bool clear_screen = false;      ///< Ctrl-L: call clear_screen(), then render()
        bool changed = false;           ///< the line or the cursor moved: render()
    };

    /// At most `max_bytes` of UTF-8 in the line (more typing is ignored),
    /// and the last `max_history` lines submitted remembered (empty lines
    /// and a line repeating the one before left out).
    explicit line_editor(std::size_t max_bytes = 4096, std::size_t max_history = 500)
        : max_bytes_(max_bytes), max_history_(max_history) {}

    /// The prompt: `styled` is written, `plain` (the same without escape
    /// sequences, valid UTF-8) is measured.
    void prompt(std::string styled, std::string_view plain) {
        prompt_styled_ = std::move(styled);
        prompt_.clear();
        for (std::size_t i = 0; i < plain.size();) {
            const char32_t cp = parley::utf8_decode_next(plain, i);
            prompt_.push_back({cp, static_cast<unsigned char>(code_point_width(cp))});
        }
    }

    /// Takes keyboard bytes, in pieces of any size: a UTF-8 character or an
    /// escape sequence may be cut between calls.
    result feed(std::string_view bytes);

    /// The line being typed, in UTF-8.
    std::string text() const;
    /// The cursor, in code points from the start of the line.
    std::size_t cursor() const noexcept { return cursor_; }
    /// Lines submitted, oldest first.
    const std::deque<std::string>& history() const noexcept { return history_; }

    /// What to write to draw the prompt and the line on a terminal
    /// `columns` wide and `rows` high (0: no limit), over what render()
    /// drew last, the cursor left where it is in the line.
    std::string render(std::size_t columns, std::size_t rows = 0);
    /// What to write to take the drawn line away, leaving the cursor at the
    /// start of its first row, ready for text printed above the line.
    std::string erase(std::size_t columns);
    /// What to write to clear the screen (Ctrl-L); render() next.
    std::string clear_screen();

private:
    struct glyph {
        char32_t cp;
        unsigned char width;
    };
    struct position {
        std::size_t row = 0, column = 0;
    };
    enum class escape : unsigned char { none, started, csi, ss3 };

    void key(unsigned char c, result& r);
    bool escape_byte(unsigned char c, result& r);
    void csi_final(unsigned char final, result& r);
    void take_utf8(unsigned char c, result& r);
    void insert(char32_t cp, result& r);
    void erase_range(std::size_t from, std::size_t to, result& r);
    void move_to(std::size_t at, result& r);
    std::size_t left_of(std::size_t at) const noexcept;
    std::size_t right_of(std::size_t at) const noexcept;
    std::size_t word_left_of(std::size_t at) const noexcept;
    std::size_t word_right_of(std::size_t at) const noexcept;
    void submit(result& r);
    void browse(int step, result& r);
    void load(std::string_view utf8);
    static std::size_t utf8_size(char32_t cp) noexcept;

    // Where the cell `index` of `widths` goes (index == size: the end, the
    // cursor's place after the last one) when the rows are `columns` wide
    // and wrap as a terminal wraps them: a wide glyph that does not fit
    // goes whole to the next row.
    static position place(const std::vector<unsigned char>& widths, std::size_t index,
                          std::size_t columns) noexcept;
    // The row the cursor is on, counted from the first drawn row, after the
    // terminal reflowed what was drawn to `columns`.
    std::size_t drawn_cursor_row(std::size_t columns) const noexcept;

    std::size_t max_bytes_, max_history_;
    std::string prompt_styled_;
    std::vector<glyph> prompt_; // the plain prompt, measured
    std::vector<glyph> line_;
    std::size_t cursor_ = 0; // in line_, 0..size
    std::size_t bytes_ = 0;  // UTF-8 length of line_

    std::deque<std::string> history_;
    std::size_t browsing_ = 0; // index in history_; history_.size(): the draft
    std::string draft_;        // the line being typed when browsing began

    std::string partial_; // an incomplete UTF-8 character
    escape escape_ = escape::none;
    std::string csi_; // parameter bytes of a CSI sequence, bounded
    bool after_cr_ = false;

    // What the terminal shows: the widths of the prompt and line drawn,
    // the cursor's cell among them, and the width they were drawn at (0:
    // nothing drawn).
    std::vector<unsigned char> drawn_;
    std::size_t drawn_cursor_ = 0, drawn_columns_ = 0;
    std::size_t top_ = 0; // the first row shown of a line taller than the screen
};

// --- keys ----------------------------------------------------------------------------

inline line_editor::result line_editor::feed(std::string_view bytes) {
    result r;
    for (char ch : bytes) {
        const auto c = static_cast<unsigned char>(ch);
        if (escape_ != escape::none && escape_byte(c, r))
            continue;
        if (c >= 0x80) {
            take_utf8(c, r);
        } else {
            partial_.clear(); // an ASCII byte ends any broken UTF-8 sequence
            key(c, r);
            if (r.end_of_input)
                return r;
        }
    }
    return r;
}

inline void line_editor::key(unsigned char c, result& r) {
    const bool cr_lf = c == '\n' && after_cr_;
    after_cr_ = c == '\r';
    switch (c) {
    case '\r':
    case '\n':
        if (!cr_lf) // CR LF is one Enter
            submit(r);
        break;
    case 0x01: move_to(0, r); break;                                  // Ctrl-A
    case 0x02: move_to(left_of(cursor_), r); break;                   // Ctrl-B
    case 0x04:                                                        // Ctrl-D
        if (line_.empty())
            r.end_of_input = true;
        else
            erase_range(cursor_, right_of(cursor_), r);
        break;
    case 0x05: move_to(line_.size(), r); break;                       // Ctrl-E
    case 0x06: move_to(right_of(cursor_), r); break;                  // Ctrl-F
    case 0x08:                                                        // Ctrl-H
    case 0x7F: erase_range(left_of(cursor_), cursor_, r); break;      // Backspace
    case 0x0B: erase_range(cursor_, line_.size(), r); break;          // Ctrl-K
    case 0x0C: r.clear_screen = r.changed = true; break;              // Ctrl-L
    case 0x0E: browse(+1, r); break;                                  // Ctrl-N
    case 0x10: browse(-1, r); break;                                  // Ctrl-P
    case 0x15: erase_range(0, cursor_, r); break;                     // Ctrl-U
    case 0x17: erase_range(word_left_of(cursor_), cursor_, r); break; // Ctrl-W
    case 0x1B: escape_ = escape::started; break;
    case '\t': insert(' ', r); break;
    default:
        if (c >= 0x20)
            insert(c, r);
        break;
    }
}

// False when `c` ended the sequence without being part of it (a control
// byte, UTF-8): the caller then takes it as a key.
inline bool line_editor::escape_byte(unsigned char c, result& r) {
    switch (escape_) {
    case escape::started: // ESC x: Alt-x, or the start of a sequence
        escape_ = escape::none;
        if (c == '[') {
            escape_ = escape::csi;
            csi_.clear();
        } else if (c == 'O') {
            escape_ = escape::ss3;
        } else if (c == 'b' || c == 'B') {
            move_to(word_left_of(cursor_), r);
        } else if (c == 'f' || c == 'F') {
            move_to(word_right_of(cursor_), r);
        } else if (c == 0x7F || c == 0x08) {
            erase_range(word_left_of(cursor_), cursor_, r);
        } else if (c == 0x1B) {
            escape_ = escape::started; // ESC ESC: the first one was alone
        } else if (c < 0x20 || c >= 0x80) {
            return false; // ESC alone, then a key
        }
        return true;
    case escape::csi:
        if (c >= 0x40 && c <= 0x7E) { // the final byte
            escape_ = escape::none;
            csi_final(c, r);
        } else if (c < 0x20 || c > 0x7E) {
            escape_ = escape::none; // not a sequence after all
            return false;
        } else if (csi_.size() < 16) {
            csi_ += static_cast<char>(c);
        }
        return true;
    case escape::ss3: // ESC O A..D, H, F: the same keys in "application" mode
        escape_ = escape::none;
        if (c < 0x40 || c > 0x7E)
            return false;
        csi_.clear();
        csi_final(c, r);
        return true;
    case escape::none:
        break;
    }
    return false;
}

// ESC [ csi_ final. csi_ is "N" or "N;M" (M: the modifiers plus one, 3 Alt,
// 5 Ctrl) or empty.
inline void line_editor::csi_final(unsigned char final, result& r) {
    unsigned number = 0, modifiers = 1;
    const auto semicolon = csi_.find(';');
    for (char d : std::string_view(csi_).substr(0, semicolon))
        number = d >= '0' && d <= '9' && number < 1000 ? number * 10 + (d - '0') : number;
    if (semicolon != std::string::npos && semicolon + 1 < csi_.size())
        modifiers = static_cast<unsigned>(csi_[semicolon + 1] - '0');
    const bool by_word = modifiers == 3 || modifiers == 5;
    switch (final) {
    case 'A': browse(-1, r); break;
    case 'B': browse(+1, r); break;
    case 'C': move_to(by_word ? word_right_of(cursor_) : right_of(cursor_), r); break;
    case 'D': move_to(by_word ? word_left_of(cursor_) : left_of(cursor_), r); break;
    case 'H': move_to(0, r); break;
    case 'F': move_to(line_.size(), r); break;
    case '~':
        if (number == 1 || number == 7)
            move_to(0, r);
        else if (number == 4 || number == 8)
            move_to(line_.size(), r);
        else if (number == 3)
            erase_range(cursor_, right_of(cursor_), r);
        break;
    default: break; // function keys, focus reports...: ignored
    }
}

inline void line_editor::take_utf8(unsigned char c, result& r) {
    after_cr_ = false;
    if ((c & 0xC0) != 0x80)
        partial_.clear(); // a lead byte starts a new character
    else if (partial_.empty())
        return; // a continuation byte with no lead: dropped
    partial_ += static_cast<char>(c);
    const auto b0 = static_cast<unsigned char>(partial_[0]);
    const std::size_t length = b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
    if (partial_.size() < length)
        return;
    if (parley::is_valid_utf8(partial_)) {
        std::size_t at = 0;
        const char32_t cp = parley::utf8_decode_next(partial_, at);
        if (!is_unsafe_for_terminal(cp))
            insert(cp, r);
    }
    partial_.clear();
}

// --- editing -------------------------------------------------------------------------

inline std::size_t line_editor::utf8_size(char32_t cp) noexcept {
    return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;
}

inline void line_editor::insert(char32_t cp, result& r) {
    if (bytes_ + utf8_size(cp) > max_bytes_)
        return;
    line_.insert(line_.begin() + static_cast<std::ptrdiff_t>(cursor_),
                 glyph{cp, static_cast<unsigned char>(code_point_width(cp))});
    ++cursor_;
    bytes_ += utf8_size(cp);
    r.changed = true;
}

inline void line_editor::erase_range(std::size_t from, std::size_t to, result& r) {
    if (from >= to)
        return;
    for (std::size_t i = from; i < to; ++i)
        bytes_ -= utf8_size(line_[i].cp);
    line_.erase(line_.begin() + static_cast<std::ptrdiff_t>(from),
                line_.begin() + static_cast<std::ptrdiff_t>(to));
    cursor_ = from;
    r.changed = true;
}

inline void line_editor::move_to(std::size_t at, result& r) {
    if (at != cursor_) {
        cursor_ = at;
        r.changed = true;
    }
}

// The cursor moves by characters as seen: a combining mark (width 0) stays
// with the character before it.
inline std::size_t line_editor::left_of(std::size_t at) const noexcept {
    while (at > 0 && line_[--at].width == 0) {
    }
    return at;
}

inline std::size_t line_editor::right_of(std::size_t at) const noexcept {
    if (at < line_.size())
        ++at;
    while (at < line_.size() && line_[at].width == 0)
        ++at;
    return at;
}

inline std::size_t line_editor::word_left_of(std::size_t at) const noexcept {
    while (at > 0 && line_[at - 1].cp == ' ')
        --at;
    while (at > 0 && line_[at - 1].cp != ' ')
        --at;
    return at;
}

inline std::size_t line_editor::word_right_of(std::size_t at) const noexcept {
    while (at < line_.size() && line_[at].cp == ' ')
        ++at;
    while (at < line_.size() && line_[at].cp != ' ')
        ++at;
    return at;
}

inline std::string line_editor::text() const {
    std::string out;
    out.reserve(bytes_);
    for (const auto& g : line_)
        parley::utf8_append(out, g.cp);
    return out;
}

inline void line_editor::load(std::string_view utf8) {
    line_.clear();
    cursor_ = bytes_ = 0;
    result ignored;
    for (std::size_t i = 0; i < utf8.size();)
        insert(parley::utf8_decode_next(utf8, i), ignored);
}

inline void line_editor::submit(result& r) {
    std::string line = text();
    if (!line.empty() && (history_.empty() || history_.back() != line)) {
        history_.push_back(line);
        if (history_.size() > max_history_)
            history_.pop_front();
    }
    browsing_ = history_.size();
    draft_.clear();
    line_.clear();
    cursor_ = bytes_ = 0;
    r.lines.push_back(std::move(line));
    r.changed = true;
}

// Up (-1) and Down (+1). Leaving the draft keeps it; coming back to it
// restores it. An edit to a recalled line lasts until the line is left.
inline void line_editor::browse(int step, result& r) {
    if (step < 0 && browsing_ == 0)
        return;
    if (step > 0 && browsing_ >= history_.size())
        return;
    if (browsing_ >= history_.size())
        draft_ = text();
    browsing_ = step < 0 ? browsing_ - 1 : browsing_ + 1;
    load(browsing_ < history_.size() ? std::string_view(history_[browsing_])
                                     : std::string_view(draft_));
    r.changed = true;
}

// --- drawing -------------------------------------------------------------------------

inline line_editor::position line_editor::place(const std::vector<unsigned char>& widths,
                                                std::size_t index,
                                                std::size_t columns) noexcept {
    position at;
    for (std::size_t i = 0; i <= index && i < widths.size(); ++i) {
        if (at.column + widths[i] > columns && at.column > 0) {
            ++at.row;
            at.column = 0;
        }
        if (i < index)
            at.column += widths[i];
    }
    if (index >= widths.size() && at.column >= columns) { // the end, at the right margin
        ++at.row;
        at.column = 0;
    }
    return at;
}

inline std::size_t line_editor::drawn_cursor_row(std::size_t columns) const noexcept {
    return drawn_columns_ == 0 ? 0 : place(drawn_, drawn_cursor_, columns).row;
}

inline std::string line_editor::erase(std::size_t columns) {
    columns = std::max<std::size_t>(columns, 2);
    std::string out;
    if (const std::size_t up = drawn_cursor_row(columns))
        out += "\x1b[" + std::to_string(up) + "A";
    out += "\r\x1b[J"; // everything below goes too: the line is the last thing shown
    drawn_.clear();
    drawn_cursor_ = drawn_columns_ = 0;
    return out;
}

inline std::string line_editor::clear_screen() {
    drawn_.clear();
    drawn_cursor_ = drawn_columns_ = 0;
    return "\x1b[H\x1b[2J";
}

inline std::string line_editor::render(std::size_t columns, std::size_t rows) {
    columns = std::max<std::size_t>(columns, 2);
    std::string out = erase(columns);

    // The whole of it, laid out; then the rows that fit, the cursor's among them.
    std::vector<glyph> all = prompt_;
    all.insert(all.end(), line_.begin(), line_.end());
    std::vector<unsigned char> widths;
    for (const auto& g : all)
        widths.push_back(g.width);
    std::size_t first = 0, last = all.size();
    const std::size_t cursor_row = place(widths, prompt_.size() + cursor_, columns).row;
    const std::size_t total_rows =
        std::max(place(widths, widths.size(), columns).row, cursor_row) + 1;
    if (rows == 0 || total_rows <= rows) {
        top_ = 0;
    } else {
        top_ = std::min(top_, total_rows - rows);
        if (cursor_row < top_)
            top_ = cursor_row;
        else if (cursor_row >= top_ + rows)
            top_ = cursor_row - rows + 1;
        std::size_t row = 0, column = 0;
        first = last = all.size();
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (column + widths[i] > columns && column > 0) {
                ++row;
                column = 0;
            }
            column += widths[i];
            if (row >= top_ && first == all.size())
                first = i;
            if (row >= top_ + rows) {
                last = i;
                break;
            }
        }
    }

    if (first == 0 && last >= prompt_.size()) {
        out += prompt_styled_;
    } else {
        for (std::size_t i = first; i < std::min(last, prompt_.size()); ++i)
            parley::utf8_append(out, prompt_[i].cp);
    }
    for (std::size_t i = std::max(first, prompt_.size()); i < last; ++i)
        parley::utf8_append(out, all[i].cp);
    drawn_.assign(widths.begin() + static_cast<std::ptrdiff_t>(first),
                  widths.begin() + static_cast<std::ptrdiff_t>(last));
    drawn_cursor_ = prompt_.size() + cursor_ - first;
    drawn_columns_ = columns;

    // A terminal that has written up to the right margin keeps the cursor
    // in the last column until the next character; a space wraps it for
    // real, and is erased at once.
    const position end = place(drawn_, drawn_.size(), columns);
    if (end.row > 0 && end.column == 0)
        out += " \r\x1b[K";
    const position at = place(drawn_, drawn_cursor_, columns);
    if (end.row > at.row)
        out += "\x1b[" + std::to_string(end.row - at.row) + "A";
    if (at.column != end.column || end.row > at.row) {
        out += "\r";
        if (at.column > 0)
            out += "\x1b[" + std::to_string(at.column) + "C";
    }
    return out;
}

} // namespace parley::examples

#endif
