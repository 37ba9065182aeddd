// parley chat core: the other instances (docs/SCALING.md) and shared room
// history.
//
// With a backplane that keeps history, a room message is stored once, by
// the sender's instance, with its publication (cluster_store). A join asks
// for the room's history (cluster_read_history); until the answer
// (history_read()), the joiner is not a member of the room, and what is
// said to it (room events, private messages) is held in its wait, its
// inputs too. The answer splits the events exactly, with no id to compare:
//  - a local event after the join is not in the history (its write was
//    queued after the read, on the same ordered connection): held, then
//    delivered after the history;
//  - an event from another instance that arrives before the answer was
//    published before the read (the answer travels in the backplane's
//    order): a stored message is in the history, a join or leave is in the
//    member list sent with it, so they are dropped; one arriving after the
//    answer is live, as for any member.
// If the read fails (link down, timeout, too much held), the joiner gets no
// history and everything held, so nothing live is lost. The history's
// messages take ids reserved at the join, below every id the joiner
// receives after.
//
// With options::numbered, the backplane numbers each stored message (N
// payloads: the room's seq and epoch, the same on every instance) and
// sends it back to its own instance too: every instance, the sender's
// included, delivers a room's messages in the backplane's order, so all
// see the same seq. A message that could not be stored (store_failed())
// is delivered here only, under a new local epoch: the members can tell
// that the shared sequence has a hole for them.
#ifndef PARLEY_CHAT_CORE_IMPL_CLUSTER_HPP
#define PARLEY_CHAT_CORE_IMPL_CLUSTER_HPP

#include <parley/chat/cluster/codec.hpp>

#include <algorithm>

namespace parley::chat::core {

namespace detail {
// What an event costs a joiner's hold, roughly its encoded size.
inline std::size_t held_size(const event& e) {
    if (auto* m = std::get_if<message_event>(&e))
        return m->text.size() + m->from.size() + m->room.size() + 96;
    if (auto* p = std::get_if<private_event>(&e))
        return p->text.size() + p->from.size() + p->to.size() + 96;
    return 96;
}
} // namespace detail

inline void chat::cluster_send(const std::string& payload, actions& out) const {
    if (limits_.clustered)
        out.push_back(cluster_publish{payload});
}

inline void chat::cluster_presence_of(const client& c, actions& out) const {
    if (limits_.clustered && !c.nick.empty())
        out.push_back(cluster_presence{c.key, cluster::encode_presence(c.nick, c.rooms)});
}

// `c` leaves the whole chat: tell the other instances, free its name.
inline void chat::cluster_leave(const client& c, leave_reason reason, const std::string& time,
                                actions& out) {
    if (!limits_.clustered)
        return;
    // Q first: whoever sees the leave finds the nickname free already.
    cluster_send(cluster::encode(cluster::quit_payload{c.nick}), out);
    for (const auto& room : c.rooms)
        cluster_send(cluster::encode(cluster::leave_payload{
                         room, c.nick, std::string(to_string(reason)), time}),
                     out);
    out.push_back(cluster_release{c.key});
}

inline bool chat::remote_whisper(client& c, std::string_view nick, std::string_view text,
                                 const moment& now, actions& out) {
    if (!limits_.clustered)
        return false;
    auto it = remote_.find(nickname_key(nick));
    if (it == remote_.end())
        return false;
    private_event ev{++next_id_, c.nick, it->second.nick, std::string(text), time_text(now)};
    cluster_send(cluster::encode(cluster::private_payload{ev.from, ev.to, ev.text, ev.time}), out);
    send(c, std::move(ev), out);
    return true;
}

inline bool chat::remote_in(const std::string& room) const {
    for (const auto& [key, m] : remote_)
        if (std::find(m.rooms.begin(), m.rooms.end(), room) != m.rooms.end())
            return true;
    return false;
}

inline void chat::add_remote_members(members_event& e) const {
    for (const auto& [key, m] : remote_) {
        if (std::find(m.rooms.begin(), m.rooms.end(), e.room) == m.rooms.end())
            continue;
        ++e.count;
        if (e.members.size() < max_listed_members)
            e.members.push_back(m.nick);
    }
}

inline void chat::note_malformed(actions& out) {
    if (malformed_logged_)
        return;
    malformed_logged_ = true;
    log("cluster: ignored a payload from another instance that is not a valid chat event "
        "(said once; see the backplane's malformed counter)",
        out);
}

inline void chat::cluster_message(std::string_view instance, std::string_view text,
                                  const moment& now, actions& out) {
    auto decoded = cluster::decode(text);
    if (!decoded)
        return note_malformed(out);
    if (stopping_)
        return;
    std::visit(
        [&](auto& p) {
            using T = std::decay_t<decltype(p)>;
            if constexpr (std::is_same_v<T, cluster::message_payload> ||
                          std::is_same_v<T, cluster::stored_payload>) {
                // stored: also in the room's shared history.
                const std::string room = p.room;
                publish(room,
                        message_event{++next_id_, std::move(p.room), std::move(p.nick),
                                      std::move(p.text), std::move(p.time), 0, {}},
                        true, std::is_same_v<T, cluster::stored_payload>, now, out);
            } else if constexpr (std::is_same_v<T, cluster::numbered_payload>) {
                const auto seq = parley::chat::detail::decimal(p.seq);
                if (!seq)
                    return note_malformed(out);
                const std::string room = p.room;
                publish(room,
                        message_event{++next_id_, std::move(p.room), std::move(p.nick),
                                      std::move(p.text), std::move(p.time), *seq,
                                      std::move(p.epoch)},
                        true, true, now, out);
            } else if constexpr (std::is_same_v<T, cluster::join_payload>) {
                auto& m = remote_[nickname_key(p.nick)];
                m.instance = std::string(instance);
                m.nick = p.nick;
                if (std::find(m.rooms.begin(), m.rooms.end(), p.room) == m.rooms.end())
                    m.rooms.push_back(p.room);
                const std::string room = p.room;
                publish(room, join_event{std::move(p.room), std::move(p.nick), std::move(p.time)},
                        false, true, now, out);
            } else if constexpr (std::is_same_v<T, cluster::leave_payload>) {
                if (nicks_.contains(nickname_key(p.nick)))
                    return; // ours, announced by an instance that took us for dead
                if (auto it = remote_.find(nickname_key(p.nick)); it != remote_.end())
                    std::erase(it->second.rooms, p.room);
                const std::string room = p.room;
                publish(room, leave_event{std::move(p.room), std::move(p.nick), std::move(p.reason),
                                          std::move(p.time)},
                        false, true, now, out);
            } else if constexpr (std::is_same_v<T, cluster::rename_payload>) {
                remote_member m;
                if (auto it = remote_.find(nickname_key(p.old_nick)); it != remote_.end()) {
                    m = std::move(it->second);
                    remote_.erase(it);
                }
                m.instance = std::string(instance);
                m.nick = p.new_nick;
                // Once to each local member sharing a room with the renamer.
                rename_event ev{p.old_nick, m.nick, p.time};
                std::unordered_set<conn_id> told;
                auto to = std::make_shared<std::vector<conn_id>>();
                for (const auto& room : m.rooms) {
                    if (auto it = rooms_.find(room); it != rooms_.end())
                        for (conn_id id : *it->second.members)
                            if (told.insert(id).second)
                                to->push_back(id);
                    hold_for_waiting(room, ev, false, &told, now, out);
                }
                if (!to->empty())
                    out.push_back(publish_action{std::move(to), std::move(ev)});
                remote_[nickname_key(m.nick)] = std::move(m);
            } else if constexpr (std::is_same_v<T, cluster::private_payload>) {
                if (auto it = nicks_.find(nickname_key(p.to)); it != nicks_.end())
                    if (client* to = find(it->second))
                        send_or_hold(*to,
                                     private_event{++next_id_, std::move(p.from), to->nick,
                                                   std::move(p.text), std::move(p.time)},
                                     now, out);
            } else if constexpr (std::is_same_v<T, cluster::taken_payload>) {
                const auto serial = parley::chat::detail::decimal(p.serial);
                if (!serial)
                    return note_malformed(out);
                if (p.instance == limits_.instance && !limits_.instance.empty())
                    drop_taken(instance, *serial, p.nick, out);
                else if (auto it = remote_.find(nickname_key(p.nick)); it != remote_.end())
                    it->second.instance = std::string(instance); // moved there
            } else {
                static_assert(std::is_same_v<T, cluster::quit_payload>);
                if (!nicks_.contains(nickname_key(p.nick)))
                    remote_.erase(nickname_key(p.nick));
            }
        },
        *decoded);
}

inline void chat::cluster_snapshot(
    const std::vector<std::pair<std::string, std::vector<std::string>>>& all, actions& out) {
    remote_.clear();
    std::size_t members = 0;
    for (const auto& [instance, values] : all)
        for (const auto& v : values)
            if (auto p = cluster::decode_presence(v)) {
                ++members;
                const std::string key = nickname_key(p->nick);
                remote_[key] = remote_member{instance, std::move(p->nick), std::move(p->rooms)};
            }
    log("cluster: " + std::to_string(all.size()) + " other instance(s) with " +
            std::to_string(members) + " member(s)",
        out);
}

// Another instance died: announce its members' leaves, here and (for the
// others) through the backplane.
inline void chat::instance_lost(std::string_view instance, const std::vector<std::string>& values,
                                const moment& now, actions& out) {
    if (stopping_)
        return;
    const std::string time = time_text(now);
    const std::string reason(to_string(leave_reason::disconnected));
    for (const auto& v : values) {
        auto m = cluster::decode_presence(v);
        if (!m)
            continue;
        cluster_send(cluster::encode(cluster::quit_payload{m->nick}), out); // first, as in cluster_leave()
        for (const auto& room : m->rooms) {
            publish(room, leave_event{room, m->nick, reason, time}, false, false, now, out);
            cluster_send(cluster::encode(cluster::leave_payload{room, m->nick, reason, time}), out);
        }
        remote_.erase(nickname_key(m->nick));
        log("leave: " + m->nick + " (on lost instance " + std::string(instance) + ") left " +
                std::to_string(m->rooms.size()) + " room(s) (disconnected)",
            out);
    }
    std::erase_if(remote_, [&](const auto& entry) { return entry.second.instance == instance; });
}

inline void chat::nick_conflict(const std::vector<std::string>& keys, actions& out) {
    for (const auto& key : keys) {
        auto it = nicks_.find(key);
        client* c = it == nicks_.end() ? nullptr : find(it->second);
        if (!c)
            continue;
        log("nick: " + who(*c) + " is also in use on another server (both claimed it while "
                                  "the backplane was down)",
            out);
        send(*c,
             notice_event{"info", "your nickname " + c->nick +
                                      " was also taken on another server while the servers "
                                      "were disconnected; consider /nick NEW"},
             out);
    }
}

// The others announced our members' leaves while we were cut off: join
// them again in the others' eyes (our own members saw nothing).
inline void chat::rejoined(const moment& now, actions& out) {
    const std::string time = time_text(now);
    for (const auto& [id, c] : clients_)
        if (!c.gone && !c.nick.empty())
            for (const auto& room : c.rooms)
                cluster_send(cluster::encode(cluster::join_payload{room, c.nick, time}), out);
}

inline presence_entries chat::local_presence() const {
    presence_entries out;
    for (const auto& [id, c] : clients_)
        if (!c.gone && !c.nick.empty())
            out.emplace_back(c.key, cluster::encode_presence(c.nick, c.rooms));
    for (const auto& [serial, t] : tickets_) // in their grace period: still here
        if (t.parked)
            out.emplace_back(t.parked->key,
                             cluster::encode_presence(t.parked->nick, t.parked->rooms));
    return out;
}

// --- shared history ------------------------------------------------------------------

inline void chat::await_history(client& c, const std::string& room, join_event joined,
                                actions& out) {
    auto w = std::make_shared<history_wait>();
    w->serial = ++next_serial_;
    w->id = c.id;
    w->room = room;
    w->joined = std::move(joined);
    w->first_id = next_id_;
    next_id_ += limits_.shared_history;
    c.more().wait = w;
    waits_[room].push_back(w);
    reads_.emplace(w->serial, w);
    out.push_back(cluster_read_history{w->serial, room});
}

inline void chat::history_read(std::uint64_t serial,
                               std::optional<std::vector<std::string>> payloads, const moment& now,
                               actions& out) {
    auto it = reads_.find(serial);
    if (it == reads_.end())
        return;
    auto w = it->second;
    reads_.erase(it);
    if (!w->resume.empty())
        return resume_read(w, serial, std::move(payloads), now, out);
    if (w->answered)
        return; // given up already (too much held)
    w->answered = true;
    if (client* c = find(w->id))
        complete_wait(*c, w, payloads, now, out);
}

// The history, the joiner's own join, the members, then what was held;
// from then on the joiner is a member like any.
inline void chat::complete_wait(client& c, const std::shared_ptr<history_wait>& w,
                                const std::optional<std::vector<std::string>>& history,
                                const moment& now, actions& out) {
    if (c.wait() != w.get() || c.gone || stopping_)
        return;
    cancel_wait(c);
    const bool read = history.has_value();
    std::optional<std::pair<std::uint64_t, std::string>> position;
    if (read)
        position = send_history(c, *w, *history, out);
    else
        log("join: " + who(c) + " joined " + w->room +
                " without its shared history (the backplane did not answer in time)",
            out);
    send(c, w->joined, out);
    add_member(c, w->room);
    if (room& r = rooms_[w->room]; position && !r.numbered && r.seq == 0) {
        // The room's shared position, as of the read: later messages follow it.
        r.numbered = true;
        r.seq = position->first;
        r.epoch = std::move(position->second);
    }
    send(c, members_of(w->room), out);
    for (auto& h : w->held)
        if (!(read && h.covered_by_read))
            send(c, std::move(h.ev), out);
    w->held.clear();
    replay_held(c, now, out);
}

// Returns the last numbered message's seq and epoch: the room's position.
inline std::optional<std::pair<std::uint64_t, std::string>>
chat::send_history(const client& c, const history_wait& w, const std::vector<std::string>& history,
                   actions& out) {
    std::vector<message_event> events;
    std::optional<std::pair<std::uint64_t, std::string>> position;
    for (const auto& text : history) {
        // Checked as carefully as a payload from another instance.
        auto p = cluster::decode(text);
        auto* s = p ? std::get_if<cluster::stored_payload>(&*p) : nullptr;
        auto* n = p ? std::get_if<cluster::numbered_payload>(&*p) : nullptr;
        const auto seq = n ? parley::chat::detail::decimal(n->seq) : std::nullopt;
        if (s && s->room == w.room) {
            events.push_back(
                {0, w.room, std::move(s->nick), std::move(s->text), std::move(s->time), 0, {}});
        } else if (n && seq && n->room == w.room) {
            position.emplace(*seq, n->epoch);
            events.push_back({0, w.room, std::move(n->nick), std::move(n->text),
                              std::move(n->time), *seq, std::move(n->epoch)});
        } else {
            note_malformed(out);
        }
    }
    const std::size_t n = std::min(events.size(), limits_.shared_history);
    std::uint64_t id = w.first_id + (limits_.shared_history - n);
    for (std::size_t i = events.size() - n; i < events.size(); ++i) {
        events[i].id = ++id;
        send(c, std::move(events[i]), out);
    }
    return position;
}

// A message numbered by the backplane: the room takes its position (a new
// epoch drops what was kept of the old one). False for a repeat.
inline bool chat::place(room& r, message_event& m) {
    if (r.numbered && m.epoch == r.epoch && m.seq <= r.seq)
        return false;
    if (!r.numbered || m.epoch != r.epoch) {
        r.history.clear();
        r.history_bytes = 0;
        r.epoch = m.epoch;
        r.numbered = true;
    }
    r.seq = m.seq;
    return true;
}

inline void chat::store_failed(std::string_view text, const moment& now, actions& out) {
    auto p = cluster::decode(text);
    auto* s = p ? std::get_if<cluster::stored_payload>(&*p) : nullptr;
    if (!s || stopping_)
        return;
    auto it = rooms_.find(s->room);
    if (it == rooms_.end())
        return; // nobody here to tell
    if (room& r = it->second; r.numbered || r.epoch.empty()) {
        // A hole in the shared sequence for this instance's members: they
        // see a new epoch, local until the backplane numbers messages again.
        const bool was_shared = r.numbered;
        r.numbered = false;
        r.epoch = new_epoch();
        r.seq = 0;
        r.history.clear();
        r.history_bytes = 0;
        if (was_shared)
            log("say: a message to " + s->room +
                " could not be stored on the backplane; delivered on this server only, under "
                "the local epoch " + r.epoch,
            out);
    }
    const std::string room = s->room;
    publish(room,
            message_event{++next_id_, std::move(s->room), std::move(s->nick), std::move(s->text),
                          std::move(s->time), 0, {}},
            true, false, now, out);
}

inline void chat::cancel_wait(client& c) {
    if (!c.wait())
        return;
    const auto unwait = [&](const std::string& room) {
        if (auto it = waits_.find(room); it != waits_.end()) {
            std::erase(it->second, c.extra->wait);
            if (it->second.empty())
                waits_.erase(it);
        }
    };
    unwait(c.wait()->room);
    for (const auto& r : c.wait()->resume)
        unwait(r.room);
    c.extra->wait.reset();
}

// Holds an event for the clients waiting for `room`'s history (each once:
// `told`, if given, skips those already told and records them).
inline void chat::hold_for_waiting(const std::string& room, const event& ev, bool covered_by_read,
                                   std::unordered_set<conn_id>* told, const moment& now,
                                   actions& out) {
    auto it = waits_.find(room);
    if (it == waits_.end())
        return;
    const auto waits = it->second; // hold_event() may end a wait
    for (const auto& w : waits)
        if (client* c = find(w->id); c && !c->gone && (!told || told->insert(c->id).second))
            hold_event(*c, w, ev, covered_by_read, now, out);
}

// A private message: held if `to` waits for a room's history (ids must
// increase on its connection).
inline void chat::send_or_hold(client& to, event ev, const moment& now, actions& out) {
    if (to.wait())
        return hold_event(to, to.extra->wait, ev, false, now, out);
    send(to, std::move(ev), out);
}

// Bounded by the held limits: past them, the history is given up and the
// held events are delivered at once.
inline void chat::hold_event(client& c, const std::shared_ptr<history_wait>& w, const event& ev,
                             bool covered_by_read, const moment& now, actions& out) {
    w->held.push_back({ev, covered_by_read && !read_answered(*w, ev)});
    w->held_bytes += detail::held_size(ev);
    if (w->held.size() <= limits_.held_messages && w->held_bytes <= limits_.held_bytes)
        return;
    if (!w->answered) {
        w->answered = true; // no history
        reads_.erase(w->serial);
        for (auto& r : w->resume)
            if (!r.answered) {
                r.answered = true; // r.history stays empty: not read
                reads_.erase(r.serial);
            }
        if (w->resume.empty())
            complete_wait(c, w, std::nullopt, now, out);
        else
            complete_resume(c, w, now, out);
    }
}

} // namespace parley::chat::core

#endif
