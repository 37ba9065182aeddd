// parley chat: the JSON parser (parse()).
#ifndef PARLEY_CHAT_IMPL_JSON_PARSER_HPP
#define PARLEY_CHAT_IMPL_JSON_PARSER_HPP

#include <parley/codec/utf8.hpp>

#include <algorithm>
#include <cstdio>
#include <limits>

namespace parley::chat::json {

// --- parsing ------------------------------------------------------------------

namespace detail {

// Where the first byte of invalid UTF-8 in `text` is, or npos.
inline std::size_t first_invalid_utf8(std::string_view text) noexcept {
    for (std::size_t i = 0; i < text.size();) {
        const std::size_t len = utf8_sequence_at(text, i);
        if (len == 0)
            return i;
        i += len;
    }
    return std::string_view::npos;
}

// A recursive-descent parser; recursion is bounded by max_depth.
class parser {
public:
    parser(std::string_view text, const parse_limits& limits, parse_error& error) noexcept
        : text_(text), limits_(limits), error_(error) {}

    std::optional<value> document() {
        if (text_.size() > limits_.max_bytes)
            return fail(0, "document of " + std::to_string(text_.size()) +
                               " bytes exceeds the " + std::to_string(limits_.max_bytes) +
                               "-byte limit");
        if (const auto bad = first_invalid_utf8(text_); bad != std::string_view::npos)
            return fail(bad, "invalid UTF-8 at offset " + std::to_string(bad));
        skip_space();
        if (pos_ == text_.size())
            return fail(pos_, "empty document");
        auto v = parse_value(0);
        if (!v)
            return v;
        skip_space();
        if (pos_ != text_.size())
            return fail(pos_, "unexpected " + describe_here() + " after the document at offset " +
                                  std::to_string(pos_));
        return v;
    }

private:
    std::nullopt_t fail(std::size_t offset, std::string message) {
        if (error_.message.empty()) {
            error_.offset = offset;
            error_.message = std::move(message);
        }
        return std::nullopt;
    }

    std::string describe_here() const {
        if (pos_ >= text_.size())
            return "end of input";
        const auto c = static_cast<unsigned char>(text_[pos_]);
        if (c >= 0x21 && c < 0x7F)
            return std::string("'") + static_cast<char>(c) + "'";
        char buf[16];
        std::snprintf(buf, sizeof buf, "byte 0x%02X", c);
        return buf;
    }

    std::nullopt_t unexpected(std::string_view expected) {
        return fail(pos_, "expected " + std::string(expected) + " but found " + describe_here() +
                              " at offset " + std::to_string(pos_));
    }

    void skip_space() noexcept {
        while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\t' ||
                                       text_[pos_] == '\n' || text_[pos_] == '\r'))
            ++pos_;
    }

    bool consume(char c) noexcept {
        if (pos_ < text_.size() && text_[pos_] == c) {
            ++pos_;
            return true;
        }
        return false;
    }

    bool consume_word(std::string_view word) noexcept {
        if (text_.substr(pos_, word.size()) == word) {
            pos_ += word.size();
            return true;
        }
        return false;
    }

    std::optional<value> parse_value(std::size_t depth) {
        if (pos_ >= text_.size())
            return unexpected("a value");
        switch (text_[pos_]) {
        case '{':
            return parse_object(depth + 1);
        case '[':
            return parse_array(depth + 1);
        case '"': {
            auto s = parse_string();
            if (!s)
                return std::nullopt;
            return value(std::move(*s));
        }
        case 't':
            if (consume_word("true"))
                return value(true);
            break;
        case 'f':
            if (consume_word("false"))
                return value(false);
            break;
        case 'n':
            if (consume_word("null"))
                return value(nullptr);
            break;
        default:
            if (text_[pos_] == '-' || (text_[pos_] >= '0' && text_[pos_] <= '9'))
                return parse_number();
        }
        return unexpected("a value");
    }

    bool too_deep(std::size_t depth) {
        if (depth <= limits_.max_depth)
            return false;
        fail(pos_, "nesting deeper than " + std::to_string(limits_.max_depth) +
                       " levels at offset " + std::to_string(pos_));
        return true;
    }

    std::optional<value> parse_object(std::size_t depth) {
        if (too_deep(depth))
            return std::nullopt;
        ++pos_; // '{'
        object members;
        std::vector<std::size_t> key_offsets;
        skip_space();
        if (consume('}'))
            return value(std::move(members));
        for (;;) {
            skip_space();
            if (pos_ >= text_.size() || text_[pos_] != '"')
                return unexpected("a string key");
            key_offsets.push_back(pos_);
            auto key = parse_string();
            if (!key)
                return std::nullopt;
            skip_space();
            if (!consume(':'))
                return unexpected("':' after an object key");
            skip_space();
            auto v = parse_value(depth);
            if (!v)
                return std::nullopt;
            members.push_back({std::move(*key), std::move(*v)});
            skip_space();
            if (consume('}')) {
                if (!unique_keys(members, key_offsets))
                    return std::nullopt;
                return value(std::move(members));
            }
            if (!consume(','))
                return unexpected("',' or '}' in an object");
        }
    }

    // Sorting, not comparing every pair: a hostile object with 100 000
    // keys must not cost 10^10 comparisons.
    bool unique_keys(const object& members, const std::vector<std::size_t>& offsets) {
        if (members.size() < 2)
            return true;
        std::vector<std::size_t> order(members.size());
        for (std::size_t i = 0; i < order.size(); ++i)
            order[i] = i;
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return members[a].key != members[b].key ? members[a].key < members[b].key : a < b;
        });
        for (std::size_t i = 1; i < order.size(); ++i) {
            const auto& later = members[order[i]];
            if (later.key == members[order[i - 1]].key) {
                const std::size_t offset = offsets[order[i]];
                fail(offset, "duplicate key \"" + later.key + "\" at offset " +
                                 std::to_string(offset));
                return false;
            }
        }
        return true;
    }

    std::optional<value> parse_array(std::size_t depth) {
        if (too_deep(depth))
            return std::nullopt;
        ++pos_; // '['
        array items;
        skip_space();
        if (consume(']'))
            return value(std::move(items));
        for (;;) {
            skip_space();
            auto v = parse_value(depth);
            if (!v)
                return std::nullopt;
            items.push_back(std::move(*v));
            skip_space();
            if (consume(']'))
                return value(std::move(items));
            if (!consume(','))
                return unexpected("',' or ']' in an array");
        }
    }

    std::optional<value> parse_number() {
        const std::size_t start = pos_;
        auto digits = [&] {
            const std::size_t from = pos_;
            while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9')
                ++pos_;
            return pos_ - from;
        };
        consume('-');
        if (consume('0')) {
            if (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9')
                return fail(start, "number with a leading zero at offset " + std::to_string(start));
        } else if (digits() == 0) {
            return unexpected("a digit");
        }
        if (consume('.') && digits() == 0)
            return unexpected("a digit after the decimal point");
        if (consume('e') || consume('E')) {
            if (!consume('+'))
                consume('-');
            if (digits() == 0)
                return unexpected("a digit in the exponent");
        }
        return value::number_literal(std::string(text_.substr(start, pos_ - start)));
    }

    // Four hex digits of a \u escape.
    std::optional<char32_t> hex4() {
        if (text_.size() - pos_ < 4)
            return std::nullopt;
        char32_t cp = 0;
        for (int i = 0; i < 4; ++i) {
            const char c = text_[pos_++];
            cp <<= 4;
            if (c >= '0' && c <= '9')
                cp |= static_cast<char32_t>(c - '0');
            else if (c >= 'a' && c <= 'f')
                cp |= static_cast<char32_t>(c - 'a' + 10);
            else if (c >= 'A' && c <= 'F')
                cp |= static_cast<char32_t>(c - 'A' + 10);
            else
                return std::nullopt;
        }
        return cp;
    }

    std::optional<std::string> parse_string() {
        const std::size_t start = pos_;
        ++pos_; // '"'
        std::string out;
        for (;;) {
            // Copy a run of plain bytes at once (the text is valid UTF-8).
            const std::size_t run_start = pos_;
            while (pos_ < text_.size()) {
                const auto c = static_cast<unsigned char>(text_[pos_]);
                if (c == '"' || c == '\\' || c < 0x20)
                    break;
                ++pos_;
            }
            out.append(text_.substr(run_start, pos_ - run_start));
            if (pos_ >= text_.size())
                return fail(start, "unterminated string starting at offset " +
                                       std::to_string(start));
            const auto c = static_cast<unsigned char>(text_[pos_]);
            if (c == '"') {
                ++pos_;
                return out;
            }
            if (c < 0x20) {
                char buf[96];
                std::snprintf(buf, sizeof buf,
                              "control character U+%04X in a string at offset %zu must be escaped",
                              c, pos_);
                return fail(pos_, buf);
            }
            // A backslash.
            const std::size_t escape = pos_++;
            if (pos_ >= text_.size())
                return fail(escape, "unterminated escape at offset " + std::to_string(escape));
            switch (text_[pos_++]) {
            case '"': out += '"'; break;
            case '\\': out += '\\'; break;
            case '/': out += '/'; break;
            case 'b': out += '\b'; break;
            case 'f': out += '\f'; break;
            case 'n': out += '\n'; break;
            case 'r': out += '\r'; break;
            case 't': out += '\t'; break;
            case 'u': {
                auto cp = hex4();
                if (!cp)
                    return fail(escape, "\\u must be followed by four hex digits at offset " +
                                            std::to_string(escape));
                if (*cp >= 0xDC00 && *cp <= 0xDFFF)
                    return fail(escape, "unpaired low surrogate in \\u escape at offset " +
                                            std::to_string(escape));
                if (*cp >= 0xD800 && *cp <= 0xDBFF) {
                    std::optional<char32_t> low;
                    if (consume('\\') && consume('u'))
                        low = hex4();
                    if (!low || *low < 0xDC00 || *low > 0xDFFF)
                        return fail(escape, "unpaired high surrogate in \\u escape at offset " +
                                                std::to_string(escape));
                    *cp = 0x10000 + ((*cp - 0xD800) << 10) + (*low - 0xDC00);
                }
                utf8_append(out, *cp);
                break;
            }
            default:
                return fail(escape, "invalid escape at offset " + std::to_string(escape));
            }
        }
    }

    std::string_view text_;
    const parse_limits& limits_;
    parse_error& error_;
    std::size_t pos_ = 0;
};

} // namespace detail

inline std::optional<value> parse(std::string_view text, parse_error& error,
                                  const parse_limits& limits) {
    error = {};
    return detail::parser(text, limits, error).document();
}

} // namespace parley::chat::json

#endif
