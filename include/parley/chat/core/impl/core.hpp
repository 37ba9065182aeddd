// parley chat core: connections, deadlines, closing and flood control.
#ifndef PARLEY_CHAT_CORE_IMPL_CORE_HPP
#define PARLEY_CHAT_CORE_IMPL_CORE_HPP

#include <parley/constant_time.hpp>

#include <algorithm>

namespace parley::chat::core {

inline chat::chat(core::options l)
    : limits_(std::move(l)),
      rates_{limits_.messages_per_second, limits_.burst_messages, limits_.bytes_per_second,
             limits_.burst_bytes} {
    if (!limits_.random) // epochs still differ between runs
        epoch_base_ = std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
}

inline chat::client* chat::find(conn_id id) {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : &it->second;
}

inline void chat::connect(conn_id id, arrival a, const moment& now, actions& out) {
    const auto refuse_connection = [&](errc code, std::string why, std::string line) {
        log(std::move(line), out);
        out.push_back(send_action{id, error_event{std::string(to_string(code)), std::move(why)}});
        out.push_back(close_action{id, limits_.close_timeout});
    };
    if (stopping_)
        return out.push_back(close_action{id, std::chrono::milliseconds(0)});
    if (clients_.size() >= limits_.max_clients) {
        ++hits_.server_full;
        return refuse_connection(errc::server_full, "the server is full; try again later",
                                 "server full: refused " + a.peer + " (" +
                                     std::to_string(limits_.max_clients) + " connections)");
    }
    std::pair<const std::string, std::size_t>* address = nullptr;
    if (!a.address.empty() && limits_.max_clients_per_address != 0) {
        auto slot = per_address_.try_emplace(std::move(a.address), 0).first;
        auto& n = slot->second;
        if (n >= limits_.max_clients_per_address) {
            ++hits_.address_full;
            return refuse_connection(
                errc::too_many_connections,
                "too many connections from your address (at most " +
                    std::to_string(limits_.max_clients_per_address) + ")",
                "too many connections: refused " + a.peer + " (" + std::to_string(n) +
                    " open from that address)");
        }
        ++n;
        address = &*slot;
    }
    client& c = clients_[id];
    c.id = id;
    c.peer = std::move(a.peer);
    c.interactive = a.interactive;
    c.address = address;
    c.authorized = limits_.access_token.empty();
    c.connected = c.last_input = now.steady;
    c.flood = flood_bucket(rates_, now.steady);
    welcome_event w;
    w.prompt = limits_.prompt;
    w.server = limits_.server_name;
    w.max_frame_bytes = limits_.max_frame_bytes;
    w.max_message_bytes = limits_.max_message_bytes;
    w.max_nickname_length = max_name_length;
    send(c, std::move(w), out);
    schedule(c);
}

inline void chat::input(conn_id id, std::string_view text, const moment& now, actions& out) {
    client* c = find(id);
    if (!c)
        return;
    c->last_input = now.steady;
    c->pinged = false;
    if (c->gone || c->closing || stopping_)
        return;
    if (!c->authorized)
        return on_access(*c, text, now, out); // a wrong token closes the connection
    if (c->claiming || c->wait() || c->resuming())
        return hold(*c, text, out); // counted by flood control when replayed
    if (!admit(*c, text.size(), now, out))
        return;
    if (c->nick.empty())
        return on_nickname(*c, text, now, out);
    dispatch(*c, text, now, out);
}

inline void chat::input_error(conn_id id, errc code, std::string description, const moment&,
                              actions& out) {
    client* c = find(id);
    if (!c || c->closing)
        return;
    if (code == errc::frame_too_large) {
        ++hits_.frames_too_large;
        c->close_reason = leave_reason::error;
        refuse(*c, code, std::move(description) + "; closing the connection", out);
        return close(*c, out);
    }
    ++hits_.lines_too_long;
    if (!c->gone)
        refuse(*c, code, std::move(description), out);
}

inline void chat::peer_finished(conn_id id, const moment& now, actions& out) {
    client* c = find(id);
    if (!c)
        return;
    if (!c->nick.empty() && !park(*c, leave_reason::disconnected, {}, now, out))
        leave_chat(*c, leave_reason::disconnected, {}, now, out);
    c->gone = true;
    close(*c, out);
}

inline void chat::closed(conn_id id, departure cause, std::string why, const moment& now,
                         actions& out) {
    auto it = clients_.find(id);
    if (it == clients_.end())
        return;
    client& c = it->second;
    settle_resume(c);
    unschedule(c);
    c.closing = true;
    if (c.address) {
        auto a = per_address_.find(c.address->first);
        c.address = nullptr;
        if (a != per_address_.end() && --a->second == 0)
            per_address_.erase(a);
    }
    if (!c.gone && !c.nick.empty()) {
        if (stopping_) {
            log("leave: " + who(c) + " disconnected (server shutdown)", out);
            forget_nick(c);
        } else {
            leave_reason reason = leave_reason::error;
            if (c.close_reason)
                reason = *c.close_reason;
            else if (cause == departure::closed)
                reason = leave_reason::disconnected;
            else if (cause == departure::slow_consumer || cause == departure::write_timeout)
                reason = leave_reason::slow_consumer;
            if (cause == departure::write_timeout)
                why = "write_timeout";
            if (c.close_reason || !park(c, reason, why, now, out))
                leave_chat(c, reason, why, now, out);
        }
    }
    for (const auto& room : c.rooms)
        remove_member(c, room);
    c.gone = true;
    cancel_wait(c);
    drop_ticket(c);
    clients_.erase(it); // a claim under way is settled by nick_claimed()
}

inline void chat::dropped(conn_id id, std::size_t count, actions& out) {
    client* c = find(id);
    if (!c || count == 0)
        return;
    if (c->dropped == 0)
        log("slow consumer: " + who(*c) +
                " is not reading fast enough; dropping its oldest messages",
            out);
    c->dropped += count;
}

inline std::vector<client_view> chat::clients() const {
    std::vector<client_view> out;
    out.reserve(clients_.size());
    for (const auto& [id, c] : clients_)
        out.push_back({id, c.nick, c.peer, c.interactive, c.rooms, c.current});
    std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    return out;
}

// --- time -----------------------------------------------------------------------------

inline std::chrono::milliseconds chat::idle_limit(const client& c) const {
    return c.interactive ? limits_.line_idle_timeout : limits_.idle_timeout;
}

inline bool chat::pings(const client& c) const {
    return !c.interactive && limits_.ping_interval.count() != 0 &&
           (idle_limit(c).count() == 0 || limits_.ping_interval < idle_limit(c));
}

// The next deadline of `c`: its nickname deadline, idle deadline or ping.
// Inputs only move last_input; a wake-up found early just reschedules.
inline std::optional<std::chrono::steady_clock::time_point> chat::due(const client& c) const {
    if (c.closing)
        return std::nullopt;
    std::optional<std::chrono::steady_clock::time_point> next;
    const auto earliest = [&](std::chrono::steady_clock::time_point t) {
        next = next ? std::min(*next, t) : t;
    };
    if (c.nick.empty() && !c.gone)
        earliest(c.connected + limits_.nickname_timeout);
    if (idle_limit(c).count() != 0)
        earliest(c.last_input + idle_limit(c));
    if (pings(c) && !c.pinged)
        earliest(c.last_input + limits_.ping_interval);
    return next;
}

inline void chat::schedule(client& c) {
    const auto next = due(c);
    if (c.scheduled && next && *c.scheduled <= *next)
        return; // the earlier wake-up will look again
    unschedule(c);
    if (!next)
        return;
    c.scheduled = next;
    wakeups_.emplace(*next, c.id);
}

inline void chat::unschedule(client& c) {
    if (c.scheduled)
        wakeups_.erase({*c.scheduled, c.id});
    c.scheduled.reset();
}

inline std::optional<std::chrono::steady_clock::time_point> chat::next_wakeup() const {
    std::optional<std::chrono::steady_clock::time_point> next;
    if (!wakeups_.empty())
        next = wakeups_.begin()->first;
    if (!graces_.empty() && (!next || graces_.begin()->first < *next))
        next = graces_.begin()->first;
    return next;
}

inline void chat::tick(const moment& now, actions& out) {
    while (!graces_.empty() && graces_.begin()->first <= now.steady) {
        const std::uint64_t serial = graces_.begin()->second;
        graces_.erase(graces_.begin());
        expire(serial, now, out);
    }
    while (!wakeups_.empty() && wakeups_.begin()->first <= now.steady) {
        const conn_id id = wakeups_.begin()->second;
        wakeups_.erase(wakeups_.begin());
        client* c = find(id);
        if (!c)
            continue;
        c->scheduled.reset();
        wake(*c, now, out);
        if ((c = find(id)) != nullptr)
            schedule(*c);
    }
}

inline void chat::wake(client& c, const moment& now, actions& out) {
    if (c.closing)
        return;
    if (c.nick.empty() && !c.gone && now.steady >= c.connected + limits_.nickname_timeout) {
        ++hits_.nickname_timeouts;
        refuse(c, errc::nickname_timeout,
               "no nickname was chosen within " +
                   std::to_string(limits_.nickname_timeout.count()) +
                   " ms; closing the connection",
               out);
        c.gone = true;
        return close(c, out);
    }
    const auto silence = now.steady - c.last_input;
    const auto limit = idle_limit(c);
    if (limit.count() != 0 && silence >= limit) {
        ++hits_.idle_timeouts;
        return expel(c, errc::idle_timeout, leave_reason::timeout,
                     "nothing received for " + std::to_string(limit.count()) +
                         " ms; closing the connection",
                     now, out);
    }
    if (pings(c) && !c.pinged && silence >= limits_.ping_interval) {
        c.pinged = true;
        ++hits_.pings_sent;
        send(c, ping_event{}, out);
    }
}

inline void chat::stop(std::chrono::milliseconds flush, const moment& now, actions& out) {
    if (stopping_)
        return;
    stopping_ = true;
    stop_flush_ = flush;
    log("shutdown: closing " + std::to_string(clients_.size()) + " connection(s)", out);
    const std::string time = time_text(now);
    for (auto& [serial, t] : tickets_) // the disconnected ones in their grace period
        if (t.parked) {
            client gone;
            gone.nick = t.parked->nick;
            gone.key = t.parked->key;
            gone.rooms = t.parked->rooms;
            cluster_leave(gone, leave_reason::disconnected, time, out);
        }
    for (auto& [id, c] : clients_) {
        if (!c.gone && !c.nick.empty())
            cluster_leave(c, leave_reason::disconnected, time, out);
        if (c.closing)
            continue;
        send(c, notice_event{"shutdown", "the server is shutting down; goodbye"}, out);
        close(c, out, flush);
    }
}

// --- closing and telling --------------------------------------------------------------

// Stops reading, writes what is queued, then closes (the transport aborts
// after the flush deadline).
inline void chat::close(client& c, actions& out, std::optional<std::chrono::milliseconds> flush) {
    if (c.closing)
        return;
    c.closing = true;
    unschedule(c);
    out.push_back(close_action{c.id, flush.value_or(limits_.close_timeout)});
}

// Tells `c` why, announces its leave, and closes it once told.
inline void chat::expel(client& c, errc code, leave_reason reason, std::string message,
                        const moment& now, actions& out) {
    if (c.gone || c.closing)
        return;
    refuse(c, code, std::move(message), out);
    if (!c.nick.empty())
        leave_chat(c, reason, {}, now, out);
    c.gone = true;
    close(c, out);
}

inline void chat::refuse(client& c, errc code, std::string message, actions& out) {
    log("error: " + who(c) + ": " + std::string(to_string(code)) + ": " + message, out);
    send(c, error_event{std::string(to_string(code)), std::move(message)}, out);
}

inline void chat::send(const client& c, event ev, actions& out) const {
    out.push_back(send_action{c.id, std::move(ev)});
}

inline void chat::log(std::string line, actions& out) const {
    out.push_back(log_action{std::move(line)});
}

inline std::string chat::who(const client& c) const {
    return c.nick.empty() ? c.peer : c.nick + " (" + c.peer + ")";
}

// --- flood control --------------------------------------------------------------------

// Whether `c` may send an input of `bytes` now; drops it (and warns, or
// disconnects a persistent flooder) when not.
inline bool chat::admit(client& c, std::size_t bytes, const moment& now, actions& out) {
    const auto verdict = c.flood.admit(rates_, bytes, now.steady);
    if (verdict == flood_bucket::verdict::admitted)
        return true;
    ++hits_.rate_limited;
    if (c.flood.dropped() > limits_.max_dropped) {
        ++hits_.flood_disconnects;
        expel(c, errc::flooding, leave_reason::flooding,
              "still sending faster than " + rate_text() + " after " +
                  std::to_string(limits_.max_dropped) +
                  " inputs were dropped; closing the connection",
              now, out);
    } else if (verdict == flood_bucket::verdict::dropped_first) {
        refuse(c, errc::rate_limited,
               "too fast: at most " + rate_text() +
                   "; this input and the next ones until you slow down are dropped",
               out);
    }
    return false;
}

inline std::string chat::rate_text() const {
    return std::to_string(static_cast<long long>(rates_.messages_per_second)) + " inputs/s and " +
           std::to_string(static_cast<long long>(rates_.bytes_per_second)) + " bytes/s (bursts " +
           std::to_string(rates_.burst_messages) + " inputs, " +
           std::to_string(rates_.burst_bytes) + " bytes)";
}

} // namespace parley::chat::core

#endif
