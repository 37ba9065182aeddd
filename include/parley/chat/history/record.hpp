// parley: what a room's history is made of: stored messages (the fields of
// the "message" event of docs/PROTOCOL.md plus the room's position), the
// state of a room's history, and a range query over it. Plain values, no
// I/O; parley/chat/history/store.hpp stores and reads them.
#ifndef PARLEY_CHAT_HISTORY_RECORD_HPP
#define PARLEY_CHAT_HISTORY_RECORD_HPP

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace parley::chat::history {

/// One message to a room, as stored.
struct record {
    std::string room{};
    /// The room's position: 1, 2, 3, ... with no gap within one epoch.
    std::uint64_t seq = 0;
    /// The room's epoch: changes when the room's history is lost, and the
    /// seqs then start again. Filled in by reads from the room's state.
    std::string epoch;
    std::uint64_t id = 0; ///< the event's id (server-wide)
    std::string from, text;
    std::string time; ///< as in the event: RFC 3339, UTC, milliseconds
    /// The same instant in milliseconds since 1970-01-01 UTC: what retention
    /// by age compares.
    std::int64_t unix_ms = 0;
    bool operator==(const record&) const = default;
};

/// Where a room's history stands.
struct room_state {
    std::string room{};
    std::string epoch;
    std::uint64_t last_seq = 0; ///< the seq of the room's latest message
    bool operator==(const room_state&) const = default;
};

/// A read of one room's history.
///  - only `after`: the oldest messages with seq > after, oldest first
///    (resume: "everything after what I saw");
///  - only `before`: the newest messages with seq < before, oldest first
///    (paging back: `/history ROOM before=SEQ`);
///  - neither: the newest messages; both: seq in (after, before), oldest first.
/// At most `limit` messages (and never more than the store's cap).
struct range_query {
    std::string room{};
    std::optional<std::uint64_t> after{};
    std::optional<std::uint64_t> before{};
    std::size_t limit = 100;
};

/// The answer to a range_query.
struct range {
    /// The room's epoch and last seq now (empty epoch, 0: unknown room).
    room_state state;
    /// The oldest seq still held for the room (0: none held). A reader that
    /// saw up to seq S missed nothing that is lost if first_seq <= S + 1.
    std::uint64_t first_seq = 0;
    std::vector<record> records; ///< oldest first
};

/// Whether `r` may follow `state` in a room's history: the same epoch and
/// the next seq, or a new epoch (the room's history starts again; any seq
/// from 1 up is taken as its start). A record with seq 0, or with an empty
/// room or epoch, never may.
inline bool may_follow(const room_state& state, const record& r) noexcept {
    if (r.seq == 0 || r.room.empty() || r.epoch.empty())
        return false;
    if (r.epoch != state.epoch)
        return true;
    return r.seq == state.last_seq + 1;
}

} // namespace parley::chat::history

#endif
