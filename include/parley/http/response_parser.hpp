// parley: a bounded, strict, incremental HTTP/1.1 response-head parser,
// free of I/O: the client side of a WebSocket upgrade reads the server's
// answer with it. The same rules as request_parser.hpp for lines and
// fields (CR LF only, no folding, 8 KiB and 64 fields by default); the
// status line is `HTTP/1.x SP 3DIGIT SP reason`.
#ifndef PARLEY_HTTP_RESPONSE_PARSER_HPP
#define PARLEY_HTTP_RESPONSE_PARSER_HPP

#include <parley/detail/http_head.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>

#include <cstddef>
#include <optional>
#include <string_view>
#include <system_error>

namespace parley::http {

/// One response head. Not thread-safe; views stay valid until reset() or
/// destruction. The body, if any, is not read: bytes after the head are
/// left to the caller, as feed() says how many it took.
class response_parser {
public:
    explicit response_parser(head_limits limits = {}) noexcept
        : head_(limits, error::response_too_large) {}

    /// Takes bytes of the head and returns how many it took. On a malformed
    /// head sets `ec` and takes nothing more.
    std::size_t feed(std::string_view bytes, std::error_code& ec) {
        return head_.feed(
            bytes, ec, [this](std::string_view line) { return status_line(line); },
            [](std::string_view partial) -> std::optional<std::error_code> {
                // "HTTP/" first: anything else fails at its first byte.
                const std::string_view prefix = partial.substr(0, 5);
                if (std::string_view("HTTP/").substr(0, prefix.size()) != prefix)
                    return error::bad_status_line;
                return std::nullopt;
            });
    }

    bool done() const noexcept { return head_.done(); }

    /// The status code, e.g. 101.
    int status() const noexcept { return status_; }
    std::string_view reason() const noexcept { return head_.view(13, reason_size_); }
    int version_minor() const noexcept { return minor_; }

    std::optional<std::string_view> field(std::string_view name) const noexcept { return head_.field(name); }
    std::size_t count(std::string_view name) const noexcept { return head_.count(name); }
    bool has_token(std::string_view name, std::string_view token) const { return head_.has_token(name, token); }
    std::size_t field_count() const noexcept { return head_.field_count(); }
    std::string_view field_name(std::size_t i) const noexcept { return head_.field_name(i); }
    std::string_view field_value(std::size_t i) const noexcept { return head_.field_value(i); }

    void reset() noexcept {
        head_.reset();
        status_ = 0;
        minor_ = 1;
        reason_size_ = 0;
    }

private:
    std::optional<std::error_code> status_line(std::string_view line) {
        // "HTTP/1.1 101 Switching Protocols": the reason may be empty, the
        // space before it may not.
        if (line.size() < 13 || line.substr(0, 7) != "HTTP/1." || line[7] < '0' || line[7] > '1' ||
            line[8] != ' ' || line[12] != ' ')
            return error::bad_status_line;
        int code = 0;
        for (std::size_t i = 9; i < 12; ++i) {
            if (line[i] < '0' || line[i] > '9')
                return error::bad_status_line;
            code = code * 10 + (line[i] - '0');
        }
        if (code < 100)
            return error::bad_status_line;
        for (const char c : line.substr(13)) {
            const auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7F)
                return error::bad_status_line;
        }
        status_ = code;
        minor_ = line[7] - '0';
        reason_size_ = static_cast<std::uint32_t>(line.size() - 13);
        return std::nullopt;
    }

    ::parley::detail::http::head_reader head_;
    int status_ = 0;
    int minor_ = 1;
    std::uint32_t reason_size_ = 0;
};

} // namespace parley::http

#endif
