// parley chat core: resuming on any instance (docs/SCALING.md), with a
// backplane that numbers messages (options::numbered, options::instance).
//
// A parked session is also given to the backplane (cluster_park), which
// keeps it for the grace period, found by its token only. A /resume whose
// token is not a live session here takes it from there (cluster_take):
// once, whichever instance asks first; the backplane moves the nickname to
// the taker and tells the others (a T payload), so the instance that
// parked it ends it without a leave. The taker then reads each of the
// client's rooms from the shared history, as a join does (impl/cluster.hpp),
// and sends the messages after the client's positions, by seq; what
// happens meanwhile in those rooms is held, as for a joiner, and sent
// after the `resumed` event.
#ifndef PARLEY_CHAT_CORE_IMPL_CLUSTER_RESUME_HPP
#define PARLEY_CHAT_CORE_IMPL_CLUSTER_RESUME_HPP

#include <parley/chat/cluster/codec.hpp>

#include <algorithm>
#include <limits>

namespace parley::chat::core {

namespace detail {
// The room of a room event (nullptr for others).
inline const std::string* room_of(const event& ev) {
    if (auto* m = std::get_if<message_event>(&ev))
        return &m->room;
    if (auto* j = std::get_if<join_event>(&ev))
        return &j->room;
    if (auto* l = std::get_if<leave_event>(&ev))
        return &l->room;
    return nullptr;
}
} // namespace detail

inline bool chat::cross_resume() const {
    return limits_.numbered && !limits_.instance.empty() && limits_.random &&
           limits_.resume_grace.count() > 0;
}

inline void chat::park_in_cluster(const ticket& t, std::uint64_t serial, actions& out) const {
    if (cross_resume())
        out.push_back(cluster_park{std::to_string(serial) + "." + std::string(t.secret()), serial,
                                   t.parked->key,
                                   cluster::encode_presence(t.parked->nick, t.parked->rooms),
                                   t.parked->current,
                                   limits_.resume_grace});
}

// Inputs wait (as during a nickname claim) until ticket_taken().
inline void chat::take(client& c, std::string_view token, std::string_view positions,
                       std::uint64_t here, actions& out) {
    c.claiming = true;
    client_extra& x = c.more();
    x.claim_serial = ++next_serial_;
    x.take_positions = std::string(positions);
    x.take_here = here;
    out.push_back(cluster_take{c.id, x.claim_serial, std::string(token)});
}

inline void chat::ticket_taken(conn_id id, std::uint64_t serial, bool reached,
                               std::optional<taken_ticket> t, const moment& now, actions& out) {
    client* c = find(id);
    if (c && !(c->claiming && c->extra && c->extra->claim_serial == serial))
        c = nullptr;
    std::optional<positions> given;
    const std::uint64_t parked_here = c ? c->extra->take_here : 0;
    if (c) {
        c->claiming = false;
        c->extra->take_here = 0;
        given = positions_of(*c, c->extra->take_positions, out); // checked by resume() already
        c->extra->take_positions.clear();
        if (c->gone || c->closing || stopping_ || !given)
            c = nullptr;
    }
    const bool here = t && t->instance == limits_.instance;
    if (here || (!t && !reached)) {
        // Ours, or the store cannot be asked: the session parked here, if
        // it is one, is resumed here.
        auto it = tickets_.find(t ? t->serial : parked_here);
        if (it != tickets_.end() && it->second.conn == 0) {
            if (c)
                restore(*c, it->first, *given, now, out);
            else
                expire(it->first, now, out); // its taker is gone: as if expired
            if ((c = find(id)) != nullptr)
                replay_held(*c, now, out);
            return;
        }
        if (t)
            out.push_back(cluster_release{t->key}); // its claim moved here, for nobody
    }
    if (t && !here) {
        // Held here under another connection (claimed while the servers
        // were cut off): that one keeps it; the session is lost.
        const bool held_here = nicks_.contains(t->key) || claiming_.contains(t->key) ||
                               parked_nicks_.contains(t->key);
        auto p = cluster::decode_presence(t->record);
        if (p && nickname_key(p->nick) == t->key && c && !held_here)
            return resume_taken(*c, *t, std::move(*p), *given, now, out);
        if (!held_here)
            abandon_taken(*t, now, out);
    }
    if (c) {
        ++hits_.resumes_failed;
        refuse(*c, errc::resume_failed,
               reached || t ? "this resume token is unknown, used already or expired; choose a "
                              "nickname"
                            : "this resume token cannot be checked now (the servers' shared "
                              "store is unreachable); choose a nickname",
               out);
        replay_held(*c, now, out);
    }
}

// Taken, but nobody here can have it (its client left meanwhile, or the
// record is not valid): its leaves are announced, as at the end of its
// grace period.
inline void chat::abandon_taken(const taken_ticket& t, const moment& now, actions& out) {
    auto p = cluster::decode_presence(t.record);
    if (!p || nickname_key(p->nick) != t.key) {
        note_malformed(out);
        return out.push_back(cluster_release{t.key});
    }
    client gone;
    gone.id = std::numeric_limits<conn_id>::max();
    gone.nick = p->nick;
    gone.key = t.key;
    gone.rooms = p->rooms;
    remote_.erase(t.key);
    leave_chat(gone, leave_reason::disconnected, {}, now, out);
}

// Another instance took a session: if it was parked here, it ends here,
// without a leave; its member is now the taker's.
inline void chat::drop_taken(std::string_view instance, std::uint64_t serial,
                             const std::string& nick, actions& out) {
    auto it = tickets_.find(serial);
    if (it == tickets_.end() || !it->second.parked)
        return;
    // Only the parking instance holds a ticket of that serial and key.
    if (nickname_key(nick) != it->second.parked->key)
        return;
    const std::unique_ptr<parked_session> t = std::move(it->second.parked);
    tickets_.erase(it);
    graces_.erase({t->deadline, serial});
    parked_nicks_.erase(t->key);
    for (const auto& name : t->rooms)
        if (auto r = rooms_.find(name); r != rooms_.end()) {
            if (r->second.parked != 0)
                --r->second.parked;
            if (r->second.members->empty() && r->second.parked == 0)
                rooms_.erase(r);
        }
    log("resume: " + t->nick + " (" + t->peer + ") resumed on instance " + std::string(instance) +
            "; its session here ends without a leave",
        out);
    remote_[t->key] = remote_member{std::string(instance), t->nick, t->rooms};
}

// The session of another instance, now this client's: nickname, new token,
// then one shared history read per room.
inline void chat::resume_taken(client& c, const taken_ticket& t, cluster::presence p,
                               const positions& given, const moment& now, actions& out) {
    ++hits_.resumes;
    remote_.erase(t.key);
    c.nick = p.nick;
    c.key = t.key;
    nicks_[c.key] = c.id;
    issue_ticket(c);
    send(c, nick_accepted_event{c.nick, token_of(c)}, out);
    std::vector<std::string> rooms;
    for (auto& name : p.rooms)
        if (rooms.size() < limits_.max_rooms_per_client &&
            std::find(rooms.begin(), rooms.end(), name) == rooms.end())
            rooms.push_back(std::move(name));
    c.rooms = rooms;
    c.current = std::find(rooms.begin(), rooms.end(), t.current) != rooms.end()
                    ? t.current
                    : (rooms.empty() ? std::string() : rooms.back());
    cluster_presence_of(c, out);
    auto w = std::make_shared<history_wait>();
    w->id = c.id;
    w->first_id = next_id_;
    next_id_ += limits_.shared_history * rooms.size();
    for (const auto& name : rooms) {
        history_wait::room_read r;
        r.room = name;
        r.serial = ++next_serial_;
        if (auto g = given.find(name); g != given.end()) {
            r.given = true;
            r.from = g->second.seq;
            r.epoch = g->second.epoch;
        }
        w->resume.push_back(std::move(r));
    }
    if (rooms.empty())
        return complete_resume(c, w, now, out);
    c.more().wait = w;
    for (const auto& r : w->resume) {
        waits_[r.room].push_back(w);
        reads_.emplace(r.serial, w);
        out.push_back(cluster_read_history{r.serial, r.room});
    }
    log("resume: " + who(c) + " takes over its session from instance " + t.instance +
            "; reading " + std::to_string(rooms.size()) + " room(s) from the shared history",
        out);
}

inline void chat::resume_read(const std::shared_ptr<history_wait>& w, std::uint64_t serial,
                              std::optional<std::vector<std::string>> payloads,
                              const moment& now, actions& out) {
    bool all = true;
    for (auto& r : w->resume) {
        if (r.serial == serial && !r.answered) {
            r.answered = true;
            r.history = std::move(payloads);
        }
        all = all && r.answered;
    }
    if (!all || w->answered)
        return;
    w->answered = true;
    if (client* c = find(w->id))
        complete_resume(*c, w, now, out);
}

inline bool chat::read_answered(const history_wait& w, const event& ev) const {
    if (w.resume.empty() || w.answered)
        return w.answered;
    const std::string* room = detail::room_of(ev);
    for (const auto& r : w.resume)
        if (room && r.room == *room)
            return r.answered;
    return true;
}

// Per room: the messages after the client's position, then the members;
// then `resumed`, then what was held.
inline void chat::complete_resume(client& c, const std::shared_ptr<history_wait>& w,
                                  const moment& now, actions& out) {
    if ((c.wait() && c.wait() != w.get()) || c.gone || stopping_)
        return;
    cancel_wait(c);
    resumed_event done{c.nick, true, {}};
    std::uint64_t id = w->first_id;
    std::size_t resent = 0;
    for (const auto& rr : w->resume) {
        add_member(c, rr.room);
        room& r = rooms_[rr.room];
        std::vector<message_event> kept;
        for (const auto& text : rr.history ? *rr.history : std::vector<std::string>{}) {
            auto p = cluster::decode(text);
            auto* n = p ? std::get_if<cluster::numbered_payload>(&*p) : nullptr;
            const auto seq = n ? parley::chat::detail::decimal(n->seq) : std::nullopt;
            if (n && seq && n->room == rr.room)
                kept.push_back({0, rr.room, std::move(n->nick), std::move(n->text),
                                std::move(n->time), *seq, std::move(n->epoch)});
            else if (!p || !std::holds_alternative<cluster::stored_payload>(*p))
                note_malformed(out);
        }
        // The room's position as of the read.
        const std::uint64_t last = kept.empty() ? 0 : kept.back().seq;
        const std::string epoch = kept.empty() ? std::string() : kept.back().epoch;
        if (!kept.empty() && !r.numbered && r.seq == 0) {
            r.numbered = true;
            r.seq = last;
            r.epoch = epoch;
        }
        resumed_room out_room{rr.room, epoch, rr.from, last, false};
        if (rr.history && rr.given && rr.from <= last &&
            (rr.epoch.empty() || rr.epoch == epoch || (last == 0 && rr.from == 0))) {
            std::uint64_t expected = rr.from + 1;
            bool whole = true;
            for (auto& m : kept) {
                if (m.seq <= rr.from || m.epoch != epoch)
                    continue;
                whole = whole && m.seq == expected;
                expected = m.seq + 1;
                m.id = ++id;
                send(c, std::move(m), out);
                ++resent;
            }
            out_room.recovered = whole && expected == last + 1;
        }
        done.recovered = done.recovered && out_room.recovered;
        done.rooms.push_back(std::move(out_room));
        send(c, members_of(rr.room), out);
    }
    log("resume: " + who(c) + " is back in " + std::to_string(w->resume.size()) + " room(s); " +
            std::to_string(resent) + " message(s) sent from the shared history" +
            (done.recovered ? "" : ", some were not kept"),
        out);
    send(c, std::move(done), out);
    for (auto& h : w->held) {
        // Dropped if its room's read accounts for it.
        const std::string* room = h.covered_by_read ? detail::room_of(h.ev) : nullptr;
        const bool read = room && std::any_of(w->resume.begin(), w->resume.end(), [&](auto& rr) {
                              return rr.room == *room && rr.history.has_value();
                          });
        if (!read)
            send(c, std::move(h.ev), out);
    }
    w->held.clear();
    replay_held(c, now, out);
}

} // namespace parley::chat::core

#endif
