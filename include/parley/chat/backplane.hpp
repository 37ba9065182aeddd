// parley chat: the backplane interface that joins several chat servers
// into one chat (docs/SCALING.md). A chat server with a backplane
// publishes every room event, private message and presence change to the
// other instances through it, and delivers what they publish to its own
// members, encoded once per instance as for its own events.
//
// The interface carries opaque payloads and presence entries; the chat
// server decides what they mean. parley ships one implementation, on Redis
// (parley/chat/redis_backplane.hpp, which needs hiredis); this header needs
// nothing beyond the standard library.
#ifndef PARLEY_CHAT_BACKPLANE_HPP
#define PARLEY_CHAT_BACKPLANE_HPP

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace parley::chat {

/// Outcome of backplane::claim_nick().
enum class claim_result : unsigned char {
    claimed,     ///< the nickname is this instance's across the cluster
    taken,       ///< another instance holds it
    unavailable, ///< the backplane is down: only local uniqueness was checked
};

/// A snapshot of a backplane's counters.
struct backplane_counters {
    bool connected = false;      ///< linked to the others right now
    std::uint64_t outages = 0;   ///< times the link was lost (or not there at start)
    std::uint64_t reconnects = 0; ///< times it came back after an outage
    std::uint64_t published = 0; ///< payloads sent to the other instances
    std::uint64_t received = 0;  ///< payloads received from other instances
    std::uint64_t dropped = 0;   ///< payloads not sent because the link was down
    std::uint64_t malformed = 0; ///< payloads received that could not be understood
    std::uint64_t nick_conflicts = 0; ///< nicknames found taken elsewhere on reconnect
    std::uint64_t instances_lost = 0; ///< other instances this one found dead and cleaned up
};

/// A parked session taken by backplane::take_ticket().
struct taken_ticket {
    std::string instance;     ///< where it was parked
    std::uint64_t serial = 0; ///< its ticket's serial there
    std::string key, record, current;
};

/// One instance's presence: member key -> presence value (opaque to the
/// backplane).
using presence_entries = std::vector<std::pair<std::string, std::string>>;

/// What a backplane calls in the chat server. Each may be called from the
/// backplane's own executor, concurrently with the chat server's threads,
/// and never with a lock of the backplane held.
struct backplane_events {
    /// A payload another instance published (never this instance's own).
    std::function<void(std::string_view instance, std::string_view payload)> on_message;
    /// This instance's presence, asked for on every (re)connection so that
    /// the shared presence can be rebuilt after an outage.
    std::function<presence_entries()> local_presence;
    /// The presence of every other live instance, after a (re)connection.
    std::function<void(std::vector<std::pair<std::string, std::vector<std::string>>> instances)>
        on_snapshot;
    /// Another instance stopped heartbeating and was removed: the values
    /// of its presence entries, whose leaves this instance must announce
    /// (exactly one surviving instance is told).
    std::function<void(std::string_view instance, std::vector<std::string> values)>
        on_instance_lost;
    /// Keys this instance holds locally that another instance claimed
    /// during an outage (both keep them; see docs/SCALING.md).
    std::function<void(std::vector<std::string> keys)> on_conflict;
    /// This instance is back after the others took it for dead and
    /// announced its members' leaves: the chat server announces them again.
    std::function<void()> on_rejoined;
};

/// Publish out, receive in. Every function may be called from any thread
/// and returns at once; the work is done on the backplane's executor.
/// Payloads from one instance reach the others in the order published.
class backplane {
public:
    virtual ~backplane() = default;

    /// This instance's id, unique in the cluster.
    virtual const std::string& instance_id() const = 0;
    /// Starts connecting; events are delivered until stop().
    virtual void start(backplane_events events) = 0;
    /// Withdraws this instance's presence and nicknames, then disconnects.
    /// After it the backplane holds no work on its executor (once the
    /// withdrawal is written, or after a short timeout) and calls nothing.
    virtual void stop() = 0;

    /// Sends `payload` to every other instance (at most once; dropped and
    /// counted while the link is down).
    virtual void publish(std::string payload) = 0;
    /// Claims the nickname `key` for this instance; `done` is called on the
    /// backplane's executor.
    virtual void claim_nick(std::string key, std::function<void(claim_result)> done) = 0;
    /// Releases a nickname this instance claimed and its presence entry.
    virtual void release_nick(std::string key) = 0;
    /// Sets this instance's presence entry for `key`.
    virtual void set_presence(std::string key, std::string value) = 0;

    virtual backplane_counters counters() const = 0;

    // --- Shared room history (optional; docs/SCALING.md) ---------------------
    //
    // A backplane may keep each room's recent messages for every instance.
    // The chat server then keeps no history of its own and reads a room's
    // from the backplane when a member joins it. The defaults keep none.

    /// Messages kept per room; 0 when this backplane keeps no history (the
    /// two functions below are then never called).
    virtual std::size_t history_length() const { return 0; }

    /// Like publish(), and appends `payload` to `room`'s history, in one
    /// atomic step: a read_history() sees the payload if and only if the
    /// publication precedes it.
    virtual void publish_stored(std::string room, std::string payload) {
        (void)room;
        publish(std::move(payload));
    }

    /// Whether publish_numbered() numbers stored messages (only when
    /// history_length() is not 0).
    virtual bool numbers_messages() const { return false; }

    /// Like publish_stored(), and numbers the message in its room: the
    /// backplane gives it the room's next seq and the room's epoch (kept by
    /// the backplane, the same for every instance), stores and publishes it
    /// as an N payload (parley/chat/cluster/codec.hpp) in one atomic step,
    /// and delivers that to this instance's on_message() too, in order with
    /// the others'. `failed` is called instead, on the backplane's executor,
    /// when the message was certainly not stored (link down, refused).
    virtual void publish_numbered(std::string room, std::string payload,
                                  std::function<void()> failed) {
        (void)failed;
        publish_stored(std::move(room), std::move(payload));
    }

    // --- Resume on any instance (optional; docs/SCALING.md) -------------------
    // Only called when numbers_messages() is true.

    /// Keeps a parked session for `ttl`, found by `token` only.
    virtual void park_ticket(std::string token, std::uint64_t serial, std::string key,
                             std::string record, std::string current,
                             std::chrono::milliseconds ttl) {
        (void)token, (void)serial, (void)key, (void)record, (void)current, (void)ttl;
    }
    /// Forgets the parked session of `token`.
    virtual void unpark_ticket(std::string token) { (void)token; }
    /// Result of take_ticket(): whether the backplane answered, and the
    /// session if `token` named one (nullopt: unknown, taken or expired).
    using take_handler = std::function<void(bool reached, std::optional<taken_ticket>)>;
    /// Takes the parked session of `token`, once: removes it, moves its
    /// nickname and presence entry to this instance, and tells the others
    /// (a T payload). `done` is called once, on the backplane's executor.
    virtual void take_ticket(std::string token, take_handler done) {
        (void)token;
        done(false, std::nullopt);
    }

    /// Result of read_history(): the payloads, oldest first; nullopt when
    /// the history could not be read (link down, timeout, too many reads).
    using history_handler = std::function<void(std::optional<std::vector<std::string>>)>;

    /// Reads `room`'s history (its last history_length() payloads at most).
    /// `done` is called once, on the backplane's executor, never from
    /// within this function, within a short bound of time (the
    /// implementation's timeout), unless stop() comes first. A successful
    /// result is ordered with on_message(): every payload delivered by
    /// on_message() before `done` was published before the read (so a
    /// stored one is in the result, unless older than what the history
    /// keeps), and every payload delivered after it was published after.
    virtual void read_history(std::string room, history_handler done) {
        (void)room;
        (void)done;
    }
};

} // namespace parley::chat

#endif
