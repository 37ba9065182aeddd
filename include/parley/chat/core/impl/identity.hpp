// parley chat core: the access token, nicknames (claimed across the
// cluster when there is one), quitting, and inputs held meanwhile.
#ifndef PARLEY_CHAT_CORE_IMPL_IDENTITY_HPP
#define PARLEY_CHAT_CORE_IMPL_IDENTITY_HPP

#include <parley/constant_time.hpp>

namespace parley::chat::core {

// --- access and nicknames -------------------------------------------------------------

// Before anything else when the server needs an access token: only
// /auth TOKEN, /help, /pong and /quit. One wrong token closes the connection.
inline void chat::on_access(client& c, std::string_view text, const moment& now, actions& out) {
    if (is_quit_input(text))
        return goodbye(c, now, out);
    static constexpr std::string_view auth = "/auth";
    const bool is_auth = text.substr(0, auth.size()) == auth &&
                         (text.size() == auth.size() || text[auth.size()] == ' ');
    if (!is_auth) {
        const parley::chat::input in = detail::parse_strict(text);
        if (std::holds_alternative<pong_input>(in))
            return; // the answer to a ping (§4.1): a sign of life
        if (std::holds_alternative<help_input>(in))
            return send(c, notice_event{"help", help_text()}, out);
        if (auto* bad = std::get_if<bad_input>(&in); bad && bad->code == errc::bad_arguments &&
                                                     bad->message.starts_with("usage: /help"))
            return refuse(c, bad->code, bad->message, out);
        return refuse(c, errc::access_required,
                      "this server requires an access token: send /auth TOKEN first, "
                      "then your nickname",
                      out);
    }
    std::string_view token = text.substr(auth.size());
    if (!token.empty())
        token.remove_prefix(1);
    if (constant_time_equal(token, limits_.access_token)) {
        c.authorized = true;
        return send(c, notice_event{"info", "access granted; choose a nickname"}, out);
    }
    ++hits_.access_denied;
    refuse(c, errc::access_denied, "wrong access token; closing the connection", out);
    c.gone = true;
    close(c, out);
}

inline void chat::on_nickname(client& c, std::string_view text, const moment& now, actions& out) {
    if (is_quit_input(text))
        return goodbye(c, now, out);
    if (!text.empty() && text.front() == '/') {
        const parley::chat::input in = detail::parse_strict(text);
        if (std::holds_alternative<pong_input>(in))
            return; // a sign of life, nothing more
        if (std::holds_alternative<help_input>(in))
            return send(c, notice_event{"help", help_text()}, out);
        if (auto* r = std::get_if<resume_input>(&in))
            return resume(c, r->token, r->positions, now, out);
        if (auto* bad = std::get_if<bad_input>(&in);
            bad && bad->code == errc::bad_arguments &&
            (bad->message.starts_with("usage: /help") || bad->message.starts_with("usage: /resume")))
            return refuse(c, bad->code, bad->message, out);
        return refuse(c, errc::nickname_required,
                      "choose a nickname first: send it on its own (only /help and /quit "
                      "work before that)",
                      out);
    }
    if (auto problem = nickname_problem(text))
        return refuse(c, errc::nickname_invalid, *problem + "; choose another", out);
    std::string key = nickname_key(text);
    if (nick_in_use(key))
        return refuse(c, errc::nickname_taken,
                      "the nickname \"" + std::string(text) + "\" is taken; choose another", out);
    if (limits_.clustered)
        return claim(c, std::string(text), std::move(key), out);
    accept_nick(c, std::string(text), std::move(key), now, out);
}

inline void chat::accept_nick(client& c, std::string nick, std::string key, const moment& now,
                              actions& out) {
    c.nick = std::move(nick);
    c.key = std::move(key);
    nicks_[c.key] = c.id;
    issue_ticket(c);
    send(c, nick_accepted_event{c.nick, token_of(c)}, out);
    join_room(c, limits_.default_room, now, out);
}

inline bool chat::nick_in_use(const std::string& key) const {
    return nicks_.contains(key) || claiming_.contains(key) || remote_.contains(key) ||
           parked_nicks_.contains(key);
}

inline void chat::forget_nick(client& c) {
    auto it = nicks_.find(c.key);
    if (it != nicks_.end() && it->second == c.id)
        nicks_.erase(it);
}

inline void chat::claim(client& c, std::string nick, std::string key, actions& out) {
    c.claiming = true;
    client_extra& x = c.more();
    x.claim_serial = ++next_serial_;
    x.claim_nick = std::move(nick);
    claiming_.insert(key);
    claims_.emplace(x.claim_serial, key);
    out.push_back(cluster_claim{c.id, x.claim_serial, std::move(key)});
}

inline void chat::nick_claimed(conn_id id, std::uint64_t serial, claim_result result,
                               const moment& now, actions& out) {
    auto claim = claims_.find(serial);
    if (claim == claims_.end())
        return;
    std::string key = std::move(claim->second);
    claims_.erase(claim);
    claiming_.erase(key);
    client* c = find(id);
    if (!c || !c->extra || c->extra->claim_serial != serial) { // closed meanwhile
        if (result == claim_result::claimed)
            out.push_back(cluster_release{key});
        return;
    }
    c->claiming = false;
    std::string nick = std::move(c->extra->claim_nick);
    if (c->gone || c->closing || stopping_) {
        if (result == claim_result::claimed)
            out.push_back(cluster_release{key});
    } else if (result == claim_result::taken) {
        refuse(*c, errc::nickname_taken,
               "the nickname \"" + nick + "\" is taken on another server" +
                   (c->nick.empty() ? "; choose another" : ""),
               out);
    } else {
        if (result == claim_result::unavailable)
            log("nick: " + nick + " (" + c->peer +
                    ") checked on this server only: the backplane is down",
                out);
        if (c->nick.empty())
            accept_nick(*c, nick, key, now, out);
        else
            rename(*c, nick, key, now, out);
    }
    if ((c = find(id)) != nullptr)
        replay_held(*c, now, out);
}

inline void chat::goodbye(client& c, const moment& now, actions& out) {
    if (!c.nick.empty())
        leave_chat(c, leave_reason::quit, {}, now, out);
    c.gone = true;
    send(c, notice_event{"goodbye", c.nick.empty() ? "goodbye" : "goodbye, " + c.nick}, out);
    close(c, out);
}

// Inputs that arrive while a nickname claim or a history read is under
// way wait for it, in order (bounded).
inline void chat::hold(client& c, std::string_view text, actions& out) {
    if (c.extra && c.extra->held.size() >= 256) {
        if (c.claiming)
            return refuse(c, errc::nickname_required,
                          "still confirming your nickname with the other servers; input dropped",
                          out);
        return refuse(c, errc::rate_limited, "still loading the room's history; input dropped",
                      out);
    }
    c.more().held.emplace_back(text);
}

inline void chat::replay_held(client& c, const moment& now, actions& out) {
    const conn_id id = c.id;
    std::vector<std::string> pending;
    if (c.extra) {
        pending = std::move(c.extra->held);
        c.extra->held.clear();
        if (!c.claiming && !c.extra->wait && !c.extra->resuming)
            c.extra.reset(); // nothing rare under way: an idle client carries none of it
    }
    for (std::size_t i = 0; i < pending.size(); ++i) {
        client* cur = find(id);
        if (!cur || cur->closing)
            return;
        if (cur->claiming || cur->wait() || cur->resuming()) { // waiting again: the rest waits, first
            auto& held = cur->more().held;
            held.insert(held.begin(), std::make_move_iterator(pending.begin() + i),
                             std::make_move_iterator(pending.end()));
            return;
        }
        const std::string text = std::move(pending[i]);
        input(id, text, now, out);
    }
}

} // namespace parley::chat::core

#endif
