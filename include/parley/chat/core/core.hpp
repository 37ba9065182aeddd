// parley chat core: the chat as a state machine, free of I/O.
//
// Nicknames, rooms and who is in them, commands, room history, flood
// control, the access token, deadlines and the leave-notice rules of
// docs/PROTOCOL.md live here and only here. The core takes what happened
// (a connection arrived, sent a text input, finished, closed; time passed;
// another instance sent a payload or answered a request) and appends what
// must happen to an `actions` list: events for one connection or a room,
// closes, log lines, payloads for the other instances. It holds no socket,
// no executor, no thread and no lock: a caller serialises its calls (see
// docs/CHAT_DESIGN.md for the server's) and carries the actions out.
//
// @code
// core::chat c(limits);
// core::actions out;
// c.connect(1, {.peer = "test"}, core::moment::now(), out);   // -> welcome
// c.input(1, "alice", core::moment::now(), out);              // -> nick_accepted, join...
// @endcode
#ifndef PARLEY_CHAT_CORE_CORE_HPP
#define PARLEY_CHAT_CORE_CORE_HPP

#include <parley/chat/cluster/codec.hpp>
#include <parley/chat/core/flood.hpp>
#include <parley/chat/core/types.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <deque>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace parley::chat::core {

/// The chat's state machine. Not thread-safe: one caller at a time.
class chat {
public:
    explicit chat(options l);

    const core::options& settings() const noexcept { return limits_; }

    // --- a connection's life -------------------------------------------------------

    /// A connection arrived: welcomed, or refused (server full, too many from
    /// its address, stopping) and closed.
    void connect(conn_id id, arrival a, const moment& now, actions& out);
    /// One text input (a frame's payload, a line without its end).
    void input(conn_id id, std::string_view text, const moment& now, actions& out);
    /// The transport could not decode an input: `code` is line_too_long
    /// (the line was discarded, the connection stays) or frame_too_large
    /// (the stream cannot be resynchronised: told why, then closed).
    void input_error(conn_id id, errc code, std::string description, const moment& now,
                     actions& out);
    /// The peer will send nothing more (FIN) but may still read: its leave
    /// is announced as `disconnected`, then it gets what is queued.
    void peer_finished(conn_id id, const moment& now, actions& out);
    /// The connection is closed; `why` words the cause for the log.
    void closed(conn_id id, departure cause, std::string why, const moment& now, actions& out);
    /// Messages to `id` dropped by overflow_policy::drop_oldest.
    void dropped(conn_id id, std::size_t count, actions& out);

    // --- time ---------------------------------------------------------------------

    /// When tick() has something to do next (a nickname or idle deadline,
    /// a ping); nullopt: nothing scheduled.
    std::optional<std::chrono::steady_clock::time_point> next_wakeup() const;
    /// Deadlines and pings due by `now`.
    void tick(const moment& now, actions& out);

    /// Tells every client the server shuts down and closes it within
    /// `flush`; refuses everything after. Idempotent.
    void stop(std::chrono::milliseconds flush, const moment& now, actions& out);
    bool stopping() const noexcept { return stopping_; }

    // --- the other instances (docs/SCALING.md) -------------------------------------

    void cluster_message(std::string_view instance, std::string_view payload, const moment& now,
                         actions& out);
    void cluster_snapshot(const std::vector<std::pair<std::string, std::vector<std::string>>>& all,
                          actions& out);
    void instance_lost(std::string_view instance, const std::vector<std::string>& values,
                       const moment& now, actions& out);
    void nick_conflict(const std::vector<std::string>& keys, actions& out);
    void rejoined(const moment& now, actions& out);
    /// This instance's presence entries (key, value).
    presence_entries local_presence() const;
    /// The answer to a cluster_claim action.
    void nick_claimed(conn_id id, std::uint64_t serial, claim_result result, const moment& now,
                      actions& out);
    /// The answer to a cluster_read_history action (nullopt: not read).
    void history_read(std::uint64_t serial, std::optional<std::vector<std::string>> payloads,
                      const moment& now, actions& out);
    /// With options::numbered: the stored payload of a cluster_store action
    /// could not be stored; it is delivered here only, under a local epoch.
    void store_failed(std::string_view payload, const moment& now, actions& out);
    /// The answer to a cluster_take action: `reached` false when the
    /// backplane could not be asked; `t` the session, if the token named one.
    void ticket_taken(conn_id id, std::uint64_t serial, bool reached,
                      std::optional<taken_ticket> t, const moment& now, actions& out);

    // --- a history store (options::stored; docs/HISTORY.md) ------------------------

    /// At start, before any connection: the rooms' stored positions and
    /// newest messages. Each room continues at its last seq, in its epoch.
    void restore(std::vector<stored_room> rooms, actions& out);
    /// The answer to a store_read (nullopt: not read; /history is then
    /// answered from memory, a resume goes on from memory). `now` is for
    /// the inputs a resume held meanwhile (the short form reads the clock).
    void stored_read(std::uint64_t serial, std::optional<stored_page> page, const moment& now,
                     actions& out);
    void stored_read(std::uint64_t serial, std::optional<stored_page> page, actions& out);
    /// The store did not take a message of `room` (its queue was full): the
    /// stored history of the room has a hole, so the room starts a new epoch.
    void store_refused(const std::string& room, const moment& now, actions& out);
    /// The store failed (`why`, for the log): from now on history is kept in
    /// memory only, and every room starts a new epoch. Idempotent.
    void store_lost(const std::string& why, const moment& now, actions& out);
    /// Whether messages go to the store (options::stored, and no failure).
    bool storing() const noexcept { return limits_.stored && !store_lost_; }

    // --- what it knows ---------------------------------------------------------------

    std::vector<client_view> clients() const;
    const core_hits& hits() const noexcept { return hits_; }
    std::size_t connections() const noexcept { return clients_.size(); }
    /// Rooms with members here, and connections in at least one of them.
    std::size_t room_count() const noexcept { return rooms_.size(); }
    std::size_t member_count() const noexcept;
    /// Members of `room` on this instance (empty list if none).
    member_list members(const std::string& room) const;

private:
    struct history_wait;
    struct catch_up;

    // The rarely used parts of a client: a nickname claim or a resume
    // taken from the backplane, a join waiting for shared history, a
    // resume under way, and the inputs held meanwhile. Allocated on first
    // use (client::more()), so that an idle client does not carry them.
    struct client_extra {
        std::uint64_t claim_serial = 0;
        std::uint64_t take_here = 0;        // the serial of its session parked here (0: none)
        std::string claim_nick;
        std::string take_positions;         // a /resume's positions, while its token is taken
        std::vector<std::string> held;      // inputs while claiming or waiting
        std::shared_ptr<history_wait> wait; // a join waiting for shared history
        std::shared_ptr<catch_up> resuming; // a resume reading the store (impl/resume.hpp)
    };

    // A connection; every idle client holds one, so it is laid out small:
    // the flags together at the end, the rare parts behind `extra`.
    struct client {
        conn_id id = 0;
        std::uint64_t ticket = 0;       // its resume token's serial (0: none)
        std::uint64_t dropped = 0;      // messages dropped under drop_oldest
        std::string peer;               // arrival::peer
        // Its entry in per_address_ (nodes do not move), or null.
        std::pair<const std::string, std::size_t>* address = nullptr;
        std::string nick, key;          // empty until a nickname is accepted
        std::vector<std::string> rooms; // joining order
        std::string current;            // where plain text goes
        std::unique_ptr<client_extra> extra;
        std::chrono::steady_clock::time_point connected{}, last_input{};
        std::optional<std::chrono::steady_clock::time_point> scheduled;
        flood_bucket flood;
        std::optional<leave_reason> close_reason; // set when the server closes it
        bool interactive = false;       // arrival::interactive
        bool authorized = true;
        bool gone = false;              // left the chat: never announce it twice
        bool closing = false;           // a close was asked for
        bool claiming = false;          // a nickname claim is with the backplane
        bool pinged = false;            // since the last input

        client_extra& more() {
            if (!extra)
                extra = std::make_unique<client_extra>();
            return *extra;
        }
        history_wait* wait() const noexcept { return extra ? extra->wait.get() : nullptr; }
        catch_up* resuming() const noexcept { return extra ? extra->resuming.get() : nullptr; }
        bool holds_inputs() const noexcept { return extra && !extra->held.empty(); }
    };

    struct held_event {
        event ev;
        bool covered_by_read; // see impl/cluster.hpp
    };
    struct history_wait {
        std::uint64_t serial = 0;
        conn_id id = 0;
        std::string room;
        join_event joined;          // the joiner's own, sent after the history
        std::uint64_t first_id = 0; // ids first_id+1 .. +shared_history are the history's
        std::deque<held_event> held;
        std::size_t held_bytes = 0;
        bool answered = false;
        // A resume of another instance's session (impl/cluster_resume.hpp):
        // one read per room, all answered before it completes.
        struct room_read {
            std::string room;
            std::uint64_t serial = 0;
            bool answered = false;
            std::optional<std::vector<std::string>> history;
            bool given = false; // the client gave its position in the room
            std::uint64_t from = 0;
            std::string epoch;
        };
        std::vector<room_read> resume;
    };

    struct room {
        std::shared_ptr<std::vector<conn_id>> members = std::make_shared<std::vector<conn_id>>();
        std::deque<message_event> history; // for the join replay, resume and /history
        std::size_t history_bytes = 0;
        std::uint64_t seq = 0;  // the last message's
        std::string epoch;
        std::size_t parked = 0; // disconnected members in their grace period
        bool numbered = false;  // seq and epoch are the backplane's (options::numbered)
    };

    // What a disconnected client in its grace period keeps (its ticket's
    // `parked`): allocated when it is parked, so that a live client's
    // ticket is no larger than its secret and connection.
    struct parked_session {
        std::string nick, key, peer, current, cause;
        std::vector<std::string> rooms;
        std::uint64_t dropped = 0;
        std::chrono::steady_clock::time_point deadline{};
        leave_reason reason = leave_reason::disconnected;
    };
    // A resume token's state: held by a live client (conn != 0, parked
    // null), or by a disconnected one in its grace period (conn == 0,
    // parked set). The secret is 24 random bytes in hex, held in place
    // (no heap block).
    static constexpr std::size_t secret_bytes = 24;
    struct ticket {
        std::array<char, 2 * secret_bytes> secret_hex{}; // compared in constant time
        conn_id conn = 0;
        std::unique_ptr<parked_session> parked;
        std::string_view secret() const noexcept {
            return {secret_hex.data(), secret_hex.size()};
        }
    };

    // A room with no member whose history the store keeps: its position,
    // and its newest messages for the next joiner's replay.
    struct dormant_room {
        std::string epoch;
        std::uint64_t seq = 0;
        std::deque<message_event> tail;
    };
    struct page_wait {
        conn_id id = 0;
        std::string room;
        std::uint64_t before = 0, limit = 0;
    };

    struct remote_member {
        std::string instance, nick;
        std::vector<std::string> rooms;
    };

    // impl/core.hpp: connections, time, closing, flood control;
    // impl/identity.hpp: access, nicknames, held inputs.
    client* find(conn_id id);
    void schedule(client& c);
    void unschedule(client& c);
    std::optional<std::chrono::steady_clock::time_point> due(const client& c) const;
    void wake(client& c, const moment& now, actions& out);
    std::chrono::milliseconds idle_limit(const client& c) const;
    bool pings(const client& c) const;
    void close(client& c, actions& out, std::optional<std::chrono::milliseconds> flush = {});
    void expel(client& c, errc code, leave_reason reason, std::string message, const moment& now,
               actions& out);
    void refuse(client& c, errc code, std::string message, actions& out);
    void send(const client& c, event ev, actions& out) const;
    void log(std::string line, actions& out) const;
    std::string who(const client& c) const;
    bool admit(client& c, std::size_t bytes, const moment& now, actions& out);
    std::string rate_text() const;
    void on_access(client& c, std::string_view text, const moment& now, actions& out);
    void on_nickname(client& c, std::string_view text, const moment& now, actions& out);
    void accept_nick(client& c, std::string nick, std::string key, const moment& now,
                     actions& out);
    void rename(client& c, std::string nick, std::string key, const moment& now, actions& out);
    void claim(client& c, std::string nick, std::string key, actions& out);
    bool nick_in_use(const std::string& key) const;
    void forget_nick(client& c);
    void goodbye(client& c, const moment& now, actions& out);
    void hold(client& c, std::string_view text, actions& out);
    void replay_held(client& c, const moment& now, actions& out);

    // impl/commands.hpp: commands and rooms.
    void dispatch(client& c, std::string_view text, const moment& now, actions& out);
    void say(client& c, std::string_view text, const moment& now, actions& out);
    void change_nick(client& c, std::string_view nick, const moment& now, actions& out);
    void join_room(client& c, const std::string& room, const moment& now, actions& out);
    void part(client& c, std::string_view name, const moment& now, actions& out);
    void list(client& c, std::string_view name, actions& out);
    void whisper(client& c, std::string_view nick, std::string_view text, const moment& now,
                 actions& out);
    void leave_chat(client& c, leave_reason reason, const std::string& cause, const moment& now,
                    actions& out);
    void add_member(client& c, const std::string& room);
    void remove_member(client& c, const std::string& room);
    members_event members_of(const std::string& room) const;
    void publish(const std::string& room, event ev, bool keep_in_history, bool covered_by_read,
                 const moment& now, actions& out);
    void remember(room& r, const message_event& ev);
    static std::string printable(std::string_view text);
    static std::string time_text(const moment& now);

    // impl/resume.hpp: offsets, tickets, the grace period, resume, paging.
    std::string random_hex(std::size_t bytes);
    std::string new_epoch();
    void issue_ticket(client& c);
    std::string token_of(const client& c) const;
    void drop_ticket(client& c);
    bool park(client& c, leave_reason reason, std::string cause, const moment& now,
              actions& out);
    void expire(std::uint64_t serial, const moment& now, actions& out);
    void resume(client& c, std::string_view token, std::string_view positions,
                const moment& now, actions& out);
    void history_page(client& c, const history_input& h, actions& out, bool may_read_store = true);
    std::vector<const message_event*> replay_of(const room& r) const;
    void catch_up_rooms(client& c, const moment& now, actions& out);
    void resume_page(client& c, std::optional<stored_page> page, const moment& now, actions& out);
    void settle_resume(client& c);

    // impl/cluster_resume.hpp: resuming on any instance (options::instance).
    struct resume_position {
        std::uint64_t seq = 0;
        std::string epoch;
    };
    using positions = std::map<std::string, resume_position>;
    // A resume under way (impl/resume.hpp): the client's rooms, one at a
    // time; a room whose gap memory no longer holds is read from the store
    // first, a page at a time. Until its room is caught up the client is
    // no member of it (the ticket's `parked` keeps the room), so nothing
    // of the room reaches it out of order; what the room says meanwhile is
    // in memory (and in the store) by the time the client gets to it.
    struct catch_up {
        std::vector<std::string> rooms; // the ticket's, in joining order
        std::string current;
        positions given;
        std::size_t next_room = 0;
        bool started = false;       // rooms[next_room] looked at
        bool tracking = false;      // its position was given and valid
        bool whole = true;          // no seq skipped so far
        bool store_ok = false;      // may (still) read the store
        std::uint64_t next = 0;     // the next seq the client needs
        std::uint64_t from_store = 0;
        std::string epoch;          // the room's when its turn came
        resumed_room room;          // its entry in `done`
        resumed_event done;
        std::size_t resent = 0;
        std::uint64_t serial = 0;   // the store read under way (0: none)
    };

    std::optional<positions> positions_of(client& c, std::string_view text, actions& out);
    void restore(client& c, std::uint64_t serial, const positions& given, const moment& now,
                 actions& out);
    bool cross_resume() const;
    void park_in_cluster(const ticket& t, std::uint64_t serial, actions& out) const;
    void take(client& c, std::string_view token, std::string_view positions,
              std::uint64_t here, actions& out);
    void resume_taken(client& c, const taken_ticket& t, cluster::presence p, const positions& given,
                      const moment& now, actions& out);
    void abandon_taken(const taken_ticket& t, const moment& now, actions& out);
    void drop_taken(std::string_view instance, std::uint64_t serial, const std::string& nick,
                    actions& out);
    void resume_read(const std::shared_ptr<history_wait>& w, std::uint64_t serial,
                     std::optional<std::vector<std::string>> payloads, const moment& now,
                     actions& out);
    void complete_resume(client& c, const std::shared_ptr<history_wait>& w, const moment& now,
                         actions& out);
    bool read_answered(const history_wait& w, const event& ev) const;

    // impl/storage.hpp: the history store.
    void start_history(const std::string& name, room& r);
    void retire(std::map<std::string, room>::iterator it);
    void store_message(const message_event& m, const moment& now, actions& out);
    bool page_from_store(client& c, const std::string& name, std::uint64_t before,
                         std::size_t limit, actions& out);
    void restart_epoch(room& r);

    // impl/cluster.hpp: the other instances and shared history.
    void cluster_send(const std::string& payload, actions& out) const;
    void cluster_presence_of(const client& c, actions& out) const;
    void cluster_leave(const client& c, leave_reason reason, const std::string& time,
                       actions& out);
    bool remote_whisper(client& c, std::string_view nick, std::string_view text,
                        const moment& now, actions& out);
    bool remote_in(const std::string& room) const;
    void add_remote_members(members_event& e) const;
    void note_malformed(actions& out);
    void await_history(client& c, const std::string& room, join_event joined, actions& out);
    void complete_wait(client& c, const std::shared_ptr<history_wait>& w,
                       const std::optional<std::vector<std::string>>& history, const moment& now,
                       actions& out);
    std::optional<std::pair<std::uint64_t, std::string>>
    send_history(const client& c, const history_wait& w, const std::vector<std::string>& history,
                 actions& out);
    bool place(room& r, message_event& m);
    void cancel_wait(client& c);
    void hold_for_waiting(const std::string& room, const event& ev, bool covered_by_read,
                          std::unordered_set<conn_id>* told, const moment& now, actions& out);
    void send_or_hold(client& to, event ev, const moment& now, actions& out);
    void hold_event(client& c, const std::shared_ptr<history_wait>& w, const event& ev,
                    bool covered_by_read, const moment& now, actions& out);

    core::options limits_;
    flood_rates rates_;
    std::unordered_map<conn_id, client> clients_;
    std::unordered_map<std::string, std::size_t> per_address_;
    std::unordered_map<std::string, conn_id> nicks_; // by nickname_key()
    std::map<std::string, room> rooms_;
    std::set<std::pair<std::chrono::steady_clock::time_point, conn_id>> wakeups_;
    std::uint64_t next_id_ = 0, next_serial_ = 0;
    std::unordered_map<std::string, remote_member> remote_; // other instances' members, by key
    std::unordered_set<std::string> claiming_;              // keys being claimed
    std::unordered_map<std::uint64_t, std::string> claims_; // their keys, by serial
    std::unordered_map<std::string, std::vector<std::shared_ptr<history_wait>>> waits_; // by room
    std::unordered_map<std::uint64_t, std::shared_ptr<history_wait>> reads_; // by serial
    std::unordered_map<std::uint64_t, ticket> tickets_;           // by serial
    std::unordered_map<std::string, std::uint64_t> parked_nicks_; // key -> serial
    std::set<std::pair<std::chrono::steady_clock::time_point, std::uint64_t>> graces_;
    std::map<std::string, dormant_room> dormant_;                 // see dormant_room
    std::unordered_map<std::uint64_t, page_wait> pages_;          // store reads, by serial
    std::unordered_map<std::uint64_t, conn_id> resume_reads_;     // a resume's, by serial
    bool store_lost_ = false;
    std::uint64_t epochs_ = 0;
    std::string epoch_base_; // without `random`: the start time, for epochs
    bool malformed_logged_ = false;
    bool stopping_ = false;
    std::chrono::milliseconds stop_flush_{0};
    core_hits hits_;
};

} // namespace parley::chat::core

#include <parley/chat/core/impl/core.hpp>
#include <parley/chat/core/impl/commands.hpp>
#include <parley/chat/core/impl/identity.hpp>
#include <parley/chat/core/impl/cluster.hpp>
#include <parley/chat/core/impl/resume.hpp>
#include <parley/chat/core/impl/cluster_resume.hpp>

#include <parley/chat/core/impl/storage.hpp>

#endif
