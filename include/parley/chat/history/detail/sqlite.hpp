// parley: a thin RAII layer over SQLite's C API for sqlite_store: a
// connection, prepared statements, and SQLite result codes mapped to
// store_error.
#ifndef PARLEY_CHAT_HISTORY_DETAIL_SQLITE_HPP
#define PARLEY_CHAT_HISTORY_DETAIL_SQLITE_HPP

#include <parley/chat/history/store.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace parley::chat::history::detail {

inline store_error from_sqlite(int rc) noexcept {
    switch (rc & 0xff) {
    case SQLITE_NOTADB:
        return store_error::not_a_database;
    case SQLITE_CORRUPT:
        return store_error::corrupt_database;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return store_error::cannot_open;
    case SQLITE_READONLY:
        return store_error::read_only;
    case SQLITE_FULL:
        return store_error::disk_full;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return store_error::database_locked;
    default:
        return store_error::io_error;
    }
}

/// A failed SQLite call: the mapped error and SQLite's own words.
struct sqlite_failure {
    std::error_code ec;
    std::string detail;
};

class statement {
public:
    statement() = default;
    explicit statement(sqlite3_stmt* s) noexcept : s_(s) {}
    statement(statement&& o) noexcept : s_(std::exchange(o.s_, nullptr)) {}
    statement& operator=(statement&& o) noexcept {
        std::swap(s_, o.s_);
        return *this;
    }
    ~statement() { sqlite3_finalize(s_); }

    sqlite3_stmt* get() const noexcept { return s_; }
    void reset() noexcept {
        sqlite3_reset(s_);
        sqlite3_clear_bindings(s_);
    }
    void bind(int i, std::string_view v) noexcept {
        sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
    }
    void bind(int i, std::int64_t v) noexcept { sqlite3_bind_int64(s_, i, v); }
    std::int64_t int64(int col) const noexcept { return sqlite3_column_int64(s_, col); }
    std::string text(int col) const {
        auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
        return p ? std::string(p, static_cast<std::size_t>(sqlite3_column_bytes(s_, col))) : std::string();
    }

private:
    sqlite3_stmt* s_ = nullptr;
};

/// One connection. Every call that fails throws sqlite_failure; the store
/// catches it at the edge of each job.
class sqlite_db {
public:
    explicit sqlite_db(const std::string& path) {
        int rc = sqlite3_open_v2(path.c_str(), &db_,
                                 SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                                 nullptr);
        if (rc != SQLITE_OK) {
            sqlite_failure f{from_sqlite(rc), db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc)};
            sqlite3_close(db_);
            throw f;
        }
        sqlite3_extended_result_codes(db_, 1);
    }
    ~sqlite_db() { sqlite3_close(db_); }
    sqlite_db(const sqlite_db&) = delete;
    sqlite_db& operator=(const sqlite_db&) = delete;

    sqlite3* get() const noexcept { return db_; }

    [[noreturn]] void throw_failure(int rc) const { throw sqlite_failure{from_sqlite(rc), sqlite3_errmsg(db_)}; }
    void check(int rc) const {
        if (rc != SQLITE_OK && rc != SQLITE_ROW && rc != SQLITE_DONE)
            throw_failure(rc);
    }

    void exec(const char* sql) const { check(sqlite3_exec(db_, sql, nullptr, nullptr, nullptr)); }

    statement prepare(std::string_view sql) const {
        sqlite3_stmt* s = nullptr;
        check(sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                 SQLITE_PREPARE_PERSISTENT, &s, nullptr));
        return statement(s);
    }

    /// Steps `s`: true on a row, false when done.
    bool step(statement& s) const {
        int rc = sqlite3_step(s.get());
        if (rc == SQLITE_ROW)
            return true;
        if (rc == SQLITE_DONE)
            return false;
        throw_failure(rc);
    }

    /// The first column of the first row of `sql`, as text ("" if none).
    std::string query_text(const char* sql) const {
        statement s = prepare(sql);
        return step(s) ? s.text(0) : std::string();
    }
    std::int64_t query_int(const char* sql) const {
        statement s = prepare(sql);
        return step(s) ? s.int64(0) : 0;
    }

    std::int64_t changes() const noexcept { return sqlite3_changes64(db_); }

private:
    sqlite3* db_ = nullptr;
};

} // namespace parley::chat::history::detail

#endif
