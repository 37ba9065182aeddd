// parley chat: JSON value accessors (numbers, object lookup, equality).
#ifndef PARLEY_CHAT_IMPL_JSON_VALUE_HPP
#define PARLEY_CHAT_IMPL_JSON_VALUE_HPP

#include <charconv>
#include <system_error>

namespace parley::chat::json {

inline std::string_view value::number_text() const noexcept {
    const auto* n = std::get_if<number>(&v_);
    return n ? std::string_view(n->text) : std::string_view();
}

inline std::optional<double> value::to_double() const noexcept {
    const auto text = number_text();
    if (text.empty())
        return std::nullopt;
    double d = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), d);
    if (ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return d;
}

namespace detail {
template <class Int>
std::optional<Int> to_integer(std::string_view text) noexcept {
    if (text.empty() || text.find_first_of(".eE") != std::string_view::npos)
        return std::nullopt;
    Int n = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
    if (ec != std::errc() || end != text.data() + text.size())
        return std::nullopt;
    return n;
}
} // namespace detail

inline std::optional<std::int64_t> value::to_int64() const noexcept {
    return detail::to_integer<std::int64_t>(number_text());
}

inline std::optional<std::uint64_t> value::to_uint64() const noexcept {
    return detail::to_integer<std::uint64_t>(number_text());
}

inline const value* value::find(std::string_view key) const noexcept {
    const auto* members = if_object();
    if (!members)
        return nullptr;
    for (const auto& m : *members)
        if (m.key == key)
            return &m.value;
    return nullptr;
}

inline bool operator==(const value& a, const value& b) noexcept {
    return a.v_ == b.v_;
}

} // namespace parley::chat::json

#endif
