// parley chat cluster: payload codec bodies.
#ifndef PARLEY_CHAT_CLUSTER_IMPL_CODEC_HPP
#define PARLEY_CHAT_CLUSTER_IMPL_CODEC_HPP

namespace parley::chat::cluster {

namespace detail {

template <class T>
struct layout;

using R = field_rule;

#define PARLEY_CLUSTER_LAYOUT(T, ...)                                                            \
    template <>                                                                                  \
    struct layout<T> {                                                                           \
        static constexpr auto fields = std::to_array<std::pair<std::string T::*, field_rule>>(  \
            {__VA_ARGS__});                                                                      \
    }

PARLEY_CLUSTER_LAYOUT(message_payload, {&message_payload::room, R::room},
                      {&message_payload::nick, R::nick}, {&message_payload::text, R::text},
                      {&message_payload::time, R::short_text});
PARLEY_CLUSTER_LAYOUT(stored_payload, {&stored_payload::room, R::room},
                      {&stored_payload::nick, R::nick}, {&stored_payload::text, R::text},
                      {&stored_payload::time, R::short_text});
PARLEY_CLUSTER_LAYOUT(numbered_payload, {&numbered_payload::room, R::room},
                      {&numbered_payload::nick, R::nick}, {&numbered_payload::text, R::text},
                      {&numbered_payload::time, R::short_text}, {&numbered_payload::seq, R::seq},
                      {&numbered_payload::epoch, R::epoch});
PARLEY_CLUSTER_LAYOUT(join_payload, {&join_payload::room, R::room}, {&join_payload::nick, R::nick},
                      {&join_payload::time, R::short_text});
PARLEY_CLUSTER_LAYOUT(leave_payload, {&leave_payload::room, R::room},
                      {&leave_payload::nick, R::nick}, {&leave_payload::reason, R::short_text},
                      {&leave_payload::time, R::short_text});
PARLEY_CLUSTER_LAYOUT(rename_payload, {&rename_payload::old_nick, R::nick},
                      {&rename_payload::new_nick, R::nick}, {&rename_payload::time, R::short_text});
PARLEY_CLUSTER_LAYOUT(private_payload, {&private_payload::from, R::nick},
                      {&private_payload::to, R::nick}, {&private_payload::text, R::text},
                      {&private_payload::time, R::short_text});
PARLEY_CLUSTER_LAYOUT(quit_payload, {&quit_payload::nick, R::nick});
PARLEY_CLUSTER_LAYOUT(taken_payload, {&taken_payload::instance, R::epoch},
                      {&taken_payload::serial, R::seq}, {&taken_payload::nick, R::nick});

#undef PARLEY_CLUSTER_LAYOUT

inline constexpr std::size_t max_fields = 7; // the kind and six fields at most

// Splits `text` at '\n' into `out`; the number of fields, or 0 when there
// are more than out.size().
inline std::size_t split(std::string_view text, std::array<std::string_view, max_fields>& out) noexcept {
    std::size_t n = 0, start = 0;
    for (;;) {
        if (n == out.size())
            return 0;
        const auto end = text.find('\n', start);
        out[n++] = text.substr(start, end == std::string_view::npos ? end : end - start);
        if (end == std::string_view::npos)
            return n;
        start = end + 1;
    }
}

template <class T>
std::optional<payload> decode_as(const std::array<std::string_view, max_fields>& f, std::size_t n) {
    constexpr auto& fields = layout<T>::fields;
    if (n != fields.size() + 1)
        return std::nullopt;
    T out;
    for (std::size_t i = 0; i < fields.size(); ++i) {
        if (!field_ok(fields[i].second, f[i + 1]))
            return std::nullopt;
        out.*(fields[i].first) = std::string(f[i + 1]);
    }
    return payload(std::move(out));
}

// The decoder of each kind, found by its letter.
template <class... T>
std::optional<payload> decode_kind(char kind, const std::array<std::string_view, max_fields>& f,
                                   std::size_t n, std::variant<T...>*) {
    std::optional<payload> out;
    ((kind == T::kind ? (void)(out = decode_as<T>(f, n)) : (void)0), ...);
    return out;
}

} // namespace detail

inline bool field_ok(field_rule rule, std::string_view field) {
    switch (rule) {
    case field_rule::nick:
        return !nickname_problem(field);
    case field_rule::room:
        return canonical_room(field) == field && !room_name_problem(field);
    case field_rule::text:
        return !message_text_problem(field, max_remote_text);
    case field_rule::short_text:
        return field.size() <= 64 && is_valid_utf8(field) &&
               field.find('\n') == std::string_view::npos;
    case field_rule::seq:
        return !field.empty() && field.size() <= 19 && field.front() != '0' &&
               std::all_of(field.begin(), field.end(),
                           [](char ch) { return ch >= '0' && ch <= '9'; }) &&
               (field.size() < 19 || field <= "9223372036854775807");
    case field_rule::epoch:
        return !field.empty() && field.size() <= 32 &&
               std::all_of(field.begin(), field.end(), [](char ch) {
                   return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || ch == '-';
               });
    }
    return false;
}

inline std::string encode(const payload& p) {
    return std::visit(
        [](const auto& v) {
            using T = std::decay_t<decltype(v)>;
            std::string out(1, T::kind);
            for (const auto& [member, rule] : detail::layout<T>::fields) {
                out += '\n';
                out += v.*member;
            }
            return out;
        },
        p);
}

inline std::optional<payload> decode(std::string_view text) {
    std::array<std::string_view, detail::max_fields> f{};
    const std::size_t n = detail::split(text, f);
    if (n == 0 || f[0].size() != 1)
        return std::nullopt;
    return detail::decode_kind(f[0][0], f, n, static_cast<payload*>(nullptr));
}

inline std::string encode_presence(std::string_view nick, const std::vector<std::string>& rooms) {
    std::string v(nick);
    for (const auto& room : rooms) {
        v += '\n';
        v += room;
    }
    return v;
}

inline std::optional<presence> decode_presence(std::string_view value) {
    presence p;
    std::size_t start = 0;
    for (bool first = true;; first = false) {
        const auto end = value.find('\n', start);
        const auto field = value.substr(start, end == std::string_view::npos ? end : end - start);
        if (!field_ok(first ? field_rule::nick : field_rule::room, field))
            return std::nullopt;
        (first ? p.nick : p.rooms.emplace_back()) = std::string(field);
        if (end == std::string_view::npos || p.rooms.size() > max_presence_rooms)
            break;
        start = end + 1;
    }
    return p;
}

} // namespace parley::chat::cluster

#endif
