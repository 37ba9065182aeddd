// A terminal for a chat client: text from the network made harmless to
// print, display widths, and raw-ish input mode restored on every exit
// (line_editor.hpp draws the line being typed). Shared by the examples; not
// part of parley's API.
#ifndef PARLEY_EXAMPLES_COMMON_TERMINAL_HPP
#define PARLEY_EXAMPLES_COMMON_TERMINAL_HPP

#include <parley/codec/utf8.hpp>

#include <poll.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

namespace parley::examples {

// --- text ----------------------------------------------------------------------

inline constexpr std::string_view replacement_character = "\xEF\xBF\xBD"; // U+FFFD

/// Code points that must never reach a terminal from the network: C0 and C1
/// controls and DEL (ESC starts escape sequences that move the cursor,
/// recolour, retitle the window...), line and paragraph separators, and the
/// invisible direction controls that can make text display in another
/// order than it was written (U+061C, U+200E, U+200F, U+202A..U+202E,
/// U+2066..U+2069).
constexpr bool is_unsafe_for_terminal(char32_t cp) noexcept {
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E ||
           cp == 0x200F || (cp >= 0x2028 && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

/// `text` made safe to print: every unsafe code point and every byte that
/// is not part of valid UTF-8 becomes U+FFFD. TAB becomes a space.
inline std::string sanitize(std::string_view text) {
    std::string out;
    out.reserve(text.size());
    std::size_t i = 0;
    while (i < text.size()) {
        const auto b0 = static_cast<unsigned char>(text[i]);
        const std::size_t length = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
        const std::string_view unit = text.substr(i, length);
        if (unit.size() != length || !parley::is_valid_utf8(unit)) {
            out += replacement_character;
            ++i;
            continue;
        }
        std::size_t at = 0;
        const char32_t cp = parley::utf8_decode_next(unit, at);
        if (cp == '\t')
            out += ' ';
        else if (is_unsafe_for_terminal(cp))
            out += replacement_character;
        else
            out += unit;
        i += length;
    }
    return out;
}

/// Columns a code point takes: 0 for combining marks and zero-width
/// characters, 2 for East Asian wide and fullwidth characters and most
/// emoji, 1 otherwise.
constexpr int code_point_width(char32_t cp) noexcept {
    if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x1AB0 && cp <= 0x1AFF) ||
        (cp >= 0x1DC0 && cp <= 0x1DFF) || (cp >= 0x20D0 && cp <= 0x20FF) ||
        (cp >= 0xFE00 && cp <= 0xFE0F) || (cp >= 0xFE20 && cp <= 0xFE2F) ||
        (cp >= 0x200B && cp <= 0x200D) || cp == 0x2060 || cp == 0xFEFF)
        return 0;
    if ((cp >= 0x1100 && cp <= 0x115F) || (cp >= 0x2E80 && cp <= 0x303E) ||
        (cp >= 0x3041 && cp <= 0x33FF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0xA000 && cp <= 0xA4CF) ||
        (cp >= 0xAC00 && cp <= 0xD7A3) || (cp >= 0xF900 && cp <= 0xFAFF) ||
        (cp >= 0xFE30 && cp <= 0xFE4F) || (cp >= 0xFF00 && cp <= 0xFF60) ||
        (cp >= 0xFFE0 && cp <= 0xFFE6) || (cp >= 0x1F300 && cp <= 0x1F64F) ||
        (cp >= 0x1F900 && cp <= 0x1F9FF) || (cp >= 0x20000 && cp <= 0x3FFFD))
        return 2;
    return 1;
}

// --- output ----------------------------------------------------------------------

/// Writes all of `data` to `fd`, waiting when the descriptor is in
/// non-blocking mode and full. Returns false if the output is gone.
inline bool write_all(int fd, std::string_view data) {
    while (!data.empty()) {
        const auto n = ::write(fd, data.data(), data.size());
        if (n > 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ::pollfd p{fd, POLLOUT, 0};
            ::poll(&p, 1, 1000);
            continue;
        }
        return false;
    }
    return true;
}

/// The terminal's width in columns (80 if it cannot be told).
inline std::size_t terminal_columns(int fd = STDOUT_FILENO) {
    ::winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_col > 0)
        return size.ws_col;
    return 80;
}

/// The terminal's height in rows (24 if it cannot be told).
inline std::size_t terminal_rows(int fd = STDOUT_FILENO) {
    ::winsize size{};
    if (::ioctl(fd, TIOCGWINSZ, &size) == 0 && size.ws_row > 0)
        return size.ws_row;
    return 24;
}

// --- input mode --------------------------------------------------------------------

/// Turns off the terminal's line editing and echo for as long as it lives
/// (signals stay on: Ctrl-C is still SIGINT), so that keys arrive one by
/// one and only the program draws the input line. The previous settings
/// come back in the destructor, and also at exit() and std::terminate(),
/// so the shell is never left without echo. Signal handlers call
/// restore() before the program stops or exits.
class raw_mode {
public:
    explicit raw_mode(int fd = STDIN_FILENO) : fd_(fd) {
        if (::tcgetattr(fd_, &saved_) != 0)
            return;
        active_ = this;
        static bool hooks_installed = false;
        if (!hooks_installed) {
            hooks_installed = true;
            std::atexit([] { restore_active(); });
            previous_terminate() = std::set_terminate([] {
                restore_active();
                if (auto previous = previous_terminate())
                    previous();
                std::abort();
            });
        }
        enter();
    }
    raw_mode(const raw_mode&) = delete;
    raw_mode& operator=(const raw_mode&) = delete;
    ~raw_mode() {
        restore();
        if (active_ == this)
            active_ = nullptr;
    }

    /// Back to raw-ish mode (after a suspension, for instance).
    void enter() {
        if (active_ != this)
            return;
        ::termios raw = saved_;
        raw.c_lflag &= static_cast<tcflag_t>(~(ICANON | ECHO | IEXTEN));
        raw.c_cc[VMIN] = 1;
        raw.c_cc[VTIME] = 0;
        ::tcsetattr(fd_, TCSANOW, &raw);
        entered_ = true;
    }

    /// The settings found at construction, back again.
    void restore() noexcept {
        if (entered_) {
            ::tcsetattr(fd_, TCSANOW, &saved_);
            entered_ = false;
        }
    }

private:
    static void restore_active() noexcept {
        if (active_)
            active_->restore();
    }
    static std::terminate_handler& previous_terminate() {
        static std::terminate_handler handler = nullptr;
        return handler;
    }

    static inline raw_mode* active_ = nullptr;
    int fd_;
    ::termios saved_{};
    bool entered_ = false;
};

} // namespace parley::examples

#endif
