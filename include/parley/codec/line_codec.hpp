// parley: a newline-delimited text codec, free of any I/O, so that people
// with nothing but `nc` or telnet can talk to parley servers.
#ifndef PARLEY_CODEC_LINE_CODEC_HPP
#define PARLEY_CODEC_LINE_CODEC_HPP

#include <parley/error.hpp>

#include <asio/buffer.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace parley {

/// Splits a byte stream into lines ending in "\n"; a "\r" before the "\n"
/// (telnet, Windows) is dropped. Lines are views, copied only when a line is
/// split across chunks.
///
/// A line longer than the limit is reported once with error::line_too_long;
/// the decoder then discards the rest of that line and carries on with the
/// next, since unlike a frame a newline marks where the next line starts.
class line_decoder {
public:
    static constexpr std::size_t default_max_line = 4096;

    explicit line_decoder(std::size_t max_line = default_max_line) noexcept
        : max_line_(max_line) {}

    std::size_t max_line() const noexcept { return max_line_; }
    void max_line(std::size_t limit) noexcept { max_line_ = limit; }

    /// Hands the decoder the next chunk; it must stay valid until next()
    /// returns no line.
    void feed(std::string_view input) noexcept { input_ = input; }
    void feed(std::span<const std::byte> input) noexcept {
        input_ = std::string_view(reinterpret_cast<const char*>(input.data()), input.size());
    }

    /// The next complete line without its terminator, or nullopt when more
    /// input is needed or the current line is too long (then `ec` is set for
    /// that one call). The view is valid until the next feed() or next().
    std::optional<std::string_view> next(std::error_code& ec) {
        ec.clear();
        if (delivered_from_partial_) {
            delivered_from_partial_ = false;
            partial_.clear();
        }
        while (!input_.empty()) {
            const auto newline = input_.find('\n');
            if (discarding_) {
                if (newline == std::string_view::npos) {
                    input_ = {};
                    return std::nullopt;
                }
                discarding_ = false;
                input_.remove_prefix(newline + 1);
                continue;
            }
            if (newline == std::string_view::npos) {
                // Allow one byte over the limit: room for a '\r' before the
                // newline. Not `> max_line_ + 1`, which wraps to 0 when
                // max_line_ is SIZE_MAX ("no limit").
                const std::size_t held = partial_.size() + input_.size();
                if (held > max_line_ && held - max_line_ > 1)
                    return too_long(ec);
                partial_.append(input_);
                input_ = {};
                return std::nullopt;
            }
            std::string_view line = input_.substr(0, newline);
            input_.remove_prefix(newline + 1);
            if (!partial_.empty()) {
                partial_.append(line);
                line = partial_;
                delivered_from_partial_ = true;
            }
            if (!line.empty() && line.back() == '\r')
                line.remove_suffix(1);
            if (line.size() > max_line_) {
                ec = error::line_too_long;
                if (delivered_from_partial_) {
                    delivered_from_partial_ = false;
                    partial_.clear();
                }
                return std::nullopt;
            }
            return line;
        }
        return std::nullopt;
    }

    /// Declares the end of input: error::truncated_line if an unterminated
    /// line is buffered. Its text stays readable through pending().
    void finish(std::error_code& ec) const noexcept {
        ec.clear();
        if (!delivered_from_partial_ && !partial_.empty())
            ec = error::truncated_line;
    }

    /// The text of an unterminated line received so far.
    std::string_view pending() const noexcept {
        return delivered_from_partial_ ? std::string_view() : std::string_view(partial_);
    }

    void reset() noexcept {
        partial_.clear();
        input_ = {};
        discarding_ = delivered_from_partial_ = false;
    }

private:
    std::optional<std::string_view> too_long(std::error_code& ec) {
        ec = error::line_too_long;
        partial_.clear();
        input_ = {};
        discarding_ = true;
        return std::nullopt;
    }

    std::size_t max_line_;
    std::string_view input_;
    std::string partial_;
    bool discarding_ = false;
    bool delivered_from_partial_ = false;
};

/// A line ready to send: the caller's text and a "\n", as a two-buffer
/// ConstBufferSequence. The text is not copied.
class encoded_line {
public:
    using value_type = asio::const_buffer;
    using const_iterator = const asio::const_buffer*;

    explicit encoded_line(std::string_view text) noexcept
        : buffers_{asio::buffer(text), asio::buffer(newline_, 1)} {}

    const_iterator begin() const noexcept { return buffers_.data(); }
    const_iterator end() const noexcept { return buffers_.data() + buffers_.size(); }

private:
    static constexpr char newline_[1] = {'\n'};
    std::array<asio::const_buffer, 2> buffers_;
};

/// Encodes one line. Fails with error::malformed_message if `text` contains
/// a newline (it would become two lines) and error::line_too_long if it
/// exceeds `max_line`.
inline std::optional<encoded_line> encode_line(std::string_view text, std::error_code& ec,
                                               std::size_t max_line =
                                                   line_decoder::default_max_line) noexcept {
    ec.clear();
    if (text.size() > max_line)
        ec = error::line_too_long;
    else if (text.find('\n') != std::string_view::npos)
        ec = error::malformed_message;
    if (ec)
        return std::nullopt;
    return encoded_line(text);
}

} // namespace parley

#endif
