// parley chat: a small, strict JSON reader and writer (RFC 8259), enough
// for the chat protocol's events and nothing more. No dependency, no
// exceptions for bad input.
//
// Strict means: the whole document must be valid UTF-8; only the four
// JSON whitespace characters; no comments, trailing commas, single
// quotes, NaN or leading zeros; control characters inside strings must be
// escaped; \u escapes must pair surrogates; an object may not repeat a
// key; nothing may follow the document. Depth and size are limited, so a
// hostile document costs bounded memory and stack.
#ifndef PARLEY_CHAT_JSON_HPP
#define PARLEY_CHAT_JSON_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace parley::chat::json {

class value;

/// A member of an object: objects keep their members in document order.
struct member;

using array = std::vector<value>;
using object = std::vector<member>;

/// The JSON types.
enum class kind : unsigned char { null, boolean, number, string, array, object };

/// A parsed JSON value. Numbers keep their literal text, so integers of
/// any size survive a round trip and are converted only when asked for.
class value {
public:
    // Defined after `member`, which must be complete first.
    value() noexcept;
    value(std::nullptr_t) noexcept;
    value(bool b);
    value(std::string s);
    value(array a);
    value(object o);

    /// A number from its literal text, which must match the JSON number
    /// grammar (the parser guarantees it; nothing checks it here).
    static value number_literal(std::string text);

    kind type() const noexcept { return static_cast<kind>(v_.index()); }
    bool is_null() const noexcept { return type() == kind::null; }

    /// The value if it has that type, else null.
    const bool* if_bool() const noexcept { return std::get_if<bool>(&v_); }
    const std::string* if_string() const noexcept { return std::get_if<std::string>(&v_); }
    const array* if_array() const noexcept { return std::get_if<array>(&v_); }
    const object* if_object() const noexcept { return std::get_if<object>(&v_); }

    /// A number's literal text (empty if not a number).
    std::string_view number_text() const noexcept;
    /// A number as a double, if it is one and in range.
    std::optional<double> to_double() const noexcept;
    /// A number as an integer, if it is one written without fraction or
    /// exponent and fits.
    std::optional<std::int64_t> to_int64() const noexcept;
    std::optional<std::uint64_t> to_uint64() const noexcept;

    /// An object's member named `key`, or null when this is not an object
    /// or has no such member.
    const value* find(std::string_view key) const noexcept;

    friend bool operator==(const value& a, const value& b) noexcept;

private:
    struct number {
        std::string text;
        bool operator==(const number&) const = default;
    };
    std::variant<std::monostate, bool, number, std::string, array, object> v_;
};

struct member {
    std::string key;
    json::value value;
};

inline value::value() noexcept = default;
inline value::value(std::nullptr_t) noexcept {}
inline value::value(bool b) : v_(b) {}
inline value::value(std::string s) : v_(std::move(s)) {}
inline value::value(array a) : v_(std::move(a)) {}
inline value::value(object o) : v_(std::move(o)) {}

inline value value::number_literal(std::string text) {
    value v;
    v.v_ = number{std::move(text)};
    return v;
}

inline bool operator==(const member& a, const member& b) noexcept {
    return a.key == b.key && a.value == b.value;
}

/// Limits on what parse() accepts.
struct parse_limits {
    /// Bytes in the whole document.
    std::size_t max_bytes = 1024 * 1024;
    /// Arrays and objects nested in one another.
    std::size_t max_depth = 32;
};

/// Why parsing failed: where, and a sentence saying what was wrong
/// ("expected ':' after an object key at offset 12").
struct parse_error {
    std::size_t offset = 0;
    std::string message;
};

/// Parses one JSON document. Returns nullopt and fills `error` when the
/// text is not strict JSON within `limits`. Throws nothing but
/// std::bad_alloc, and needs at most limits.max_bytes of input to do that.
std::optional<value> parse(std::string_view text, parse_error& error,
                           const parse_limits& limits = {});

/// Appends `text` as a JSON string literal, quotes included. Invalid UTF-8
/// is replaced by U+FFFD, so the output is always valid JSON.
void write_string(std::string& out, std::string_view text);

/// Writes JSON into a string, member by member, with no intermediate
/// tree:
/// @code
/// std::string out;
/// parley::chat::json::writer w(out);
/// w.begin_object().key("type").string("join").key("room").string(room).end_object();
/// @endcode
/// The caller keeps the calls well nested (a key before each value in an
/// object); the writer takes care of commas and escaping.
class writer {
public:
    explicit writer(std::string& out) noexcept : out_(out) {}

    writer& begin_object();
    writer& end_object();
    writer& begin_array();
    writer& end_array();
    writer& key(std::string_view name);
    writer& string(std::string_view text);
    writer& boolean(bool b);
    writer& integer(std::int64_t n);
    writer& unsigned_integer(std::uint64_t n);
    /// A double; NaN and infinities, which JSON cannot express, become null.
    writer& number(double d);
    writer& null();
    /// Writes a parsed value.
    writer& json(const value& v);

private:
    void before_value();

    std::string& out_;
    std::vector<bool> first_; // per open container: nothing written in it yet
    bool after_key_ = false;
};

/// A value as compact JSON text.
std::string serialize(const value& v);

} // namespace parley::chat::json

#include <parley/chat/impl/json.hpp>

#endif
