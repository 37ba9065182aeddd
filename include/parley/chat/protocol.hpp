// parley chat: the chat protocol (docs/PROTOCOL.md) as types and pure
// functions, free of any I/O, for servers and clients alike.
//
// Client to server, each frame (or, in line mode, each line) is one UTF-8
// text input: first a nickname, then messages and /commands. parse_input()
// turns an input into a typed command.
//
// Server to client, each frame is one event, a JSON object with a "type";
// in line mode each event is one or more readable lines. to_json() and
// to_line() encode events; parse_event() decodes one on the client side.
#ifndef PARLEY_CHAT_PROTOCOL_HPP
#define PARLEY_CHAT_PROTOCOL_HPP

#include <parley/chat/json.hpp>
#include <parley/chat/nickname.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace parley::chat {

/// The protocol version in the welcome event. Additions that old clients
/// can ignore (new event types, new fields) do not change it.
inline constexpr int protocol_version = 1;

/// The seed's greeting: "connected! please enter a nickname".
inline constexpr std::string_view default_prompt = "连接成功!,请输入昵称";

/// Default limits (see server_options).
inline constexpr std::size_t default_max_frame_bytes = 64 * 1024;
inline constexpr std::size_t default_max_message_bytes = 4096;
inline constexpr std::size_t default_max_line_bytes = 8192;
/// The server never sends a frame larger than this; clients should accept
/// frames up to this size.
inline constexpr std::size_t max_event_bytes = 1024 * 1024;
/// A members event names at most this many members (and counts them all).
inline constexpr std::size_t max_listed_members = 1000;

// --- error codes and leave reasons --------------------------------------------

/// The machine-readable `code` of an error event.
enum class errc : unsigned char {
    nickname_invalid,  ///< the nickname breaks a rule (the message says which)
    nickname_taken,    ///< someone else has it (compared ignoring case)
    nickname_required, ///< a command other than /help or /quit before a nickname
    nickname_timeout,  ///< no nickname in time; the server closes the connection
    invalid_utf8,      ///< the input was not valid UTF-8
    invalid_text,      ///< the text contains control characters
    empty_message,     ///< nothing to send
    message_too_long,  ///< text over max_message_bytes
    line_too_long,     ///< line mode: a line over the line limit (it was discarded)
    frame_too_large,   ///< a frame over max_frame_bytes; the server closes the connection
    unknown_command,   ///< a /command the server does not know
    bad_arguments,     ///< a command with missing or extra arguments (the message has usage)
    room_invalid,      ///< a room name breaks a rule
    not_in_room,       ///< text with no current room, or /part of a room one is not in
    no_such_room,      ///< /list of a room that does not exist
    no_such_nick,      ///< /msg to a nickname nobody has
    too_many_rooms,    ///< /join over the per-client room limit
    server_full,       ///< too many connections; the server closes this one
    access_required,   ///< the server needs an access token first (/auth TOKEN)
    access_denied,     ///< a wrong access token; the server closes the connection
    too_many_connections, ///< too many connections from one address; closed
    idle_timeout,      ///< nothing received within the idle deadline; closed
    rate_limited,      ///< inputs faster than the flood limits; this one was dropped
    flooding,          ///< kept flooding after rate_limited; the server closes the connection
    resume_failed,     ///< /resume with a token that is unknown, used or expired; choose a nickname
};

/// The code as it appears on the wire ("nickname_taken").
std::string_view to_string(errc code) noexcept;

/// Why someone left a room, as it appears in leave events.
enum class leave_reason : unsigned char {
    part,          ///< /part ROOM
    quit,          ///< QUIT (any case) or /quit
    disconnected,  ///< the client closed the connection
    error,         ///< the connection failed (reset, network error) or broke the protocol
    slow_consumer, ///< the client did not read fast enough and was disconnected
    timeout,       ///< the client sent nothing within the idle deadline
    flooding,      ///< the client kept sending faster than the flood limits
};

std::string_view to_string(leave_reason reason) noexcept;

// --- events (server to client) ------------------------------------------------

/// First event on every connection: asks for a nickname.
struct welcome_event {
    static constexpr std::string_view type = "welcome";
    std::string prompt;
    int protocol = protocol_version;
    std::string server;                  ///< "parley/0.1.0"
    std::uint64_t max_frame_bytes = 0;   ///< largest frame the server reads
    std::uint64_t max_message_bytes = 0; ///< largest message text
    std::uint64_t max_nickname_length = 0;
    bool operator==(const welcome_event&) const = default;
};

/// The nickname was accepted; chat commands may follow.
struct nick_accepted_event {
    static constexpr std::string_view type = "nick_accepted";
    std::string nick;
    /// A secret for `/resume` after a lost connection (single use; a
    /// resume gives a new one). Empty (and not sent) when the server
    /// offers no resume.
    std::string resume_token;
    bool operator==(const nick_accepted_event&) const = default;
};

/// A message to a room, sent to every member, the sender included.
struct message_event {
    static constexpr std::string_view type = "message";
    std::uint64_t id = 0; ///< increases with every message and private message
    std::string room, from, text;
    std::string time; ///< RFC 3339, UTC, milliseconds: 2024-05-01T12:34:56.789Z
    /// The room's position: 1, 2, 3, ... with no gap within one `epoch`
    /// (a new epoch: the room's history was lost). 0 and empty: not given.
    std::uint64_t seq = 0;
    std::string epoch;
    bool operator==(const message_event&) const = default;
};

/// A private message, sent to its target and (as confirmation) to its sender.
struct private_event {
    static constexpr std::string_view type = "private";
    std::uint64_t id = 0;
    std::string from, to, text, time;
    bool operator==(const private_event&) const = default;
};

/// `nick` joined `room` (sent to every member, the joiner included).
struct join_event {
    static constexpr std::string_view type = "join";
    std::string room, nick, time;
    bool operator==(const join_event&) const = default;
};

/// `nick` left `room`; `reason` is one of leave_reason's names (clients
/// must accept others).
struct leave_event {
    static constexpr std::string_view type = "leave";
    std::string room, nick, reason, time;
    bool operator==(const leave_event&) const = default;
};

/// `old_nick` is now `new_nick` ("old" and "new" on the wire).
struct rename_event {
    static constexpr std::string_view type = "rename";
    std::string old_nick, new_nick, time;
    bool operator==(const rename_event&) const = default;
};

/// Who is in `room`, in joining order: at most max_listed_members names,
/// `count` of them in all.
struct members_event {
    static constexpr std::string_view type = "members";
    std::string room;
    std::vector<std::string> members;
    std::uint64_t count = 0;
    /// The room's last message seq and its epoch (empty: not given).
    std::uint64_t seq = 0;
    std::string epoch;
    bool operator==(const members_event&) const = default;
};

/// One room's part of a resumed event.
struct resumed_room {
    std::string room, epoch;
    std::uint64_t from = 0; ///< the position the client gave (0: none)
    std::uint64_t seq = 0;  ///< the room's position now: what the client has after the resume
    bool recovered = false; ///< every message after `from` was sent again
    bool operator==(const resumed_room&) const = default;
};

/// Ends a /resume: the nickname and rooms are back and the missed
/// messages were sent before it. `recovered`: none is missing.
struct resumed_event {
    static constexpr std::string_view type = "resumed";
    std::string nick;
    bool recovered = false;
    std::vector<resumed_room> rooms;
    bool operator==(const resumed_event&) const = default;
};

/// A page of a room's history (/history): messages oldest first; `more`:
/// older ones remain (ask with before= the first one's seq).
struct history_event {
    static constexpr std::string_view type = "history";
    std::string room, epoch;
    std::vector<message_event> messages;
    bool more = false;
    bool operator==(const history_event&) const = default;
};

/// Something the client sent was refused. The connection stays usable
/// unless the code says otherwise (nickname_timeout, frame_too_large,
/// server_full).
struct error_event {
    static constexpr std::string_view type = "error";
    std::string code, message;
    bool operator==(const error_event&) const = default;
};

/// A message from the server itself: `code` is "help", "goodbye",
/// "shutdown" or "info"; `text` may span several lines.
struct notice_event {
    static constexpr std::string_view type = "notice";
    std::string code, text;
    bool operator==(const notice_event&) const = default;
};

/// Keepalive: the server heard nothing from the client for a while and
/// asks for a sign of life. Framed clients answer with the input `/pong`
/// (any input will do) before the server's idle deadline.
struct ping_event {
    static constexpr std::string_view type = "ping";
    bool operator==(const ping_event&) const = default;
};

/// An event of a type this version does not know: clients ignore it.
struct unknown_event {
    std::string type;
    bool operator==(const unknown_event&) const = default;
};

using event = std::variant<welcome_event, nick_accepted_event, message_event, private_event,
                           join_event, leave_event, rename_event, members_event, error_event,
                           notice_event, ping_event, resumed_event, history_event,
                           unknown_event>;

/// The event's "type" string.
std::string_view type_of(const event& e) noexcept;

/// The event as the JSON payload of one frame.
std::string to_json(const event& e);

/// The event as it is shown in line mode: one or more lines separated by
/// "\n", without a final newline (see docs/PROTOCOL.md for the formats).
std::string to_line(const event& e);

/// Decodes the JSON payload of one frame. Returns nullopt and sets `error`
/// when it is not a JSON object with a string "type" and the fields that
/// type requires (with the right JSON types); unknown fields are ignored,
/// an unknown type gives unknown_event. Throws nothing but std::bad_alloc.
std::optional<event> parse_event(std::string_view payload, std::string& error);

/// The current time as the protocol writes it: RFC 3339 in UTC with
/// milliseconds, "2024-05-01T12:34:56.789Z".
std::string format_time(std::chrono::system_clock::time_point t);

// --- inputs (client to server) ------------------------------------------------

/// Text for the current room (a leading "//" was unescaped to "/").
struct say_input {
    std::string_view text;
};
/// /nick NEW
struct nick_input {
    std::string_view nick;
};
/// /join ROOM
struct join_input {
    std::string_view room;
};
/// /part [ROOM]; empty means the current room.
struct part_input {
    std::string_view room;
};
/// /list [ROOM]; empty means the current room.
struct list_input {
    std::string_view room;
};
/// /msg NICK TEXT
struct msg_input {
    std::string_view nick, text;
};
/// /help
struct help_input {};
/// QUIT in any case, or /quit
struct quit_input {};
/// /pong: the answer to a ping event. Does nothing but show that the
/// client is alive (allowed before a nickname too).
struct pong_input {};
/// /resume TOKEN [ROOM=SEQ[@EPOCH] ...]: the first input of a new
/// connection, for a client that lost its previous one. `positions` is
/// the rest of the line, checked by the core.
struct resume_input {
    std::string_view token, positions;
};
/// /history ROOM [before=SEQ] [limit=N]
struct history_input {
    std::string_view room;
    std::uint64_t before = 0; ///< 0: from the newest
    std::uint64_t limit = 0;  ///< 0: the server's default
};
/// An input that cannot be understood.
struct bad_input {
    errc code;
    std::string message;
};

using input = std::variant<say_input, nick_input, join_input, part_input, list_input, msg_input,
                           help_input, quit_input, pong_input, resume_input, history_input,
                           bad_input>;

/// Parses one input (a frame's payload or a line). Views point into `text`.
/// Checks UTF-8 and command syntax; message text is checked by
/// message_text_problem().
input parse_input(std::string_view text);

/// True for an input that quits: "QUIT" in any case, or "/quit" (with or
/// without arguments, any case).
bool is_quit_input(std::string_view text) noexcept;

/// Why `text` cannot be sent as a message, or nullopt: empty, over
/// `max_bytes`, not UTF-8, or containing a control character other than
/// TAB (C0, DEL, C1: they could rewrite a terminal or break a line).
std::optional<std::pair<errc, std::string>> message_text_problem(std::string_view text,
                                                                 std::size_t max_bytes);

/// The text of the help notice.
std::string help_text();

/// What a client sends to have `text` delivered as a message verbatim:
/// `text`, with a second '/' in front if it starts with '/'.
std::string escape_message(std::string_view text);

} // namespace parley::chat

#include <parley/chat/impl/protocol.hpp>
#include <parley/chat/impl/protocol_lines.hpp>
#include <parley/chat/impl/inputs.hpp>

#endif
