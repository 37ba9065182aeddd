// parley chat: protocol bodies.
#ifndef PARLEY_CHAT_IMPL_PROTOCOL_HPP
#define PARLEY_CHAT_IMPL_PROTOCOL_HPP

#include <parley/codec/utf8.hpp>

#include <cstdio>
#include <limits>
#include <type_traits>

namespace parley::chat {

inline std::string_view to_string(errc code) noexcept {
    switch (code) {
    case errc::nickname_invalid: return "nickname_invalid";
    case errc::nickname_taken: return "nickname_taken";
    case errc::nickname_required: return "nickname_required";
    case errc::nickname_timeout: return "nickname_timeout";
    case errc::invalid_utf8: return "invalid_utf8";
    case errc::invalid_text: return "invalid_text";
    case errc::empty_message: return "empty_message";
    case errc::message_too_long: return "message_too_long";
    case errc::line_too_long: return "line_too_long";
    case errc::frame_too_large: return "frame_too_large";
    case errc::unknown_command: return "unknown_command";
    case errc::bad_arguments: return "bad_arguments";
    case errc::room_invalid: return "room_invalid";
    case errc::not_in_room: return "not_in_room";
    case errc::no_such_room: return "no_such_room";
    case errc::no_such_nick: return "no_such_nick";
    case errc::too_many_rooms: return "too_many_rooms";
    case errc::server_full: return "server_full";
    case errc::access_required: return "access_required";
    case errc::access_denied: return "access_denied";
    case errc::too_many_connections: return "too_many_connections";
    case errc::idle_timeout: return "idle_timeout";
    case errc::rate_limited: return "rate_limited";
    case errc::flooding: return "flooding";
    case errc::resume_failed: return "resume_failed";
    }
    return "unknown";
}

inline std::string_view to_string(leave_reason reason) noexcept {
    switch (reason) {
    case leave_reason::part: return "part";
    case leave_reason::quit: return "quit";
    case leave_reason::disconnected: return "disconnected";
    case leave_reason::error: return "error";
    case leave_reason::slow_consumer: return "slow_consumer";
    case leave_reason::timeout: return "timeout";
    case leave_reason::flooding: return "flooding";
    }
    return "error";
}

inline std::string_view type_of(const event& e) noexcept {
    return std::visit(
        [](const auto& ev) -> std::string_view {
            if constexpr (std::is_same_v<std::decay_t<decltype(ev)>, unknown_event>)
                return ev.type;
            else
                return std::decay_t<decltype(ev)>::type;
        },
        e);
}

inline std::string format_time(std::chrono::system_clock::time_point t) {
    using namespace std::chrono;
    const auto ms = floor<milliseconds>(t);
    const auto day = floor<days>(ms);
    const year_month_day ymd{day};
    const hh_mm_ss hms{ms - day};
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02d:%02d:%02d.%03dZ", static_cast<int>(ymd.year()),
                  static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                  static_cast<int>(hms.hours().count()), static_cast<int>(hms.minutes().count()),
                  static_cast<int>(hms.seconds().count()),
                  static_cast<int>(hms.subseconds().count()));
    return buf;
}

// --- JSON ---------------------------------------------------------------------

namespace detail {
inline void write_message_fields(json::writer& w, const message_event& ev) {
    w.key("id").unsigned_integer(ev.id);
    w.key("room").string(ev.room);
    w.key("from").string(ev.from);
    w.key("text").string(ev.text);
    w.key("time").string(ev.time);
    if (ev.seq != 0) {
        w.key("seq").unsigned_integer(ev.seq);
        w.key("epoch").string(ev.epoch);
    }
}
} // namespace detail

inline std::string to_json(const event& e) {
    std::string out;
    json::writer w(out);
    w.begin_object().key("type").string(type_of(e));
    std::visit(
        [&w](const auto& ev) {
            using T = std::decay_t<decltype(ev)>;
            if constexpr (std::is_same_v<T, welcome_event>) {
                w.key("prompt").string(ev.prompt);
                w.key("protocol").integer(ev.protocol);
                w.key("server").string(ev.server);
                w.key("max_frame_bytes").unsigned_integer(ev.max_frame_bytes);
                w.key("max_message_bytes").unsigned_integer(ev.max_message_bytes);
                w.key("max_nickname_length").unsigned_integer(ev.max_nickname_length);
            } else if constexpr (std::is_same_v<T, nick_accepted_event>) {
                w.key("nick").string(ev.nick);
                if (!ev.resume_token.empty())
                    w.key("resume_token").string(ev.resume_token);
            } else if constexpr (std::is_same_v<T, message_event>) {
                detail::write_message_fields(w, ev);
            } else if constexpr (std::is_same_v<T, private_event>) {
                w.key("id").unsigned_integer(ev.id);
                w.key("from").string(ev.from);
                w.key("to").string(ev.to);
                w.key("text").string(ev.text);
                w.key("time").string(ev.time);
            } else if constexpr (std::is_same_v<T, join_event>) {
                w.key("room").string(ev.room);
                w.key("nick").string(ev.nick);
                w.key("time").string(ev.time);
            } else if constexpr (std::is_same_v<T, leave_event>) {
                w.key("room").string(ev.room);
                w.key("nick").string(ev.nick);
                w.key("reason").string(ev.reason);
                w.key("time").string(ev.time);
            } else if constexpr (std::is_same_v<T, rename_event>) {
                w.key("old").string(ev.old_nick);
                w.key("new").string(ev.new_nick);
                w.key("time").string(ev.time);
            } else if constexpr (std::is_same_v<T, members_event>) {
                w.key("room").string(ev.room);
                w.key("members").begin_array();
                for (const auto& m : ev.members)
                    w.string(m);
                w.end_array();
                w.key("count").unsigned_integer(ev.count);
                if (!ev.epoch.empty()) {
                    w.key("seq").unsigned_integer(ev.seq);
                    w.key("epoch").string(ev.epoch);
                }
            } else if constexpr (std::is_same_v<T, resumed_event>) {
                w.key("nick").string(ev.nick);
                w.key("recovered").boolean(ev.recovered);
                w.key("rooms").begin_array();
                for (const auto& r : ev.rooms) {
                    w.begin_object();
                    w.key("room").string(r.room);
                    w.key("epoch").string(r.epoch);
                    w.key("from").unsigned_integer(r.from);
                    w.key("seq").unsigned_integer(r.seq);
                    w.key("recovered").boolean(r.recovered);
                    w.end_object();
                }
                w.end_array();
            } else if constexpr (std::is_same_v<T, history_event>) {
                w.key("room").string(ev.room);
                w.key("epoch").string(ev.epoch);
                w.key("messages").begin_array();
                for (const auto& m : ev.messages) {
                    w.begin_object();
                    w.key("type").string(message_event::type);
                    detail::write_message_fields(w, m);
                    w.end_object();
                }
                w.end_array();
                w.key("more").boolean(ev.more);
            } else if constexpr (std::is_same_v<T, error_event>) {
                w.key("code").string(ev.code);
                w.key("message").string(ev.message);
            } else if constexpr (std::is_same_v<T, notice_event>) {
                w.key("code").string(ev.code);
                w.key("text").string(ev.text);
            }
        },
        e);
    w.end_object();
    return out;
}

namespace detail {

// Reads the fields of one event object, remembering the first problem.
class field_reader {
public:
    field_reader(const json::value& object, std::string_view type, std::string& error)
        : object_(object), type_(type), error_(error) {}

    bool ok() const noexcept { return ok_; }

    void text(std::string_view key, std::string& out, bool required = true) {
        const json::value* v = object_.find(key);
        if (!v) {
            if (required)
                fail(key, "is missing");
            return;
        }
        if (const auto* s = v->if_string())
            out = *s;
        else
            fail(key, "must be a string");
    }

    template <class Unsigned>
    void number(std::string_view key, Unsigned& out, bool required = true) {
        const json::value* v = object_.find(key);
        if (!v) {
            if (required)
                fail(key, "is missing");
            return;
        }
        const auto n = v->to_uint64();
        if (!n || *n > static_cast<std::uint64_t>(std::numeric_limits<Unsigned>::max()))
            fail(key, "must be a non-negative integer");
        else
            out = static_cast<Unsigned>(*n);
    }

    void boolean(std::string_view key, bool& out, bool required = true) {
        const json::value* v = object_.find(key);
        if (!v) {
            if (required)
                fail(key, "is missing");
            return;
        }
        if (const auto* b = v->if_bool())
            out = *b;
        else
            fail(key, "must be true or false");
    }

    // Each element of the array `key`, an object, read by `each(reader)`.
    template <class Each>
    void objects(std::string_view key, Each each) {
        const json::value* v = object_.find(key);
        const auto* items = v ? v->if_array() : nullptr;
        if (!items)
            return fail(key, v ? "must be an array of objects" : "is missing");
        for (const auto& item : *items) {
            if (!item.if_object())
                return fail(key, "must be an array of objects");
            field_reader inner(item, type_, error_);
            each(inner);
            if (!inner.ok())
                return void(ok_ = false);
        }
    }

    void message(message_event& e) {
        number("id", e.id);
        text("room", e.room);
        text("from", e.from);
        text("text", e.text);
        text("time", e.time);
        number("seq", e.seq, false);
        text("epoch", e.epoch, false);
    }

    void texts(std::string_view key, std::vector<std::string>& out) {
        const json::value* v = object_.find(key);
        const auto* items = v ? v->if_array() : nullptr;
        if (!items)
            return fail(key, v ? "must be an array of strings" : "is missing");
        out.clear();
        out.reserve(items->size());
        for (const auto& item : *items) {
            const auto* s = item.if_string();
            if (!s)
                return fail(key, "must be an array of strings");
            out.push_back(*s);
        }
    }

private:
    void fail(std::string_view key, std::string_view problem) {
        if (!ok_)
            return;
        ok_ = false;
        error_ = std::string(type_) + " event: field \"" + std::string(key) + "\" " +
                 std::string(problem);
    }

    const json::value& object_;
    std::string_view type_;
    std::string& error_;
    bool ok_ = true;
};

} // namespace detail

inline std::optional<event> parse_event(std::string_view payload, std::string& error) {
    error.clear();
    json::parse_error perr;
    // Events nest two levels (members is an array in an object); a little
    // room for fields added later.
    const auto doc = json::parse(payload, perr, {.max_bytes = max_event_bytes, .max_depth = 8});
    if (!doc) {
        error = "invalid JSON: " + perr.message;
        return std::nullopt;
    }
    if (!doc->if_object()) {
        error = "an event must be a JSON object";
        return std::nullopt;
    }
    const json::value* type_field = doc->find("type");
    const std::string* type = type_field ? type_field->if_string() : nullptr;
    if (!type) {
        error = type_field ? "field \"type\" must be a string" : "field \"type\" is missing";
        return std::nullopt;
    }
    detail::field_reader r(*doc, *type, error);
    event result;
    if (*type == welcome_event::type) {
        welcome_event e;
        r.text("prompt", e.prompt);
        r.number("protocol", e.protocol, false);
        r.text("server", e.server, false);
        r.number("max_frame_bytes", e.max_frame_bytes, false);
        r.number("max_message_bytes", e.max_message_bytes, false);
        r.number("max_nickname_length", e.max_nickname_length, false);
        result = std::move(e);
    } else if (*type == nick_accepted_event::type) {
        nick_accepted_event e;
        r.text("nick", e.nick);
        r.text("resume_token", e.resume_token, false);
        result = std::move(e);
    } else if (*type == message_event::type) {
        message_event e;
        r.message(e);
        result = std::move(e);
    } else if (*type == private_event::type) {
        private_event e;
        r.number("id", e.id);
        r.text("from", e.from);
        r.text("to", e.to);
        r.text("text", e.text);
        r.text("time", e.time);
        result = std::move(e);
    } else if (*type == join_event::type) {
        join_event e;
        r.text("room", e.room);
        r.text("nick", e.nick);
        r.text("time", e.time, false);
        result = std::move(e);
    } else if (*type == leave_event::type) {
        leave_event e;
        r.text("room", e.room);
        r.text("nick", e.nick);
        r.text("reason", e.reason);
        r.text("time", e.time, false);
        result = std::move(e);
    } else if (*type == rename_event::type) {
        rename_event e;
        r.text("old", e.old_nick);
        r.text("new", e.new_nick);
        r.text("time", e.time, false);
        result = std::move(e);
    } else if (*type == members_event::type) {
        members_event e;
        r.text("room", e.room);
        r.texts("members", e.members);
        e.count = e.members.size();
        r.number("count", e.count, false);
        r.number("seq", e.seq, false);
        r.text("epoch", e.epoch, false);
        result = std::move(e);
    } else if (*type == resumed_event::type) {
        resumed_event e;
        r.text("nick", e.nick);
        r.boolean("recovered", e.recovered);
        r.objects("rooms", [&](detail::field_reader& o) {
            resumed_room room;
            o.text("room", room.room);
            o.text("epoch", room.epoch, false);
            o.number("from", room.from, false);
            o.number("seq", room.seq, false);
            o.boolean("recovered", room.recovered);
            e.rooms.push_back(std::move(room));
        });
        result = std::move(e);
    } else if (*type == history_event::type) {
        history_event e;
        r.text("room", e.room);
        r.text("epoch", e.epoch, false);
        r.objects("messages", [&](detail::field_reader& o) {
            message_event m;
            o.message(m);
            e.messages.push_back(std::move(m));
        });
        r.boolean("more", e.more, false);
        result = std::move(e);
    } else if (*type == error_event::type) {
        error_event e;
        r.text("code", e.code);
        r.text("message", e.message);
        result = std::move(e);
    } else if (*type == notice_event::type) {
        notice_event e;
        r.text("code", e.code);
        r.text("text", e.text);
        result = std::move(e);
    } else if (*type == ping_event::type) {
        result = ping_event{};
    } else {
        result = unknown_event{*type};
    }
    if (!r.ok())
        return std::nullopt;
    return result;
}

} // namespace parley::chat

#endif
