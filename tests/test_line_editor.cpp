// examples/common/line_editor.hpp with no terminal: keys in, text, cursor
// and history out; and what it draws, played on a small screen model that
// wraps and reflows as tmux does, to check that no copy of the prompt is
// left behind by a message, a long line or a resize.
#include "../examples/common/line_editor.hpp"

#include <parley/codec/utf8.hpp>

#include <doctest/doctest.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace doctest {
template <>
struct StringMaker<std::vector<std::string>> {
    static String convert(const std::vector<std::string>& lines) {
        std::string out = "{";
        for (const auto& line : lines)
            out += "\"" + line + "\" ";
        return (out + "}").c_str();
    }
};
} // namespace doctest

namespace {

using parley::examples::line_editor;

// Escape sequences the terminal sends for keys.
constexpr std::string_view left = "\x1b[D", right = "\x1b[C", up = "\x1b[A", down = "\x1b[B",
                           home = "\x1b[H", end = "\x1b[F", del = "\x1b[3~";

std::string type(line_editor& e, std::string_view keys) {
    auto r = e.feed(keys);
    std::string out;
    for (const auto& line : r.lines)
        out += "[" + line + "]";
    return out;
}

// A terminal screen, just enough of one: autowrap (a wide character that
// does not fit goes to the next row), the cursor movements and erasures the
// editor writes, SGR ignored, and reflow of wrapped rows when the width
// changes. Rows never scroll away (the model is as tall as needed).
class screen {
public:
    explicit screen(std::size_t columns) : columns_(columns) { rows_.emplace_back(); }

    void write(std::string_view bytes) {
        for (std::size_t i = 0; i < bytes.size();) {
            const char c = bytes[i];
            if (c == '\x1b') {
                REQUIRE(i + 1 < bytes.size());
                REQUIRE(bytes[i + 1] == '[');
                std::size_t j = i + 2;
                while (j < bytes.size() && !(bytes[j] >= 0x40 && bytes[j] <= 0x7E))
                    ++j;
                REQUIRE(j < bytes.size());
                control(bytes.substr(i + 2, j - i - 2), bytes[j]);
                i = j + 1;
            } else if (c == '\r') {
                col_ = 0;
                ++i;
            } else if (c == '\n') { // the tty's ONLCR: CR LF
                col_ = 0;
                next_row(false);
                ++i;
            } else {
                const char32_t cp = parley::utf8_decode_next(bytes, i);
                put(cp, parley::examples::code_point_width(cp));
            }
        }
    }

    // The window is resized: wrapped rows are joined and wrapped again at
    // the new width, the cursor staying on the same character.
    void resize(std::size_t columns) {
        std::vector<row> out;
        std::size_t new_row = 0, new_col = 0;
        for (std::size_t r = 0; r < rows_.size();) {
            std::vector<std::string> cells;
            std::size_t cursor_cell = std::string::npos;
            do {
                if (r == row_)
                    cursor_cell = cells.size() + std::min(col_, rows_[r].cells.size());
                cells.insert(cells.end(), rows_[r].cells.begin(), rows_[r].cells.end());
            } while (rows_[r++].wrapped && r < rows_.size());
            out.emplace_back();
            for (std::size_t k = 0; k <= cells.size(); ++k) {
                // "": the right half of a wide character, which stays with it
                const std::size_t w =
                    k == cells.size() || cells[k].empty() ? 0 : cell_width(cells[k]);
                if (w > 0 && out.back().cells.size() + w > columns) {
                    out.back().wrapped = true;
                    out.emplace_back();
                }
                if (k == cursor_cell) {
                    new_row = out.size() - 1;
                    new_col = out.back().cells.size();
                }
                if (k < cells.size())
                    out.back().cells.push_back(cells[k]);
            }
            if (cursor_cell == cells.size() && new_col >= columns) {
                out.back().wrapped = true;
                out.emplace_back();
                new_row = out.size() - 1;
                new_col = 0;
            }
        }
        rows_ = std::move(out);
        row_ = new_row;
        col_ = new_col;
        columns_ = columns;
    }

    // The rows with their trailing spaces removed, wrapped rows joined.
    std::vector<std::string> lines() const {
        std::vector<std::string> out(1);
        for (const auto& r : rows_) {
            for (const auto& cell : r.cells)
                out.back() += cell;
            if (!r.wrapped) {
                while (!out.back().empty() && out.back().back() == ' ')
                    out.back().pop_back();
                out.emplace_back();
            }
        }
        while (!out.empty() && out.back().empty())
            out.pop_back();
        return out;
    }

    // The rows as shown, trailing spaces removed.
    std::vector<std::string> rows() const {
        std::vector<std::string> out;
        for (const auto& r : rows_) {
            std::string text;
            for (const auto& cell : r.cells)
                text += cell;
            while (!text.empty() && text.back() == ' ')
                text.pop_back();
            out.push_back(text);
        }
        while (!out.empty() && out.back().empty())
            out.pop_back();
        return out;
    }

    std::size_t cursor_row() const noexcept { return row_; }
    std::size_t cursor_column() const noexcept { return col_; }

private:
    struct row {
        std::vector<std::string> cells; // "" for the right half of a wide character
        bool wrapped = false;
    };

    static std::size_t cell_width(const std::string& cell) {
        std::size_t i = 0;
        return static_cast<std::size_t>(
            parley::examples::code_point_width(parley::utf8_decode_next(cell, i)));
    }

    void next_row(bool wrapped) {
        rows_[row_].wrapped = wrapped;
        if (++row_ == rows_.size())
            rows_.emplace_back();
    }

    void put(char32_t cp, int width) {
        std::string utf8;
        parley::utf8_append(utf8, cp);
        auto& cells = rows_[row_].cells;
        if (width == 0) { // combines with the character before it
            if (col_ > 0 && col_ <= cells.size())
                cells[col_ - 1] += utf8;
            return;
        }
        if (col_ + static_cast<std::size_t>(width) > columns_) {
            next_row(true);
            col_ = 0;
        }
        auto& here = rows_[row_].cells;
        if (here.size() < col_ + static_cast<std::size_t>(width))
            here.resize(col_ + static_cast<std::size_t>(width), " ");
        here[col_] = utf8;
        if (width == 2)
            here[col_ + 1] = "";
        col_ += static_cast<std::size_t>(width); // == columns_: the pending wrap
    }

    void control(std::string_view params, char final) {
        std::size_t n = 0;
        for (char d : params)
            if (d >= '0' && d <= '9')
                n = n * 10 + static_cast<std::size_t>(d - '0');
        col_ = std::min(col_, columns_ - 1); // any movement ends a pending wrap
        switch (final) {
        case 'A': row_ -= std::min(row_, n == 0 ? 1 : n); break;
        case 'C': col_ = std::min(col_ + (n == 0 ? 1 : n), columns_ - 1); break;
        case 'H': row_ = col_ = 0; break;
        case 'K':
            if (rows_[row_].cells.size() > col_)
                rows_[row_].cells.resize(col_);
            rows_[row_].wrapped = false;
            break;
        case 'J':
            if (n == 2) {
                rows_.assign(1, row{});
                row_ = col_ = 0; // (with ESC[H before it, as the editor writes it)
                break;
            }
            if (rows_[row_].cells.size() > col_)
                rows_[row_].cells.resize(col_);
            rows_[row_].wrapped = false;
            rows_.resize(row_ + 1);
            break;
        case 'm': break;
        default: FAIL("unexpected escape sequence, final byte " << final);
        }
    }

    std::size_t columns_;
    std::vector<row> rows_;
    std::size_t row_ = 0, col_ = 0;
};

// What chat_client does with a message: the line is erased, the message
// printed, the line drawn again. (One statement each: the operands of +
// are evaluated in no set order.)
void print_above(line_editor& e, screen& s, std::string_view message, std::size_t columns,
                 std::size_t rows = 0) {
    s.write(e.erase(columns));
    s.write(std::string(message) + "\n");
    s.write(e.render(columns, rows));
}

std::size_t count(const std::vector<std::string>& lines, std::string_view what) {
    std::size_t n = 0;
    for (const auto& line : lines)
        for (auto at = line.find(what); at != std::string::npos; at = line.find(what, at + 1))
            ++n;
    return n;
}

} // namespace

TEST_CASE("line_editor: typing, cursor keys and submitting") {
    line_editor e;
    CHECK(type(e, "helo") == "");
    CHECK(e.text() == "helo");
    CHECK(e.cursor() == 4);
    auto r = e.feed(std::string(left) + "l");
    CHECK(r.changed);
    CHECK(e.text() == "hello");
    CHECK(e.cursor() == 4);

    type(e, std::string(home) + ">> ");
    CHECK(e.text() == ">> hello");
    type(e, std::string(end) + "!");
    CHECK(e.text() == ">> hello!");
    type(e, std::string(left) + std::string(left) + std::string(right) + "?");
    CHECK(e.text() == ">> hello?!");
    CHECK(type(e, "\r") == "[>> hello?!]");
    CHECK(e.text().empty());
    CHECK(e.cursor() == 0);

    // Left at the start and Right at the end do nothing (and ask no redraw).
    type(e, "ab");
    CHECK_FALSE(e.feed(right).changed);
    type(e, std::string(home));
    CHECK_FALSE(e.feed(left).changed);
    // CR LF is one Enter; a lone LF is one too.
    CHECK(type(e, "\r\nc\n") == "[ab][c]");
}

TEST_CASE("line_editor: every form of Home, End and the arrows") {
    for (std::string_view h : {"\x1b[H", "\x1b[1~", "\x1b[7~", "\x1bOH", "\x01"}) {
        line_editor e;
        type(e, "abc");
        type(e, h);
        CAPTURE(h);
        CHECK(e.cursor() == 0);
    }
    for (std::string_view f : {"\x1b[F", "\x1b[4~", "\x1b[8~", "\x1bOF", "\x05"}) {
        line_editor e;
        type(e, std::string("abc") + std::string(home));
        type(e, f);
        CAPTURE(f);
        CHECK(e.cursor() == 3);
    }
    line_editor e;
    type(e, "abc");
    type(e, "\x1bOD\x1bOD");
    CHECK(e.cursor() == 1);
    type(e, "\x1bOC");
    CHECK(e.cursor() == 2);
    type(e, "\x02"); // Ctrl-B
    CHECK(e.cursor() == 1);
    type(e, "\x06"); // Ctrl-F
    CHECK(e.cursor() == 2);
    // Word by word: Ctrl-Left/Right, Alt-B/F.
    line_editor w;
    type(w, "one two  three");
    type(w, "\x1b[1;5D");
    CHECK(w.cursor() == 9);
    type(w, "\x1b" "b");
    CHECK(w.cursor() == 4);
    type(w, "\x1b[1;3C");
    CHECK(w.cursor() == 7);
    type(w, "\x1b" "f");
    CHECK(w.cursor() == 14);
}

TEST_CASE("line_editor: escape sequences split anywhere, unknown ones swallowed") {
    line_editor e;
    type(e, "abc");
    for (char c : std::string_view("\x1b[D\x1b[3~"))
        e.feed(std::string_view(&c, 1));
    CHECK(e.text() == "ab");
    CHECK(e.cursor() == 2);
    // F5, a bracketed paste marker, a focus report, an overlong sequence:
    // none of them types anything.
    type(e, "\x1b[15~\x1b[200~\x1b[I\x1b[1;2;3;4;5;6;7;8;9;10;11;12;13;14;15;16;17;18Z\x1bOP");
    CHECK(e.text() == "ab");
    CHECK(e.cursor() == 2);
    // A control byte inside a sequence ends it and counts as a key (Ctrl-A).
    type(e, "\x1b[1\x01x");
    CHECK(e.text() == "xab");
    CHECK(e.cursor() == 1);
    // ESC alone, then Enter or a UTF-8 character: they are keys too.
    CHECK(type(e, "\x1b\x1b\xE5\x8A\x9F\x1b\r") == "[x功ab]");
}

TEST_CASE("line_editor: deleting") {
    line_editor e;
    type(e, "abcd");
    type(e, "\x7f");
    CHECK(e.text() == "abc");
    type(e, "\x08");
    CHECK(e.text() == "ab");
    type(e, std::string(home) + std::string(del));
    CHECK(e.text() == "b");
    CHECK(e.cursor() == 0);
    CHECK_FALSE(e.feed("\x7f").changed); // nothing before the cursor
    type(e, "\x04"); // Ctrl-D on a non-empty line: delete under the cursor
    CHECK(e.text().empty());
    CHECK(e.feed("\x04").end_of_input);

    line_editor k;
    type(k, "hello big world");
    type(k, std::string(left) + std::string(left));
    type(k, "\x0b"); // Ctrl-K
    CHECK(k.text() == "hello big wor");
    type(k, "\x17"); // Ctrl-W
    CHECK(k.text() == "hello big ");
    type(k, "\x17");
    CHECK(k.text() == "hello ");
    type(k, "again" + std::string(left) + std::string(left) + "\x15"); // Ctrl-U
    CHECK(k.text() == "in");
    CHECK(k.cursor() == 0);
    type(k, std::string(end) + " two words\x1b\x7f"); // Alt-Backspace
    CHECK(k.text() == "in two ");
}

TEST_CASE("line_editor: UTF-8, wide and combining characters") {
    line_editor e;
    const std::string text = "连接成功"; // 4 CJK characters, 12 bytes
    for (char c : text) // one byte at a time
        e.feed(std::string_view(&c, 1));
    CHECK(e.text() == text);
    CHECK(e.cursor() == 4);
    type(e, std::string(left) + "x");
    CHECK(e.text() == "连接成x功");
    type(e, "\x7f\x7f");
    CHECK(e.text() == "连接功");

    // e + COMBINING ACUTE is one character for the cursor and Backspace.
    line_editor c;
    type(c, "ae\xCC\x81z");
    type(c, std::string(left) + std::string(left));
    CHECK(c.cursor() == 1);
    type(c, std::string(right));
    CHECK(c.cursor() == 3);
    type(c, "\x7f");
    CHECK(c.text() == "az");

    // Broken UTF-8 and characters unsafe on a terminal are not taken.
    line_editor b;
    type(b, "a\xC3(\x80\xE2\x80\xAE\xC2\x9B" "b"); // bad lead, stray continuation, RLO, CSI
    CHECK(b.text() == "a(b");
}

TEST_CASE("line_editor: the line is bounded") {
    line_editor e(8);
    type(e, "1234567890");
    CHECK(e.text() == "12345678");
    type(e, "\x7f\x7f连接"); // 6 bytes, then 3 more do not fit
    CHECK(e.text() == "123456");
    type(e, "\x7f\x7f\x7f连");
    CHECK(e.text() == "123连");
}

TEST_CASE("line_editor: history with Up and Down, the line being typed kept") {
    line_editor e;
    type(e, "first\rsecond\rsecond\r\rthird\r");
    CHECK(e.history() == std::deque<std::string>{"first", "second", "third"});

    type(e, "draft");
    type(e, up);
    CHECK(e.text() == "third");
    CHECK(e.cursor() == 5);
    type(e, std::string(up) + std::string(up));
    CHECK(e.text() == "first");
    CHECK_FALSE(e.feed(up).changed); // the oldest: Up does nothing
    type(e, std::string(down));
    CHECK(e.text() == "second");
    type(e, "\x1bOB\x0e"); // SS3 Down, then Ctrl-N
    CHECK(e.text() == "draft");
    CHECK_FALSE(e.feed(down).changed);
    type(e, "\x10"); // Ctrl-P
    CHECK(e.text() == "third");
    CHECK(type(e, " again\r") == "[third again]");
    CHECK(e.history().back() == "third again");
    type(e, up);
    CHECK(e.text() == "third again");

    line_editor small(100, 2);
    type(small, "a\rb\rc\r");
    CHECK(small.history() == std::deque<std::string>{"b", "c"});
}

TEST_CASE("line_editor: drawing a short line, a message above it, Ctrl-L") {
    line_editor e;
    e.prompt("\x1b[2mlobby\x1b[0m> ", "lobby> ");
    screen s(40);
    s.write(e.render(40));
    CHECK(s.rows() == std::vector<std::string>{"lobby>"});
    type(e, "hello wrld");
    type(e, std::string(left) + std::string(left) + std::string(left) + "o");
    s.write(e.render(40));
    CHECK(s.rows() == std::vector<std::string>{"lobby> hello world"});
    CHECK(s.cursor_column() == 7 + 8);

    print_above(e, s, "bob: hi", 40);
    CHECK(s.rows() == std::vector<std::string>{"bob: hi", "lobby> hello world"});
    CHECK(s.cursor_row() == 1);
    CHECK(s.cursor_column() == 15);

    REQUIRE(e.feed("\x0c").clear_screen);
    s.write(e.clear_screen());
    s.write(e.render(40));
    CHECK(s.rows() == std::vector<std::string>{"lobby> hello world"});
}

TEST_CASE("line_editor: a long line wraps; messages and edits leave one copy") {
    line_editor e;
    e.prompt("连接成功> ", "连接成功> "); // 10 columns
    screen s(20);
    s.write("earlier\n");
    type(e, std::string(45, 'a'));
    s.write(e.render(20));
    // 10 + 45 = 55 columns: rows of 20, 20, 15.
    CHECK(s.rows() == std::vector<std::string>{"earlier", "连接成功> " + std::string(10, 'a'),
                                               std::string(20, 'a'), std::string(15, 'a')});
    type(e, home);
    s.write(e.render(20));
    CHECK(s.cursor_row() == 1);
    CHECK(s.cursor_column() == 10);
    print_above(e, s, "bob: hi", 20);
    CHECK(s.lines() == std::vector<std::string>{"earlier", "bob: hi",
                                                "连接成功> " + std::string(45, 'a')});
    CHECK(s.cursor_row() == 2);
    CHECK(s.cursor_column() == 10);
    type(e, "\x0b"); // Ctrl-K: back to one row
    s.write(e.render(20));
    CHECK(s.rows() == std::vector<std::string>{"earlier", "bob: hi", "连接成功>"});

    // Exactly up to the margin: the cursor goes to the next row.
    type(e, std::string(10, 'b'));
    s.write(e.render(20));
    CHECK(s.rows() == std::vector<std::string>{"earlier", "bob: hi",
                                               "连接成功> " + std::string(10, 'b')});
    CHECK(s.cursor_row() == 3);
    CHECK(s.cursor_column() == 0);
    print_above(e, s, "x", 20);
    CHECK(count(s.rows(), "连接成功>") == 1);
    CHECK(s.lines().back() == "连接成功> " + std::string(10, 'b'));

    // A wide character that does not fit in the last column goes whole to
    // the next row, and the cursor is found there.
    line_editor w;
    w.prompt("> ", "> ");
    screen t(7);
    type(w, "ab连接"); // 2 + 2 + 2 = 6, then 2 more do not fit in 7
    t.write(w.render(7));
    CHECK(t.rows() == std::vector<std::string>{"> ab连", "接"});
    type(w, left);
    t.write(w.render(7));
    CHECK(t.cursor_row() == 1);
    CHECK(t.cursor_column() == 0);
}

TEST_CASE("line_editor: a narrower then wider window leaves one prompt") {
    for (std::size_t cursor_back : {0u, 5u, 30u}) {
        CAPTURE(cursor_back);
        line_editor e;
        e.prompt("lobby> ", "lobby> ");
        screen s(60);
        s.write("a message\n");
        type(e, "some words typed here and there, quite a few of them");
        for (std::size_t i = 0; i < cursor_back; ++i)
            type(e, left);
        s.write(e.render(60));
        const std::string whole = "lobby> " + e.text();
        for (std::size_t columns : {30u, 17u, 45u, 120u, 60u}) {
            CAPTURE(columns);
            s.resize(columns); // the terminal reflows, then SIGWINCH
            s.write(e.render(columns));
            CHECK(s.lines() == std::vector<std::string>{"a message", whole});
            CHECK(count(s.rows(), "lobby>") == 1);
            // Drawn again at the same width: still one copy.
            type(e, "x\x7f");
            s.write(e.render(columns));
            CHECK(s.lines() == std::vector<std::string>{"a message", whole});
        }
        // The width changed and a key came before the signal: render()
        // saw the new width itself.
        s.resize(25);
        print_above(e, s, "late", 25);
        CHECK(s.lines() == std::vector<std::string>{"a message", "late", whole});
    }
}

TEST_CASE("line_editor: a line taller than the screen shows the rows around the cursor") {
    line_editor e;
    e.prompt("> ", "> ");
    screen s(10);
    s.write("above\n");
    std::string text;
    for (char c = 'a'; c <= 'z'; ++c)
        text += std::string(3, c); // 78 characters + 2 for the prompt: 8 rows of 10
    type(e, text);
    s.write(e.render(10, 3));
    // The end: the last two rows, and the cursor on a row of its own.
    CHECK(s.rows() == std::vector<std::string>{"above", text.substr(58, 10), text.substr(68)});
    CHECK(s.cursor_row() == 3);
    CHECK(s.cursor_column() == 0);
    type(e, home);
    s.write(e.render(10, 3));
    CHECK(s.rows() ==
          std::vector<std::string>{"above", "> " + text.substr(0, 8), text.substr(8, 10),
                                   text.substr(18, 10)});
    CHECK(s.cursor_row() == 1);
    CHECK(s.cursor_column() == 2);
    for (int i = 0; i < 35; ++i)
        type(e, right); // to the 36th character, on row 3 of the line: rows 1 to 3
    s.write(e.render(10, 3));
    CHECK(s.rows() == std::vector<std::string>{"above", text.substr(8, 10),
                                               text.substr(18, 10), text.substr(28, 10)});
    CHECK(s.cursor_row() == 3);
    CHECK(s.cursor_column() == 7);
    type(e, std::string(10, '\x06')); // ten more to the right: rows 2 to 4
    s.write(e.render(10, 3));
    CHECK(s.rows() == std::vector<std::string>{"above", text.substr(18, 10),
                                               text.substr(28, 10), text.substr(38, 10)});
    CHECK(s.cursor_row() == 3);
    CHECK(s.cursor_column() == 7);
    print_above(e, s, "news", 10, 3);
    CHECK(s.rows() == std::vector<std::string>{"above", "news", text.substr(18, 10),
                                               text.substr(28, 10), text.substr(38, 10)});
    CHECK(s.cursor_row() == 4);
    // Wider: it fits again, whole.
    s.resize(40);
    s.write(e.render(40, 3));
    CHECK(s.lines() == std::vector<std::string>{"above", "news", "> " + text});
    CHECK(count(s.rows(), ">") == 1);
}
