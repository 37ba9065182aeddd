// parley chat core: a history store behind the rooms (options::stored;
// docs/HISTORY.md). The core does no I/O: each message is also a
// store_append action, a /history page that memory cannot fill is a
// store_read action answered by stored_read(), and the rooms' stored
// positions come in through restore() at start.
//
// With a store, a room outlives its members: when the last one leaves, its
// epoch, seq and the newest messages its next joiner's replay needs stay
// here as a dormant_room, and the room continues from them when someone
// joins again (as after a restart). When the store fails, the core goes on
// with history in memory only, each room starting a new epoch: the stored
// one stops at what was written.
#ifndef PARLEY_CHAT_CORE_IMPL_STORAGE_HPP
#define PARLEY_CHAT_CORE_IMPL_STORAGE_HPP

#include <algorithm>

namespace parley::chat::core {

inline void chat::restore(std::vector<stored_room> rooms, actions& out) {
    std::size_t messages = 0;
    for (auto& s : rooms) {
        if (!storing() || s.room.empty() || s.epoch.empty() || rooms_.contains(s.room))
            continue;
        dormant_room& d = dormant_[s.room];
        d.epoch = std::move(s.epoch);
        d.seq = s.last_seq;
        d.tail.clear();
        for (auto& m : s.tail) {
            // Ids keep increasing across the restart.
            next_id_ = std::max(next_id_, m.id);
            if (m.seq != 0 && m.seq <= d.seq && (d.tail.empty() || m.seq > d.tail.back().seq))
                d.tail.push_back(std::move(m));
        }
        // Only what a join replays stays in memory for a room with no member.
        room r;
        r.history = std::move(d.tail);
        std::vector<const message_event*> replay = replay_of(r);
        d.tail.clear();
        for (const auto* m : replay)
            d.tail.push_back(*m);
        messages += d.tail.size();
    }
    if (!rooms.empty())
        log("history: " + std::to_string(dormant_.size()) + " room(s) restored from the store (" +
                std::to_string(messages) + " message(s) kept in memory for join replays)",
            out);
}

// A room that starts (its first member arrives): where the store left it,
// or a new epoch.
inline void chat::start_history(const std::string& name, room& r) {
    auto d = dormant_.find(name);
    if (d == dormant_.end()) {
        r.epoch = new_epoch();
        return;
    }
    r.epoch = std::move(d->second.epoch);
    r.seq = d->second.seq;
    for (auto& m : d->second.tail)
        remember(r, m);
    dormant_.erase(d);
}

// A room that lost its last member. Without a store it ends with its
// history; with one it sleeps.
inline void chat::retire(std::map<std::string, room>::iterator it) {
    if (storing()) {
        dormant_room& d = dormant_[it->first];
        d.epoch = it->second.epoch;
        d.seq = it->second.seq;
        d.tail.clear();
        for (const auto* m : replay_of(it->second))
            d.tail.push_back(*m);
    }
    rooms_.erase(it);
}

inline void chat::store_message(const message_event& m, const moment& now, actions& out) {
    if (!storing())
        return;
    const auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(now.wall.time_since_epoch()).count();
    out.push_back(store_append{m, static_cast<std::int64_t>(ms)});
}

// A /history page the store answers; false when it cannot be asked (no
// store, too many reads under way).
inline bool chat::page_from_store(client& c, const std::string& name, std::uint64_t before,
                                  std::size_t limit, actions& out) {
    if (!storing() || pages_.size() >= limits_.max_clients)
        return false;
    const std::uint64_t serial = ++next_serial_;
    pages_.emplace(serial, page_wait{c.id, name, before, limit});
    ++hits_.history_store_reads;
    out.push_back(store_read{serial, name, before, limit});
    return true;
}

inline void chat::stored_read(std::uint64_t serial, std::optional<stored_page> page,
                              actions& out) {
    stored_read(serial, std::move(page), moment::now(), out);
}

inline void chat::stored_read(std::uint64_t serial, std::optional<stored_page> page,
                              const moment& now, actions& out) {
    if (auto r = resume_reads_.find(serial); r != resume_reads_.end()) {
        const conn_id id = r->second;
        resume_reads_.erase(r);
        client* c = find(id);
        if (!c || c->gone || c->closing || !c->resuming() || c->resuming()->serial != serial)
            return;
        return resume_page(*c, std::move(page), now, out);
    }
    auto it = pages_.find(serial);
    if (it == pages_.end())
        return;
    const page_wait w = std::move(it->second);
    pages_.erase(it);
    client* c = find(w.id);
    if (!c || c->gone || c->closing || stopping_)
        return;
    if (!page) // answered from memory
        return history_page(*c, history_input{w.room, w.before, w.limit}, out, false);
    history_event ev;
    ev.room = w.room;
    ev.epoch = std::move(page->epoch);
    ev.messages = std::move(page->messages);
    ev.more = !ev.messages.empty() && page->first_seq != 0 &&
              page->first_seq < ev.messages.front().seq;
    send(*c, std::move(ev), out);
}

inline void chat::restart_epoch(room& r) {
    r.epoch = new_epoch();
    r.seq = 0;
    r.history.clear();
    r.history_bytes = 0;
    ++hits_.history_epochs_restarted;
}

inline void chat::store_refused(const std::string& name, const moment&, actions& out) {
    if (!storing())
        return;
    if (auto it = rooms_.find(name); it != rooms_.end()) {
        restart_epoch(it->second);
        log("history: the store's queue was full and lost a message of " + name +
                "; the room starts a new epoch",
            out);
    }
}

inline void chat::store_lost(const std::string& why, const moment&, actions& out) {
    if (!limits_.stored || store_lost_)
        return;
    store_lost_ = true;
    dormant_.clear();
    for (auto& [name, r] : rooms_)
        restart_epoch(r);
    log("history: the store failed (" + why +
            "); history is kept in memory only from now on, and every room starts a new epoch",
        out);
}

} // namespace parley::chat::core

#endif
