// parley chat core: room offsets, resume tokens, the grace period, resume
// and history paging (docs/PROTOCOL.md §8).
//
// A resume token is "SERIAL.SECRET": the serial finds the ticket (it is no
// secret), the secret (random bytes from options::random, in hex) is
// compared in constant time. A ticket belongs to a live client until its
// connection is lost without /quit; it then holds the client's nickname
// and rooms for the grace period (no leave is announced, the rooms and
// their history stay), and ends with a resume (which issues a new ticket)
// or with the leaves that were deferred.
#ifndef PARLEY_CHAT_CORE_IMPL_RESUME_HPP
#define PARLEY_CHAT_CORE_IMPL_RESUME_HPP

#include <parley/constant_time.hpp>
#include <parley/detail/hex.hpp>

#include <algorithm>
#include <limits>

namespace parley::chat::core {

inline std::string chat::random_hex(std::size_t bytes) {
    std::vector<unsigned char> raw(bytes);
    limits_.random(raw.data(), raw.size());
    return ::parley::detail::to_hex(raw);
}

inline std::string chat::new_epoch() {
    // At most 15 characters: a string that short holds no heap block, and
    // every message event (and its history copy) carries one.
    if (limits_.random)
        return random_hex(7);
    return epoch_base_ + "-" + std::to_string(++epochs_);
}

// 24 bytes: 192 bits, beyond guessing.
inline void chat::issue_ticket(client& c) {
    if (!limits_.random || limits_.resume_grace.count() <= 0)
        return;
    const std::string secret = random_hex(secret_bytes);
    c.ticket = ++next_serial_;
    ticket& t = tickets_[c.ticket];
    std::copy_n(secret.begin(), t.secret_hex.size(), t.secret_hex.begin());
    t.conn = c.id;
}

inline std::string chat::token_of(const client& c) const {
    auto it = tickets_.find(c.ticket);
    return it == tickets_.end() ? std::string() : std::to_string(c.ticket) + "." + std::string(it->second.secret());
}

inline void chat::drop_ticket(client& c) {
    if (c.ticket != 0)
        tickets_.erase(c.ticket);
    c.ticket = 0;
}

// Keeps `c`'s nickname and rooms for the grace period instead of
// announcing its leave; false when it has no ticket (or cannot wait).
inline bool chat::park(client& c, leave_reason reason, std::string cause, const moment& now,
                       actions& out) {
    settle_resume(c);
    if (c.ticket == 0 || c.gone || c.nick.empty() || c.wait() || c.claiming || stopping_)
        return false;
    if (parked_nicks_.size() >= limits_.max_clients) // bounded like the connections
        return false;
    auto it = tickets_.find(c.ticket);
    if (it == tickets_.end())
        return false;
    ticket& t = it->second;
    t.conn = 0;
    t.parked = std::make_unique<parked_session>();
    parked_session& p = *t.parked;
    p.nick = c.nick;
    p.key = c.key;
    p.peer = c.peer;
    p.rooms = c.rooms;
    p.current = c.current;
    p.reason = reason;
    p.cause = std::move(cause);
    p.dropped = c.dropped;
    p.deadline = now.steady + limits_.resume_grace;
    for (const auto& name : c.rooms) {
        rooms_[name].parked += 1; // before remove_member: the room stays
        remove_member(c, name);
    }
    forget_nick(c);
    parked_nicks_[p.key] = it->first;
    graces_.emplace(p.deadline, it->first);
    park_in_cluster(t, it->first, out);
    log("away: " + who(c) + " disconnected (" + std::string(to_string(reason)) +
            "); its nickname and rooms wait " + std::to_string(limits_.resume_grace.count()) +
            " ms for a resume",
        out);
    c.ticket = 0;
    c.gone = true;
    c.rooms.clear();
    c.current.clear();
    return true;
}

// The grace period ended: the leaves that were deferred, once per room.
inline void chat::expire(std::uint64_t serial, const moment& now, actions& out) {
    auto it = tickets_.find(serial);
    if (it == tickets_.end() || it->second.conn != 0)
        return;
    ticket t = std::move(it->second);
    tickets_.erase(it);
    const parked_session& p = *t.parked;
    parked_nicks_.erase(p.key);
    ++hits_.graces_expired;
    if (cross_resume())
        out.push_back(cluster_unpark{std::to_string(serial) + "." + std::string(t.secret())});
    client gone; // never a member: its id is no connection's
    gone.id = std::numeric_limits<conn_id>::max();
    gone.peer = p.peer;
    gone.nick = p.nick;
    gone.key = p.key;
    gone.rooms = p.rooms;
    gone.dropped = p.dropped;
    for (const auto& name : p.rooms)
        if (auto r = rooms_.find(name); r != rooms_.end() && r->second.parked != 0)
            --r->second.parked; // the room goes with its last member, below
    leave_chat(gone, p.reason, p.cause, now, out);
    for (const auto& name : p.rooms)
        if (auto r = rooms_.find(name);
            r != rooms_.end() && r->second.members->empty() && r->second.parked == 0)
            retire(r);
}

// The ROOM=SEQ[@EPOCH] words of a /resume; nullopt (refused) if malformed.
inline std::optional<chat::positions> chat::positions_of(client& c, std::string_view text,
                                                         actions& out) {
    positions given;
    for (std::string_view rest = text; !rest.empty();) {
        const auto [word, next] = parley::chat::detail::split_word(rest);
        rest = next;
        const auto eq = word.find('=');
        const auto at = word.find('@', eq == std::string_view::npos ? 0 : eq);
        const auto seq = eq == std::string_view::npos
                             ? std::nullopt
                             : parley::chat::detail::decimal(word.substr(eq + 1, at - eq - 1));
        if (!seq || given.size() >= limits_.max_rooms_per_client) {
            refuse(c, errc::bad_arguments,
                   "usage: /resume TOKEN [ROOM=SEQ[@EPOCH] ...] (at most " +
                       std::to_string(limits_.max_rooms_per_client) + " rooms)",
                   out);
            return std::nullopt;
        }
        resume_position& p = given[canonical_room(word.substr(0, eq))];
        p.seq = *seq;
        if (at != std::string_view::npos)
            p.epoch = std::string(word.substr(at + 1));
    }
    return given;
}

inline void chat::resume(client& c, std::string_view token, std::string_view positions,
                         const moment& now, actions& out) {
    auto given = positions_of(c, positions, out);
    if (!given)
        return;
    const auto dot = token.find('.');
    const auto serial = parley::chat::detail::decimal(token.substr(0, dot));
    auto it = serial && dot != std::string_view::npos ? tickets_.find(*serial) : tickets_.end();
    const bool match =
        it != tickets_.end() && constant_time_equal(token.substr(dot + 1), it->second.secret());
    // A session parked here is in the cluster's store too: taken from there,
    // so that it is resumed once, here or elsewhere.
    if (cross_resume() && (!match || it->second.conn == 0))
        return take(c, token, positions, match ? *serial : 0, out);
    if (!match) {
        ++hits_.resumes_failed;
        return refuse(c, errc::resume_failed,
                      "this resume token is unknown, used already or expired; choose a nickname",
                      out);
    }
    restore(c, *serial, *given, now, out);
}

// Resumes the session of ticket `serial` (parked, or live: then taken
// over) on `c`.
inline void chat::restore(client& c, std::uint64_t serial, const positions& given,
                          const moment& now, actions& out) {
    auto it = tickets_.find(serial);
    const bool taken_over = it->second.conn != 0;
    if (taken_over) { // its old connection is not known to be lost yet
        client* old = find(it->second.conn);
        if (!old || !park(*old, leave_reason::disconnected, {}, now, out)) {
            ++hits_.resumes_failed;
            return refuse(c, errc::resume_failed,
                          "the session of this token cannot be resumed now; choose a nickname",
                          out);
        }
        close(*old, out, std::chrono::milliseconds(0));
    }
    ticket t = std::move(it->second);
    tickets_.erase(it);
    parked_session& p = *t.parked;
    graces_.erase({p.deadline, serial});
    parked_nicks_.erase(p.key);
    ++hits_.resumes;
    if (cross_resume() && taken_over) // parked just now: not to be taken elsewhere
        out.push_back(cluster_unpark{std::to_string(serial) + "." + std::string(t.secret())});

    c.nick = p.nick;
    c.key = p.key;
    nicks_[c.key] = c.id;
    issue_ticket(c);
    send(c, nick_accepted_event{c.nick, token_of(c)}, out);
    auto st = std::make_shared<catch_up>();
    st->rooms = std::move(p.rooms);
    st->current = std::move(p.current);
    st->given = given;
    st->done = resumed_event{c.nick, true, {}};
    c.more().resuming = std::move(st);
    catch_up_rooms(c, now, out);
}

// The rooms of a resume, in joining order: for each, the messages after
// the client's position (from the store while memory does not reach back
// to it, then from memory), then its membership and `members`; `resumed`
// after the last. Returns while a store read is under way; resume_page()
// continues. Every message goes by `next`, the seq the client needs, so
// none is sent twice whichever source has it.
inline void chat::catch_up_rooms(client& c, const moment& now, actions& out) {
    catch_up& st = *c.resuming();
    while (st.next_room < st.rooms.size()) {
        const std::string& name = st.rooms[st.next_room];
        room& r = rooms_[name]; // kept by `parked`
        if (!st.started) {
            st.started = true;
            st.room = resumed_room{name, r.epoch, 0, r.seq, false};
            st.epoch = r.epoch;
            st.whole = true;
            st.from_store = 0;
            auto p = st.given.find(name);
            st.tracking = p != st.given.end() &&
                          (p->second.epoch.empty() || p->second.epoch == r.epoch) &&
                          p->second.seq <= r.seq;
            if (st.tracking) {
                st.room.from = p->second.seq;
                st.next = st.room.from + 1;
            }
            // The store only for a gap within the bound (memory alone
            // answers a longer one: not recovered, as without a store).
            st.store_ok = st.tracking && storing() && limits_.resume_store_messages != 0 &&
                          r.seq - st.room.from <= limits_.resume_store_messages;
        }
        if (st.tracking && r.epoch != st.epoch) { // the room restarted meanwhile
            st.tracking = false;
            st.room.epoch = r.epoch;
        }
        if (st.tracking) {
            const std::uint64_t oldest = r.history.empty() ? r.seq + 1 : r.history.front().seq;
            // The room goes on while the store is read: at most twice the
            // bound comes from the store, then memory has the rest or not.
            if (st.next < oldest && st.store_ok && storing() &&
                st.from_store < 2 * limits_.resume_store_messages &&
                resume_reads_.size() < limits_.max_clients) {
                st.serial = ++next_serial_;
                resume_reads_.emplace(st.serial, c.id);
                ++hits_.resume_store_reads;
                out.push_back(store_read{st.serial, name, 0,
                                         std::max<std::size_t>(limits_.resume_store_page, 1),
                                         st.next - 1, c.id});
                return;
            }
            for (const auto& m : r.history) {
                if (m.seq < st.next)
                    continue;
                st.whole = st.whole && m.seq == st.next;
                st.next = m.seq + 1;
                send(c, m, out);
                ++st.resent;
            }
            st.room.seq = r.seq;
            st.room.recovered = st.whole && st.next == r.seq + 1;
        } else {
            st.room.seq = r.seq;
        }
        if (r.parked != 0)
            --r.parked;
        add_member(c, name);
        c.rooms.push_back(name);
        st.done.recovered = st.done.recovered && st.room.recovered;
        st.done.rooms.push_back(std::move(st.room));
        send(c, members_of(name), out);
        ++st.next_room;
        st.started = false;
    }
    c.current = st.current;
    log("resume: " + who(c) + " is back in " + std::to_string(st.rooms.size()) + " room(s); " +
            std::to_string(st.resent) + " message(s) sent again" +
            (st.done.recovered ? "" : ", some were not kept"),
        out);
    send(c, std::move(st.done), out);
    c.extra->resuming.reset();
    replay_held(c, now, out); // and frees what the resume allocated
}

// A store read of a resume answered (nullopt: it failed). What follows the
// client's position goes to it, within resume_store_page_bytes; then on.
inline void chat::resume_page(client& c, std::optional<stored_page> page, const moment& now,
                              actions& out) {
    catch_up& st = *c.resuming();
    st.serial = 0;
    std::size_t sent = 0, bytes = 0;
    if (page && page->epoch == st.epoch) {
        for (auto& m : page->messages) {
            if (m.seq < st.next)
                continue;
            if (sent != 0 && bytes + detail::history_size(m) > limits_.resume_store_page_bytes)
                break; // the rest with the next read
            bytes += detail::history_size(m);
            st.whole = st.whole && m.seq == st.next;
            st.next = m.seq + 1;
            send(c, std::move(m), out);
            ++sent;
        }
    }
    st.resent += sent;
    st.from_store += sent;
    hits_.resume_store_messages += sent;
    if (sent == 0) // failed, another epoch, or nothing newer: memory from here
        st.store_ok = false;
    catch_up_rooms(c, now, out);
}

// The connection of a resume under way goes (closed, finished, stopped):
// the rooms not reached yet become its rooms as they were, without their
// messages, so that it is parked or leaves as any member would.
inline void chat::settle_resume(client& c) {
    if (!c.resuming())
        return;
    catch_up& st = *c.resuming();
    if (st.serial != 0)
        resume_reads_.erase(st.serial);
    for (std::size_t i = st.next_room; i < st.rooms.size(); ++i) {
        room& r = rooms_[st.rooms[i]];
        if (r.parked != 0)
            --r.parked;
        add_member(c, st.rooms[i]);
        c.rooms.push_back(st.rooms[i]);
    }
    if (c.current.empty())
        c.current = st.current;
    c.extra->resuming.reset();
}

// The join replay: the newest kept messages within history_messages and
// history_bytes (a message over history_bytes alone is skipped).
inline std::vector<const message_event*> chat::replay_of(const room& r) const {
    std::vector<const message_event*> out;
    if (limits_.history_messages == 0 || limits_.history_bytes == 0)
        return out;
    std::size_t bytes = 0;
    for (auto m = r.history.rbegin(); m != r.history.rend(); ++m) {
        const std::size_t size = detail::history_size(*m);
        if (size > limits_.history_bytes)
            continue;
        if (out.size() == limits_.history_messages || bytes + size > limits_.history_bytes)
            break;
        bytes += size;
        out.push_back(&*m);
    }
    std::reverse(out.begin(), out.end());
    return out;
}

inline void chat::history_page(client& c, const history_input& h, actions& out,
                               bool may_read_store) {
    const std::string name = canonical_room(h.room);
    auto it = rooms_.find(name);
    auto sleeping = dormant_.find(name); // a room with no member, kept by the store
    if (it == rooms_.end() && sleeping == dormant_.end())
        return refuse(c, errc::no_such_room, "there is no room " + printable(name), out);
    const bool live = it != rooms_.end();
    const std::deque<message_event>& kept = live ? it->second.history : sleeping->second.tail;
    const std::uint64_t last = live ? it->second.seq : sleeping->second.seq;
    const std::size_t cap = std::max<std::size_t>(limits_.history_page, 1);
    const std::size_t limit =
        h.limit == 0 ? std::max<std::size_t>(cap / 2, 1) : std::min<std::uint64_t>(h.limit, cap);
    // The kept messages before `before`, the last `limit` of them.
    auto end = kept.end();
    if (h.before != 0)
        end = std::lower_bound(kept.begin(), kept.end(), h.before,
                               [](const message_event& m, std::uint64_t s) { return m.seq < s; });
    const auto count = std::min<std::size_t>(limit, static_cast<std::size_t>(end - kept.begin()));
    // Memory holds less than asked and older messages exist: the store has them.
    const std::uint64_t oldest = kept.empty() ? last + 1 : kept.front().seq;
    if (may_read_store && count < limit && oldest > 1 && (h.before == 0 || h.before > 1) &&
        page_from_store(c, name, h.before, limit, out))
        return;
    const auto begin = end - static_cast<std::ptrdiff_t>(count);
    history_event ev;
    ev.room = name;
    ev.epoch = live ? it->second.epoch : sleeping->second.epoch;
    ev.messages.assign(begin, end);
    ev.more = begin != kept.begin();
    send(c, std::move(ev), out);
}

} // namespace parley::chat::core

#endif
