// parley: a bounded, strict, incremental HTTP/1.1 request-head parser,
// free of I/O, for a server that answers GET requests and WebSocket
// upgrades. Feed it bytes as they arrive; it says how many it took, so the
// bytes after the head (the first WebSocket frames of an eager client)
// stay with the caller.
//
// @code
// parley::http::request_parser parser;
// std::error_code ec;
// const std::size_t used = parser.feed(bytes, ec);
// if (ec)                      // answer http::error_response(ec) and close
// else if (parser.done())      // serve parser.target(); bytes.substr(used) is the next layer's
// else                         // read more and feed again
// @endcode
//
// What it accepts, and why it is stricter than RFC 9112 allows:
// - lines end in CR LF only: a bare LF or CR is refused (400), not taken as
//   a line end, so no two parsers on a path can disagree on where a line
//   ends (request smuggling); no empty lines before the request line;
// - the request line is `GET SP origin-form SP HTTP/1.x`, single spaces;
//   other methods get 405 (with Allow: GET), other versions 505; the
//   target is a path starting with '/' of visible ASCII without '#'
//   (absolute-form is refused: parley is no proxy);
// - field names are tokens with no whitespace before the colon; values
//   have no control characters but HTAB; obsolete line folding is refused;
// - Host, Content-Length, Sec-WebSocket-Key, Sec-WebSocket-Version and
//   Origin may appear once (400 otherwise); other repeated fields are kept
//   in order, and list-valued ones are read together (has_token());
// - HTTP/1.1 needs Host; a body is refused: Content-Length other than 0,
//   or any Transfer-Encoding, is a 400;
// - the request line, fields and the final empty line together take at
//   most `max_bytes` (8 KiB) and `max_fields` field lines (64), else 431.
#ifndef PARLEY_HTTP_REQUEST_PARSER_HPP
#define PARLEY_HTTP_REQUEST_PARSER_HPP

#include <parley/detail/http_head.hpp>
#include <parley/http/error.hpp>

#include <cstddef>
#include <optional>
#include <string_view>
#include <system_error>

namespace parley::http {

/// Limits on a request or response head (see the file comment).
using head_limits = ::parley::detail::http::head_limits;

/// One request head. Not thread-safe; views stay valid until reset() or
/// destruction.
class request_parser {
public:
    explicit request_parser(head_limits limits = {}) noexcept
        : head_(limits, error::header_too_large) {}

    /// Takes bytes of the head and returns how many it took (all of
    /// `bytes` until the head is complete, then none). On a malformed head
    /// sets `ec` (a parley::http::error; status(ec) is the answer) and
    /// takes nothing more, every later call giving the same error.
    std::size_t feed(std::string_view bytes, std::error_code& ec) {
        const std::size_t used = head_.feed(
            bytes, ec, [this](std::string_view line) { return request_line(line); },
            [this](std::string_view partial) { return check_partial(partial); });
        if (!ec && head_.done() && !checked_) {
            checked_ = true;
            if (const auto e = check_fields()) {
                error_ = ec = *e;
            }
        }
        if (!ec && error_)
            ec = error_;
        return used;
    }

    /// Whether a whole head was taken and is valid.
    bool done() const noexcept { return head_.done() && checked_ && !error_; }

    std::string_view method() const noexcept { return head_.view(0, method_size_); }
    /// The request target as sent: path and query.
    std::string_view target() const noexcept { return head_.view(target_offset_, target_size_); }
    /// The target up to its '?'.
    std::string_view path() const noexcept { return target().substr(0, target().find('?')); }
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    int version_minor() const noexcept { return minor_; }

    /// The value of the first field named `name` (any case), OWS trimmed.
    std::optional<std::string_view> field(std::string_view name) const noexcept { return head_.field(name); }
    /// How many field lines are named `name`.
    std::size_t count(std::string_view name) const noexcept { return head_.count(name); }
    /// Whether the list-valued field `name` (all its lines) holds `token`.
    bool has_token(std::string_view name, std::string_view token) const { return head_.has_token(name, token); }

    std::size_t field_count() const noexcept { return head_.field_count(); }
    std::string_view field_name(std::size_t i) const noexcept { return head_.field_name(i); }
    std::string_view field_value(std::size_t i) const noexcept { return head_.field_value(i); }

    /// Bytes of head taken so far.
    std::size_t size() const noexcept { return head_.size(); }

    /// Forgets the request, for the next one on the connection.
    void reset() noexcept {
        head_.reset();
        checked_ = false;
        error_ = {};
        method_size_ = target_offset_ = target_size_ = 0;
        minor_ = 1;
        scanned_ = 0;
        method_ended_ = false;
    }

private:
    // A method is tokens up to its space: garbage (a TLS hello on the plain
    // port, binary) fails at its first byte instead of filling the limit.
    std::optional<std::error_code> check_partial(std::string_view partial) {
        for (; !method_ended_ && scanned_ < partial.size(); ++scanned_) {
            const char c = partial[scanned_];
            if (c == ' ' && scanned_ > 0)
                method_ended_ = true;
            else if (!::parley::detail::http::is_tchar(c))
                return error::bad_request_line;
        }
        return std::nullopt;
    }

    std::optional<std::error_code> request_line(std::string_view line) {
        const std::size_t sp1 = line.find(' ');
        const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
        if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos)
            return error::bad_request_line;
        const std::string_view method = line.substr(0, sp1);
        const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
        const std::string_view version = line.substr(sp2 + 1);
        if (!::parley::detail::http::is_token(method) || target.empty())
            return error::bad_request_line;
        if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || version[6] != '.' ||
            version[5] < '0' || version[5] > '9' || version[7] < '0' || version[7] > '9')
            return error::bad_version;
        if (version[5] != '1' || version[7] > '1')
            return error::version_not_supported;
        minor_ = version[7] - '0';
        if (method != "GET")
            return error::method_not_allowed;
        if (target.front() != '/')
            return error::bad_target;
        for (const char c : target) {
            const auto u = static_cast<unsigned char>(c);
            if (u <= 0x20 || u >= 0x7F || c == '#')
                return error::bad_target;
        }
        method_size_ = static_cast<std::uint32_t>(method.size());
        target_offset_ = static_cast<std::uint32_t>(sp1 + 1);
        target_size_ = static_cast<std::uint32_t>(target.size());
        return std::nullopt;
    }

    std::optional<std::error_code> check_fields() const {
        for (const std::string_view once :
             {"Host", "Content-Length", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Origin"})
            if (head_.count(once) > 1)
                return error::duplicate_field;
        if (minor_ == 1 && !head_.field("Host"))
            return error::missing_host;
        if (head_.field("Transfer-Encoding"))
            return error::body_not_allowed;
        if (const auto length = head_.field("Content-Length")) {
            if (length->empty() || length->find_first_not_of("0123456789") != std::string_view::npos)
                return error::bad_field_value;
            if (length->find_first_not_of('0') != std::string_view::npos)
                return error::body_not_allowed;
        }
        return std::nullopt;
    }

    ::parley::detail::http::head_reader head_;
    std::uint32_t method_size_ = 0;
    std::uint32_t target_offset_ = 0;
    std::uint32_t target_size_ = 0;
    int minor_ = 1;
    bool checked_ = false;
    std::error_code error_;
    std::size_t scanned_ = 0; // bytes of an incomplete request line checked
    bool method_ended_ = false;
};

} // namespace parley::http

#endif
