// parley chat core: what goes into the chat's state machine and what comes
// out of it (parley/chat/core/core.hpp). No I/O types: a connection is a
// number, time is passed in, and everything to be done is an action that
// a transport (parley/chat/transport/) or the cluster link carries out.
#ifndef PARLEY_CHAT_CORE_TYPES_HPP
#define PARLEY_CHAT_CORE_TYPES_HPP

#include <parley/chat/backplane.hpp>
#include <parley/chat/protocol.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace parley::chat::core {

/// A connection, as the transports number it (never reused).
using conn_id = std::uint64_t;

/// "Now", passed to every input: the steady clock for deadlines and flood
/// control, the wall clock for the times written in events.
struct moment {
    std::chrono::steady_clock::time_point steady{};
    std::chrono::system_clock::time_point wall{};
    static moment now() { return {std::chrono::steady_clock::now(), std::chrono::system_clock::now()}; }
};

/// What a transport says of a new connection.
struct arrival {
    std::string peer;    ///< "127.0.0.1:54321", for logs and client_info
    std::string address; ///< the remote IP, counted per address; may be empty
    /// A person at a terminal (line mode): the longer idle deadline, no
    /// pings (a person cannot be asked to answer them).
    bool interactive = false;
};

/// Why a connection ended (a transport's error mapped by its adapter).
enum class departure : unsigned char {
    closed,        ///< the peer closed (FIN), or the server closed it
    error,         ///< reset, network error, broken protocol
    slow_consumer, ///< its outbound queue overflowed
    write_timeout, ///< its socket accepted nothing for the write deadline
};

/// Bounds the core enforces (a subset of server_options; see there).
struct options {
    std::string prompt;
    std::string server_name;
    std::string default_room = "lobby";
    std::string access_token;
    std::size_t max_frame_bytes = default_max_frame_bytes;
    std::size_t max_message_bytes = default_max_message_bytes;
    std::size_t max_line_bytes = default_max_line_bytes;
    std::size_t max_clients = 1024;
    std::size_t max_clients_per_address = 32;
    std::size_t max_rooms_per_client = 16;
    std::size_t history_messages = 0; ///< per room, kept here (0: none)
    std::size_t history_bytes = 0;
    std::size_t shared_history = 0;   ///< kept by the backplane instead (0: none)
    std::size_t held_messages = 4096; ///< events held for a joiner awaiting history
    std::size_t held_bytes = 1024 * 1024;
    std::chrono::milliseconds nickname_timeout{60000};
    std::chrono::milliseconds idle_timeout{120000};
    std::chrono::milliseconds ping_interval{45000};
    std::chrono::milliseconds line_idle_timeout{1800000};
    std::chrono::milliseconds write_timeout{30000}; ///< for log lines only
    std::chrono::milliseconds close_timeout{2000};
    std::size_t queue_bytes = 1024 * 1024;    ///< for log lines only
    std::size_t queue_messages = 4096;        ///< for log lines only
    double messages_per_second = 20;
    std::size_t burst_messages = 60;
    double bytes_per_second = 64 * 1024;
    std::size_t burst_bytes = 256 * 1024;
    std::size_t max_dropped = 100;
    bool clustered = false; ///< a backplane is there: cluster actions are emitted
    /// The backplane numbers stored messages (seq and epoch shared by every
    /// instance, docs/SCALING.md): a room message is delivered, here too,
    /// when it comes back numbered (cluster_message()), or by store_failed().
    bool numbered = false;
    /// This instance's id on the backplane. With `numbered` and resume on,
    /// a parked session is also kept by the backplane, so that a client can
    /// resume on any instance (cluster_park, cluster_take).
    std::string instance;

    // Offsets, resume and paging (docs/PROTOCOL.md §8).
    /// Fills `n` bytes with secure random bytes (resume tokens, epochs).
    /// Empty: no resume tokens are given, and epochs come from a counter
    /// and the start time. The core has no randomness of its own.
    std::function<void(unsigned char*, std::size_t)> random;
    /// How long a disconnected client's nickname and rooms wait for its
    /// resume (0: its leave is announced at once, as without resume).
    std::chrono::milliseconds resume_grace{120000};
    /// Each room keeps at least this many of its last messages (and
    /// bytes) for resume and /history, even with history_messages 0;
    /// the larger of the two bounds applies, the join replay still sends
    /// only history_messages.
    std::size_t resume_messages = 1000;
    std::size_t resume_bytes = 256 * 1024;
    /// Most messages one /history answer carries (the default limit is
    /// half of it).
    std::size_t history_page = 100;
    /// A history store keeps every room's messages (docs/HISTORY.md):
    /// each message is also a store_append action, a room's position
    /// (epoch, seq) and its join-replay tail outlive its members, and
    /// /history reads the store (store_read) beyond what memory keeps.
    bool stored = false;
    /// With a store: a resume whose gap in a room (the room's seq minus the
    /// client's) is at most this many messages reads the part memory no
    /// longer holds from the store (0: resume reads memory only). Beyond
    /// it the room is not recovered, as without a store.
    std::size_t resume_store_messages = 10000;
    /// One store read of a resume: at most this many messages, and the
    /// messages given to the client from one answer at most this many
    /// bytes (history_size); the next read is asked for once they are
    /// sent (the server waits until the client's queue has drained).
    std::size_t resume_store_page = 256;
    std::size_t resume_store_page_bytes = 256 * 1024;
};

/// Members of a room, shared (copy on write) with the actions that
/// deliver to them so that a publish copies no list.
using member_list = std::shared_ptr<const std::vector<conn_id>>;

// --- actions --------------------------------------------------------------------

/// Deliver `ev` to one connection.
struct send_action {
    conn_id to;
    event ev;
};
/// Deliver `ev` to each of `to` (encoded once per encoding they need).
struct publish_action {
    member_list to;
    event ev;
};
/// Stop reading, write what is queued, then close; abort after `flush`.
struct close_action {
    conn_id id;
    std::chrono::milliseconds flush;
};
/// Close now, dropping what is queued (a joiner that held too much).
struct abort_action {
    conn_id id;
};
/// A line for the server's log.
struct log_action {
    std::string line;
};

/// Toward the other instances (parley/chat/cluster/link.hpp).
struct cluster_publish {
    std::string payload;
};
struct cluster_store {
    std::string room, payload;
};
struct cluster_presence {
    std::string key, value;
};
struct cluster_release {
    std::string key;
};
/// Answered by core::nick_claimed(conn, serial, result).
struct cluster_claim {
    conn_id conn;
    std::uint64_t serial;
    std::string key;
};
/// Answered by core::history_read(serial, payloads).
struct cluster_read_history {
    std::uint64_t serial;
    std::string room;
};

/// A parked session (docs/PROTOCOL.md §8.3), kept by the backplane for
/// `grace` for a resume on any instance, found by its token only.
struct cluster_park {
    std::string token;
    std::uint64_t serial;
    std::string key, record, current; // record: a presence value (nick, rooms)
    std::chrono::milliseconds grace;
};
/// The parked session of `token` ended here: the backplane forgets it.
struct cluster_unpark {
    std::string token;
};
/// Takes (once) the parked session of `token`, and its nickname, for
/// `conn`; answered by core::ticket_taken().
struct cluster_take {
    conn_id conn;
    std::uint64_t serial;
    std::string token;
};

/// Toward the history store (options::stored): keep this message.
/// `unix_ms` is its time in milliseconds since 1970 (retention by age).
struct store_append {
    message_event message;
    std::int64_t unix_ms = 0;
};
/// Read `room`'s stored messages with seq below `before` (0: the newest),
/// the last `limit` of them. Answered by core::stored_read(serial, page).
struct store_read {
    std::uint64_t serial;
    std::string room;
    std::uint64_t before = 0;
    std::size_t limit = 0;
    /// Messages after this seq, oldest first (0: the newest `limit` before
    /// `before`). A resume's read (see options::resume_store_messages).
    std::uint64_t after = 0;
    /// A resume's read is for this connection: the answer will be sent to
    /// it, so the server asks the store once its outbound queue has drained
    /// (0: a /history page, asked at once).
    conn_id for_client = 0;
};

/// The answer to a store_read.
struct stored_page {
    std::string epoch;           ///< the room's, as stored
    std::uint64_t first_seq = 0; ///< the oldest seq the store holds (0: none)
    std::vector<message_event> messages; ///< oldest first
};
/// A room as the store holds it, given to core::restore() at start.
struct stored_room {
    std::string room, epoch;
    std::uint64_t last_seq = 0;
    std::vector<message_event> tail; ///< its newest messages, oldest first
};

using action = std::variant<send_action, publish_action, close_action, abort_action, log_action,
                            cluster_publish, cluster_store, cluster_presence, cluster_release,
                            cluster_claim, cluster_read_history, cluster_park, cluster_unpark,
                            cluster_take, store_append, store_read>;
using actions = std::vector<action>;

/// Counters the core keeps (read with core::hits()).
struct core_hits {
    std::uint64_t nickname_timeouts = 0, idle_timeouts = 0, pings_sent = 0, server_full = 0,
                  address_full = 0, rate_limited = 0, flood_disconnects = 0, access_denied = 0,
                  lines_too_long = 0, frames_too_large = 0, resumes = 0, resumes_failed = 0,
                  graces_expired = 0, history_store_reads = 0, history_epochs_restarted = 0,
                  resume_store_reads = 0, resume_store_messages = 0;
};

/// One connection, as client_info shows it.
struct client_view {
    conn_id id = 0;
    std::string nick, peer;
    bool interactive = false;
    std::vector<std::string> rooms;
    std::string current_room;
};

} // namespace parley::chat::core

#endif
