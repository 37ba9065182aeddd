// parley chat cluster: the payloads chat servers send each other over a
// backplane (docs/SCALING.md), encoded and decoded.
//
// A payload is a kind letter and its fields, joined by '\n' (no field can
// hold one: names and texts exclude control characters):
//   M room nick text time      a room message
//   S room nick text time      the same, also kept in the room's shared history
//   N room nick text time seq epoch
//                              a stored message numbered by the backplane (the
//                              room's seq and epoch, the same on every instance)
//   J room nick time           a join
//   L room nick reason time    a leave
//   R old new time             a rename
//   P from to text time        a private message
//   Q nick                     a member left the whole chat
//   T instance serial nick     a member parked on `instance` (its resume ticket
//                              `serial`) resumed on the sender's instance
// A presence value is the nick, then its rooms, joined by '\n'.
//
// Anyone who can publish on the backplane's channel can send anything, so
// decoding checks every field as carefully as a client's input, and a
// kind's field list is data (one table per kind), not code.
#ifndef PARLEY_CHAT_CLUSTER_CODEC_HPP
#define PARLEY_CHAT_CLUSTER_CODEC_HPP

#include <parley/chat/nickname.hpp>
#include <parley/chat/protocol.hpp>
#include <parley/codec/utf8.hpp>

#include <algorithm>
#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace parley::chat::cluster {

/// How a field is checked when decoded.
enum class field_rule : unsigned char {
    nick,
    room,
    text,
    short_text,
    seq,   ///< decimal, 1 to 2^63-1, no leading zero (a room seq, a serial)
    epoch, ///< 1 to 32 of [0-9a-z-] (an epoch, an instance id)
};

struct message_payload {
    static constexpr char kind = 'M';
    std::string room, nick, text, time;
    bool operator==(const message_payload&) const = default;
};
struct stored_payload {
    static constexpr char kind = 'S';
    std::string room, nick, text, time;
    bool operator==(const stored_payload&) const = default;
};
struct numbered_payload {
    static constexpr char kind = 'N';
    std::string room, nick, text, time, seq, epoch;
    bool operator==(const numbered_payload&) const = default;
};
struct join_payload {
    static constexpr char kind = 'J';
    std::string room, nick, time;
    bool operator==(const join_payload&) const = default;
};
struct leave_payload {
    static constexpr char kind = 'L';
    std::string room, nick, reason, time;
    bool operator==(const leave_payload&) const = default;
};
struct rename_payload {
    static constexpr char kind = 'R';
    std::string old_nick, new_nick, time;
    bool operator==(const rename_payload&) const = default;
};
struct private_payload {
    static constexpr char kind = 'P';
    std::string from, to, text, time;
    bool operator==(const private_payload&) const = default;
};
struct quit_payload {
    static constexpr char kind = 'Q';
    std::string nick;
    bool operator==(const quit_payload&) const = default;
};

struct taken_payload {
    static constexpr char kind = 'T';
    std::string instance, serial, nick;
    bool operator==(const taken_payload&) const = default;
};

using payload = std::variant<message_payload, stored_payload, numbered_payload, join_payload,
                             leave_payload, rename_payload, private_payload, quit_payload,
                             taken_payload>;

/// One member of another instance, as its presence value says.
struct presence {
    std::string nick;
    std::vector<std::string> rooms;
    bool operator==(const presence&) const = default;
};

/// Most rooms read from one presence value (more are ignored).
inline constexpr std::size_t max_presence_rooms = 64;
/// Largest message text accepted from another instance.
inline constexpr std::size_t max_remote_text = 256 * 1024;

std::string encode(const payload& p);
/// nullopt when `text` is not a valid payload (unknown kind, wrong field
/// count, a field that breaks its rule).
std::optional<payload> decode(std::string_view text);

std::string encode_presence(std::string_view nick, const std::vector<std::string>& rooms);
std::optional<presence> decode_presence(std::string_view value);

/// Whether `field` passes `rule`.
bool field_ok(field_rule rule, std::string_view field);

} // namespace parley::chat::cluster

#include <parley/chat/cluster/impl/codec.hpp>

#endif
