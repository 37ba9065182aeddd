// parley chat core: commands, rooms and room history.
#ifndef PARLEY_CHAT_CORE_IMPL_COMMANDS_HPP
#define PARLEY_CHAT_CORE_IMPL_COMMANDS_HPP

#include <algorithm>

namespace parley::chat::core {

namespace detail {
// parse_input(), held to §2.2's "a missing or extra argument gives
// bad_arguments": it reads "/nick x y" as the nickname "x y" and ignores
// /help's arguments.
inline parley::chat::input parse_strict(std::string_view text) {
    parley::chat::input in = parse_input(text);
    if (auto* n = std::get_if<nick_input>(&in);
        n && n->nick.find_first_of(" \t") != std::string_view::npos)
        return bad_input{errc::bad_arguments, "usage: /nick NEW (nicknames have no spaces)"};
    if (std::holds_alternative<help_input>(in) &&
        !parley::chat::detail::trim(parley::chat::detail::split_word(text.substr(1)).second).empty())
        return bad_input{errc::bad_arguments, "usage: /help (it takes no arguments)"};
    return in;
}
// What a kept message counts against the history's byte bounds.
inline std::size_t history_size(const message_event& m) {
    return m.text.size() + m.from.size() + m.room.size() + m.time.size() + 64;
}
} // namespace detail

inline void chat::dispatch(client& c, std::string_view text, const moment& now, actions& out) {
    const parley::chat::input in = detail::parse_strict(text);
    if (auto* s = std::get_if<say_input>(&in))
        return say(c, s->text, now, out);
    if (auto* n = std::get_if<nick_input>(&in))
        return change_nick(c, n->nick, now, out);
    if (auto* j = std::get_if<join_input>(&in)) {
        const std::string room = canonical_room(j->room);
        if (auto problem = room_name_problem(room))
            return refuse(c, errc::room_invalid, *problem, out);
        return join_room(c, room, now, out);
    }
    if (auto* p = std::get_if<part_input>(&in))
        return part(c, p->room, now, out);
    if (auto* l = std::get_if<list_input>(&in))
        return list(c, l->room, out);
    if (auto* m = std::get_if<msg_input>(&in))
        return whisper(c, m->nick, m->text, now, out);
    if (std::holds_alternative<help_input>(in))
        return send(c, notice_event{"help", help_text()}, out);
    if (auto* h = std::get_if<history_input>(&in))
        return history_page(c, *h, out);
    if (std::holds_alternative<resume_input>(in))
        return refuse(c, errc::bad_arguments,
                      "/resume works only as the first input of a new connection; you are " +
                          c.nick + " already",
                      out);
    if (std::holds_alternative<quit_input>(in))
        return goodbye(c, now, out);
    if (auto* bad = std::get_if<bad_input>(&in))
        return refuse(c, bad->code, bad->message, out);
    // pong_input: a sign of life, nothing more
}

inline void chat::say(client& c, std::string_view text, const moment& now, actions& out) {
    if (auto problem = message_text_problem(text, limits_.max_message_bytes))
        return refuse(c, problem->first, problem->second, out);
    if (c.current.empty())
        return refuse(c, errc::not_in_room, "you are in no room; /join ROOM first", out);
    message_event ev{++next_id_, c.current, c.nick, std::string(text), time_text(now), 0, {}};
    if (limits_.clustered) {
        if (limits_.shared_history != 0)
            out.push_back(cluster_store{
                ev.room, cluster::encode(cluster::stored_payload{ev.room, ev.from, ev.text, ev.time})});
        else
            cluster_send(cluster::encode(cluster::message_payload{ev.room, ev.from, ev.text, ev.time}),
                         out);
    }
    if (limits_.numbered)
        return; // delivered when it comes back numbered (cluster_message)
    const std::string room = ev.room;
    publish(room, std::move(ev), true, false, now, out);
}

inline void chat::change_nick(client& c, std::string_view nick, const moment& now, actions& out) {
    if (auto problem = nickname_problem(nick))
        return refuse(c, errc::nickname_invalid, *problem, out);
    if (nick == c.nick)
        return send(c, notice_event{"info", "you are already known as " + c.nick}, out);
    std::string key = nickname_key(nick);
    if (key != c.key && nick_in_use(key))
        return refuse(c, errc::nickname_taken, "the nickname \"" + std::string(nick) + "\" is taken",
                      out);
    if (limits_.clustered && key != c.key)
        return claim(c, std::string(nick), std::move(key), out);
    rename(c, std::string(nick), std::move(key), now, out);
}

inline void chat::rename(client& c, std::string nick, std::string key, const moment& now,
                         actions& out) {
    forget_nick(c);
    if (limits_.clustered && key != c.key)
        out.push_back(cluster_release{c.key});
    rename_event ev{c.nick, std::move(nick), time_text(now)};
    c.nick = ev.new_nick;
    c.key = std::move(key);
    nicks_[c.key] = c.id;
    log("nick: " + ev.old_nick + " (" + c.peer + ") is now known as " + ev.new_nick, out);
    // Once to each client sharing a room with the renamer, and to it.
    std::unordered_set<conn_id> told{c.id};
    auto to = std::make_shared<std::vector<conn_id>>(1, c.id);
    for (const auto& room : c.rooms) {
        if (auto it = rooms_.find(room); it != rooms_.end())
            for (conn_id m : *it->second.members)
                if (told.insert(m).second)
                    to->push_back(m);
        hold_for_waiting(room, ev, false, &told, now, out);
    }
    if (limits_.clustered)
        cluster_send(cluster::encode(cluster::rename_payload{ev.old_nick, ev.new_nick, ev.time}), out);
    cluster_presence_of(c, out);
    out.push_back(publish_action{std::move(to), std::move(ev)});
}

inline void chat::join_room(client& c, const std::string& room, const moment& now, actions& out) {
    if (std::find(c.rooms.begin(), c.rooms.end(), room) != c.rooms.end()) {
        c.current = room; // already in: just switch to it
        return send(c, members_of(room), out);
    }
    if (c.rooms.size() >= limits_.max_rooms_per_client)
        return refuse(c, errc::too_many_rooms,
                      "you are in " + std::to_string(c.rooms.size()) +
                          " rooms already, the most allowed; /part one first",
                      out);
    if (limits_.shared_history == 0) {
        add_member(c, room);
        for (const auto* m : replay_of(rooms_[room])) // the room's history first
            send(c, *m, out);
    }
    c.rooms.push_back(room);
    c.current = room;
    join_event ev{room, c.nick, time_text(now)};
    cluster_presence_of(c, out); // before the event: a snapshot in between sees the room
    if (limits_.clustered)
        cluster_send(cluster::encode(cluster::join_payload{ev.room, ev.nick, ev.time}), out);
    if (limits_.shared_history != 0) {
        publish(room, ev, false, false, now, out);
        await_history(c, room, std::move(ev), out); // the rest once the history is read
    } else {
        publish(room, std::move(ev), false, false, now, out);
        send(c, members_of(room), out);
    }
    log("join: " + who(c) + " joined " + room + (c.interactive ? " (line mode)" : ""), out);
}

inline void chat::part(client& c, std::string_view name, const moment& now, actions& out) {
    const std::string room = name.empty() ? c.current : canonical_room(name);
    if (room.empty())
        return refuse(c, errc::not_in_room, "you are in no room", out);
    auto it = std::find(c.rooms.begin(), c.rooms.end(), room);
    if (it == c.rooms.end())
        return refuse(c, errc::not_in_room, "you are not in " + printable(room), out);
    // Published before leaving, so the parting client gets it too.
    leave_event ev{room, c.nick, std::string(to_string(leave_reason::part)), time_text(now)};
    const std::string payload =
        cluster::encode(cluster::leave_payload{ev.room, ev.nick, ev.reason, ev.time});
    publish(room, std::move(ev), false, false, now, out);
    remove_member(c, room);
    c.rooms.erase(it);
    cluster_presence_of(c, out);
    if (limits_.clustered)
        cluster_send(payload, out);
    if (c.current == room)
        c.current = c.rooms.empty() ? std::string() : c.rooms.back();
    log("leave: " + who(c) + " left " + room + " (part)", out);
}

inline void chat::list(client& c, std::string_view name, actions& out) {
    const std::string room = name.empty() ? c.current : canonical_room(name);
    if (room.empty())
        return refuse(c, errc::not_in_room, "you are in no room; say /list ROOM", out);
    if (rooms_.contains(room) || remote_in(room) || waits_.contains(room))
        return send(c, members_of(room), out);
    refuse(c, errc::no_such_room, "there is no room " + printable(room), out);
}

inline void chat::whisper(client& c, std::string_view nick, std::string_view text,
                          const moment& now, actions& out) {
    if (auto problem = message_text_problem(text, limits_.max_message_bytes))
        return refuse(c, problem->first, problem->second, out);
    auto target = nicks_.find(nickname_key(nick));
    if (target == nicks_.end() && remote_whisper(c, nick, text, now, out))
        return;
    client* to = target == nicks_.end() ? nullptr : find(target->second);
    if (!to)
        return refuse(c, errc::no_such_nick, "nobody is called " + printable(nick), out);
    private_event ev{++next_id_, c.nick, to->nick, std::string(text), time_text(now)};
    if (to != &c)
        send(c, ev, out);
    send_or_hold(*to, std::move(ev), now, out);
}

// Announces that `c` left every room it was in, once.
inline void chat::leave_chat(client& c, leave_reason reason, const std::string& cause,
                             const moment& now, actions& out) {
    if (c.gone)
        return;
    settle_resume(c);
    c.gone = true;
    cancel_wait(c);
    const std::string time = time_text(now);
    cluster_leave(c, reason, time, out);
    std::string rooms;
    for (const auto& room : c.rooms) {
        remove_member(c, room);
        publish(room, leave_event{room, c.nick, std::string(to_string(reason)), time}, false, false,
                now, out);
        rooms += (rooms.empty() ? "" : ", ") + room;
    }
    if (rooms.empty())
        rooms = "no room";
    if (reason == leave_reason::slow_consumer && cause == "write_timeout") {
        log("slow consumer: " + who(c) + " disconnected, its socket accepted nothing for " +
                std::to_string(limits_.write_timeout.count()) + " ms; left " + rooms,
            out);
    } else if (reason == leave_reason::slow_consumer) {
        log("slow consumer: " + who(c) + " disconnected, its outbound queue reached " +
                std::to_string(limits_.queue_bytes) + " bytes or " +
                std::to_string(limits_.queue_messages) +
                " messages (or the server-wide outbound budget ran out); left " + rooms,
            out);
    } else {
        std::string line =
            "leave: " + who(c) + " left " + rooms + " (" + std::string(to_string(reason));
        if (reason == leave_reason::error && !cause.empty())
            line += ": " + cause;
        if (c.dropped != 0)
            line += "; " + std::to_string(c.dropped) + " messages to it were dropped";
        log(line + ")", out);
    }
    c.rooms.clear();
    c.current.clear();
    forget_nick(c);
    drop_ticket(c);
}

// The one record of room membership. A list shared with a pending
// publish is copied before it changes (copy on write).
inline void chat::add_member(client& c, const std::string& name) {
    room& r = rooms_[name];
    if (r.epoch.empty() && !limits_.numbered)
        start_history(name, r); // impl/storage.hpp (numbered: the backplane's epoch, when known)
    if (r.members.use_count() > 1)
        r.members = std::make_shared<std::vector<conn_id>>(*r.members);
    r.members->push_back(c.id);
}

inline void chat::remove_member(client& c, const std::string& name) {
    auto it = rooms_.find(name);
    if (it == rooms_.end())
        return;
    room& r = it->second;
    auto pos = std::find(r.members->begin(), r.members->end(), c.id);
    if (pos == r.members->end())
        return;
    if (r.members.use_count() > 1) {
        r.members = std::make_shared<std::vector<conn_id>>(*r.members);
        pos = std::find(r.members->begin(), r.members->end(), c.id);
    }
    r.members->erase(pos);
    if (r.members->empty() && r.parked == 0)
        retire(it); // and its history and epoch, unless a store keeps them
}

inline member_list chat::members(const std::string& name) const {
    auto it = rooms_.find(name);
    return it == rooms_.end() ? std::make_shared<const std::vector<conn_id>>() : it->second.members;
}

inline std::size_t chat::member_count() const noexcept {
    std::size_t n = 0;
    for (const auto& [id, c] : clients_)
        n += c.rooms.empty() || c.wait() ? 0 : 1;
    return n;
}

inline members_event chat::members_of(const std::string& name) const {
    members_event e;
    e.room = name;
    const auto add = [&](const std::string& nick) {
        ++e.count;
        if (e.members.size() < max_listed_members)
            e.members.push_back(nick);
    };
    if (auto it = rooms_.find(name); it != rooms_.end()) {
        for (conn_id id : *it->second.members)
            if (auto c = clients_.find(id);
                c != clients_.end() && !c->second.nick.empty() && !c->second.gone)
                add(c->second.nick);
        e.seq = it->second.seq;
        e.epoch = it->second.epoch;
    }
    if (auto it = rooms_.find(name); it != rooms_.end() && it->second.parked != 0)
        for (const auto& [serial, t] : tickets_) // no leave announced: still members
            if (t.parked && std::find(t.parked->rooms.begin(), t.parked->rooms.end(), name) !=
                                t.parked->rooms.end())
                add(t.parked->nick);
    if (auto w = waits_.find(name); w != waits_.end())
        for (const auto& wait : w->second)
            if (auto c = clients_.find(wait->id); c != clients_.end() && !c->second.gone)
                add(c->second.nick);
    add_remote_members(e);
    return e;
}

// `covered_by_read`: an event from another instance that a joiner's
// history read accounts for if it arrives before the read's answer.
inline void chat::publish(const std::string& name, event ev, bool keep_in_history,
                          bool covered_by_read, const moment& now, actions& out) {
    // Delivered to the members first: a joiner whose wait ends while its
    // event is held becomes a member after this list was taken.
    const bool waiting = waits_.contains(name);
    if (auto it = rooms_.find(name); it != rooms_.end()) {
        if (keep_in_history)
            if (auto* m = std::get_if<message_event>(&ev)) {
                if (m->seq != 0) { // numbered by the backplane
                    if (!place(it->second, *m))
                        return;
                } else {
                    m->seq = ++it->second.seq; // only messages count
                    m->epoch = it->second.epoch;
                }
                remember(it->second, *m);
                store_message(*m, now, out);
            }
        if (!waiting)
            return out.push_back(publish_action{it->second.members, std::move(ev)});
        out.push_back(publish_action{it->second.members, ev});
    }
    if (waiting)
        hold_for_waiting(name, ev, covered_by_read, nullptr, now, out);
}

// Bounded by the larger of history_messages and resume_messages, and of
// history_bytes and resume_bytes, counted as the text and names a message
// holds (the join replay takes its own bounds' worth: replay_of()).
inline void chat::remember(room& r, const message_event& ev) {
    const std::size_t max_messages = std::max(limits_.history_messages, limits_.resume_messages);
    const std::size_t max_bytes = std::max(limits_.history_bytes, limits_.resume_bytes);
    if (max_messages == 0 || max_bytes == 0)
        return;
    const auto size = [](const message_event& m) { return detail::history_size(m); };
    if (size(ev) > max_bytes)
        return;
    r.history.push_back(ev);
    r.history_bytes += size(ev);
    while (r.history.size() > max_messages || r.history_bytes > max_bytes) {
        r.history_bytes -= size(r.history.front());
        r.history.pop_front();
    }
}

inline std::string chat::printable(std::string_view text) {
    std::string out;
    parley::chat::detail::append_printable(out, text.substr(0, 128));
    return out;
}

inline std::string chat::time_text(const moment& now) { return format_time(now.wall); }

} // namespace parley::chat::core

#endif
