// parley internals: the SQLite history store's schema and the statements
// it prepares once at open.
#ifndef PARLEY_CHAT_HISTORY_DETAIL_SQLITE_SCHEMA_HPP
#define PARLEY_CHAT_HISTORY_DETAIL_SQLITE_SCHEMA_HPP

#include <parley/chat/history/detail/sqlite.hpp>

#include <algorithm>
#include <cstdint>
#include <limits>

namespace parley::chat::history {

namespace detail {

// The schema, version 1 (PRAGMA user_version). The primary keys are the
// indexes: messages by (room, seq), rooms by name.
inline constexpr const char* schema_v1 =
    "CREATE TABLE IF NOT EXISTS rooms("
    " room TEXT PRIMARY KEY, epoch TEXT NOT NULL, last_seq INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS messages("
    " room TEXT NOT NULL, seq INTEGER NOT NULL, id INTEGER NOT NULL, sender TEXT NOT NULL,"
    " text TEXT NOT NULL, time TEXT NOT NULL, unix_ms INTEGER NOT NULL,"
    " PRIMARY KEY(room, seq)) WITHOUT ROWID;"
    "CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;"
    "PRAGMA user_version = 1;";

inline std::int64_t to_sql(std::uint64_t v) noexcept {
    return static_cast<std::int64_t>(std::min<std::uint64_t>(v, std::numeric_limits<std::int64_t>::max()));
}


// The statements, prepared once at open.
struct store_statements {
    explicit store_statements(const sqlite_db& db)
        : insert(db.prepare("INSERT INTO messages(room, seq, id, sender, text, time, unix_ms)"
                            " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)")),
          upsert_room(db.prepare("INSERT INTO rooms(room, epoch, last_seq) VALUES(?1, ?2, ?3)"
                                 " ON CONFLICT(room) DO UPDATE SET epoch = ?2, last_seq = ?3")),
          // By count, not by seq arithmetic: a room's seqs skip after a
          // crash (see open()).
          trim(db.prepare("DELETE FROM messages WHERE room = ?1 AND seq <= (SELECT seq FROM messages"
                          " WHERE room = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)")),
          drop_room(db.prepare("DELETE FROM messages WHERE room = ?1")),
          first_seq(db.prepare("SELECT min(seq) FROM messages WHERE room = ?1")),
          read_up(db.prepare("SELECT seq, id, sender, text, time, unix_ms FROM messages"
                             " WHERE room = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq ASC LIMIT ?4")),
          read_down(db.prepare("SELECT seq, id, sender, text, time, unix_ms FROM messages"
                               " WHERE room = ?1 AND seq > ?2 AND seq < ?3 ORDER BY seq DESC LIMIT ?4")),
          expire(db.prepare("DELETE FROM messages WHERE unix_ms < ?1")) {}
    statement insert, upsert_room, trim, drop_room, first_seq, read_up, read_down, expire;
};

} // namespace detail

} // namespace parley::chat::history

#endif // PARLEY_CHAT_HISTORY_DETAIL_SQLITE_SCHEMA_HPP
