// parley: the part of an HTTP/1.1 message head shared by the request and
// response parsers: collecting bytes line by line within a size limit, and
// the header field lines (RFC 9112 section 5). The start line is the
// caller's.
#ifndef PARLEY_DETAIL_HTTP_HEAD_HPP
#define PARLEY_DETAIL_HTTP_HEAD_HPP

#include <parley/http/error.hpp>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace parley::detail::http {

/// tchar of RFC 9110 section 5.6.2.
constexpr bool is_tchar(char c) noexcept {
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '.': case '^': case '_': case '`': case '|': case '~':
        return true;
    default:
        return false;
    }
}

constexpr bool is_token(std::string_view s) noexcept {
    if (s.empty())
        return false;
    for (const char c : s)
        if (!is_tchar(c))
            return false;
    return true;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr std::string_view trim_ows(std::string_view s) noexcept {
    while (!s.empty() && is_ows(s.front()))
        s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back()))
        s.remove_suffix(1);
    return s;
}

constexpr char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; }

constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

/// Calls `f(element)` for each non-empty element of a comma-separated list
/// (RFC 9110 section 5.6.1), whitespace trimmed; stops early when `f`
/// returns true, and returns whether it did.
template <class F>
constexpr bool for_each_element(std::string_view list, F&& f) {
    while (true) {
        const std::size_t comma = list.find(',');
        const std::string_view element = trim_ows(list.substr(0, comma));
        if (!element.empty() && f(element))
            return true;
        if (comma == std::string_view::npos)
            return false;
        list.remove_prefix(comma + 1);
    }
}

/// Limits on a message head.
struct head_limits {
    /// Start line plus header fields plus the empty line ending them, CR LFs
    /// included (at most 4 GiB - 1).
    std::size_t max_bytes = 8 * 1024;
    /// Header field lines.
    std::size_t max_fields = 64;
};

/// Collects a message head from bytes fed in any pieces and parses its
/// field lines. Views it returns point into its own buffer: valid until
/// it is reset or destroyed.
class head_reader {
public:
    explicit head_reader(head_limits limits, ::parley::http::error too_large) noexcept
        : limits_(limits), too_large_(too_large) {
        // Offsets into the head are 32-bit.
        if (limits_.max_bytes > UINT32_MAX)
            limits_.max_bytes = UINT32_MAX;
    }

    /// Takes bytes up to the end of the head and returns how many it took;
    /// those after the empty line are left to the caller. `start` is
    /// called with the start line (CR LF removed) and returns an error or
    /// nothing; `partial` is called with the start line's bytes as they
    /// arrive (complete or not, so any split gives the same error), to
    /// refuse garbage before its line ends.
    template <class Start, class Partial>
    std::size_t feed(std::string_view bytes, std::error_code& ec, Start&& start, Partial&& partial) {
        ec = error_;
        if (error_ || done_)
            return 0;
        std::size_t consumed = 0;
        while (consumed < bytes.size()) {
            const std::string_view rest = bytes.substr(consumed);
            const void* lf = std::memchr(rest.data(), '\n', rest.size());
            std::size_t take =
                lf ? static_cast<std::size_t>(static_cast<const char*>(lf) - rest.data()) + 1 : rest.size();
            // What fits is taken and checked first, so that the error does
            // not depend on how the bytes were split.
            const bool overflow = take > limits_.max_bytes - buffer_.size();
            if (overflow) {
                take = limits_.max_bytes - buffer_.size();
                lf = nullptr;
            }
            buffer_.append(rest.data(), take);
            consumed += take;
            if (!have_start_) {
                if (const auto e = partial(std::string_view(buffer_)))
                    return fail(ec, *e, consumed);
            }
            if (overflow)
                return fail(ec, too_large_, consumed);
            if (!lf)
                break;
            if (const auto e = line(start))
                return fail(ec, *e, consumed);
            if (done_)
                break;
        }
        return consumed;
    }

    bool done() const noexcept { return done_; }
    std::error_code error() const noexcept { return error_; }

    /// Bytes of the head taken so far.
    std::size_t size() const noexcept { return buffer_.size(); }

    std::size_t field_count() const noexcept { return fields_.size(); }
    std::string_view field_name(std::size_t i) const noexcept { return view(fields_[i].name, fields_[i].name_size); }
    std::string_view field_value(std::size_t i) const noexcept { return view(fields_[i].value, fields_[i].value_size); }

    /// The value of the first field named `name` (any case), if any.
    std::optional<std::string_view> field(std::string_view name) const noexcept {
        for (std::size_t i = 0; i < fields_.size(); ++i)
            if (iequals(field_name(i), name))
                return field_value(i);
        return std::nullopt;
    }

    /// How many fields are named `name`.
    std::size_t count(std::string_view name) const noexcept {
        std::size_t n = 0;
        for (std::size_t i = 0; i < fields_.size(); ++i)
            n += iequals(field_name(i), name) ? 1 : 0;
        return n;
    }

    /// Whether any field named `name` lists `token` (any case): the fields
    /// of a list-valued header taken together, as RFC 9110 section 5.3
    /// combines them.
    bool has_token(std::string_view name, std::string_view token) const {
        for (std::size_t i = 0; i < fields_.size(); ++i)
            if (iequals(field_name(i), name) &&
                for_each_element(field_value(i), [&](std::string_view e) { return iequals(e, token); }))
                return true;
        return false;
    }

    std::string_view view(std::uint32_t offset, std::uint32_t size) const noexcept {
        return std::string_view(buffer_).substr(offset, size);
    }

    void reset() noexcept {
        buffer_.clear();
        fields_.clear();
        line_start_ = 0;
        have_start_ = false;
        done_ = false;
        error_ = {};
    }

private:
    struct field_offsets {
        std::uint32_t name, name_size, value, value_size;
    };

    std::size_t fail(std::error_code& ec, std::error_code e, std::size_t consumed) {
        error_ = ec = e;
        return consumed;
    }

    // The line from line_start_ to the end of buffer_, which ends in LF.
    template <class Start>
    std::optional<std::error_code> line(Start& start) {
        const std::size_t begin = line_start_;
        line_start_ = buffer_.size();
        std::string_view text = std::string_view(buffer_).substr(begin);
        if (text.size() < 2 || text[text.size() - 2] != '\r')
            return ::parley::http::error::bad_line_ending;
        text.remove_suffix(2);
        if (text.find('\r') != std::string_view::npos)
            return ::parley::http::error::bad_line_ending;
        if (!have_start_) {
            have_start_ = true;
            return start(text);
        }
        if (text.empty()) {
            done_ = true;
            return std::nullopt;
        }
        if (is_ows(text.front()))
            return ::parley::http::error::obsolete_line_folding;
        const std::size_t colon = text.find(':');
        if (colon == std::string_view::npos)
            return ::parley::http::error::missing_colon;
        const std::string_view name = text.substr(0, colon);
        if (!is_token(name))
            return ::parley::http::error::bad_field_name;
        const std::string_view value = trim_ows(text.substr(colon + 1));
        for (const char c : value) {
            const auto u = static_cast<unsigned char>(c);
            if ((u < 0x20 && c != '\t') || u == 0x7F)
                return ::parley::http::error::bad_field_value;
        }
        if (fields_.size() == limits_.max_fields)
            return ::parley::http::error::too_many_fields;
        fields_.push_back({static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(name.size()),
                           static_cast<std::uint32_t>(value.data() - buffer_.data()),
                           static_cast<std::uint32_t>(value.size())});
        return std::nullopt;
    }

    head_limits limits_;
    ::parley::http::error too_large_;
    std::string buffer_;
    std::vector<field_offsets> fields_;
    std::size_t line_start_ = 0;
    bool have_start_ = false;
    bool done_ = false;
    std::error_code error_;
};

} // namespace parley::detail::http

#endif
