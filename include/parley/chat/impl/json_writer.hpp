// parley chat: the JSON writer and serialize().
#ifndef PARLEY_CHAT_IMPL_JSON_WRITER_HPP
#define PARLEY_CHAT_IMPL_JSON_WRITER_HPP

#include <parley/chat/impl/json_escape.hpp>

#include <charconv>
#include <cmath>

namespace parley::chat::json {

// --- writing ------------------------------------------------------------------

inline void writer::before_value() {
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!first_.empty()) {
        if (!first_.back())
            out_ += ',';
        first_.back() = false;
    }
}

inline writer& writer::begin_object() {
    before_value();
    out_ += '{';
    first_.push_back(true);
    return *this;
}

inline writer& writer::end_object() {
    out_ += '}';
    first_.pop_back();
    return *this;
}

inline writer& writer::begin_array() {
    before_value();
    out_ += '[';
    first_.push_back(true);
    return *this;
}

inline writer& writer::end_array() {
    out_ += ']';
    first_.pop_back();
    return *this;
}

inline writer& writer::key(std::string_view name) {
    before_value();
    write_string(out_, name);
    out_ += ':';
    after_key_ = true;
    return *this;
}

inline writer& writer::string(std::string_view text) {
    before_value();
    write_string(out_, text);
    return *this;
}

inline writer& writer::boolean(bool b) {
    before_value();
    out_ += b ? "true" : "false";
    return *this;
}

inline writer& writer::integer(std::int64_t n) {
    before_value();
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, end);
    return *this;
}

inline writer& writer::unsigned_integer(std::uint64_t n) {
    before_value();
    char buf[24];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, n);
    out_.append(buf, end);
    return *this;
}

inline writer& writer::number(double d) {
    if (!std::isfinite(d))
        return null();
    before_value();
    char buf[32];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
    out_.append(buf, end);
    return *this;
}

inline writer& writer::null() {
    before_value();
    out_ += "null";
    return *this;
}

inline writer& writer::json(const value& v) {
    switch (v.type()) {
    case kind::null:
        return null();
    case kind::boolean:
        return boolean(*v.if_bool());
    case kind::number:
        before_value();
        out_ += v.number_text();
        return *this;
    case kind::string:
        return string(*v.if_string());
    case kind::array:
        begin_array();
        for (const auto& item : *v.if_array())
            json(item);
        return end_array();
    case kind::object:
        begin_object();
        for (const auto& m : *v.if_object())
            key(m.key).json(m.value);
        return end_object();
    }
    return *this;
}

inline std::string serialize(const value& v) {
    std::string out;
    writer(out).json(v);
    return out;
}

} // namespace parley::chat::json

#endif
