// parley: a chat history store in an SQLite database file (Debian:
// libsqlite3-dev, link with -lsqlite3; only programs that include this
// header need it). One writer thread owns the database: append() puts a
// record on a bounded queue and returns; the writer commits the queue in
// batches (one transaction for up to batch_max_records, gathered for at most
// batch_delay), applies retention, and answers reads in queue order, so a
// read sees every append made before it. The caller's threads never touch
// the disk. docs/HISTORY.md describes the format and what a crash can lose.
//
// @code
// parley::chat::history::sqlite_store db(ioc.get_executor(), "history.db");
// db.async_load_rooms([&](std::error_code ec, std::vector<parley::chat::history::room_state> rooms) {
//     if (ec) { /* chat without history: ec.message() says why */ }
// });
// db.append({.room = "lobby", .seq = 1, .epoch = "e1", .id = 7, .from = "alice", .text = "hi",
//            .time = "2026-12-07T01:00:00.000Z", .unix_ms = 1796605200000});
// @endcode
#ifndef PARLEY_CHAT_HISTORY_SQLITE_STORE_HPP
#define PARLEY_CHAT_HISTORY_SQLITE_STORE_HPP

#include <parley/chat/history/store.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>
#include <variant>

namespace parley::chat::history {

namespace detail {
class sqlite_db;
struct store_statements;
}

/// Options of a sqlite_store.
struct sqlite_store_options {
    /// Records accepted and not yet committed (waiting or being written),
    /// at most. Beyond it append() refuses at once with
    /// store_error::queue_full (counted in records_refused): a disk that
    /// stalls costs at most this much memory, never the chat's time, and a
    /// process crash loses at most this many records.
    std::size_t max_queued_records = 16384;
    /// Reads, loads and flushes waiting for the writer, at most; beyond it
    /// they complete at once with store_error::queue_full.
    std::size_t max_queued_requests = 1024;
    /// A write transaction holds at most this many records...
    std::size_t batch_max_records = 512;
    /// ...and the writer waits at most this long after a record arrives for
    /// more to join its batch. While the disk keeps up, a process crash
    /// loses at most the records accepted in this window (docs/HISTORY.md).
    std::chrono::milliseconds batch_delay{20};
    /// Retention: messages kept per room (0: no limit). Applied in the
    /// batch that first writes a room, then whenever it grew by a sixteenth
    /// of this: a room holds at most 1/16 more between trims.
    std::uint64_t max_records_per_room = 10000;
    /// Retention: messages older than this are deleted (0: kept forever).
    /// Applied when the store opens and every retention_interval.
    std::chrono::seconds max_age{0};
    std::chrono::seconds retention_interval{60};
    /// How long the writer waits for a lock another process holds before it
    /// reports database_locked.
    std::chrono::milliseconds busy_timeout{2000};
    /// A read returns at most this many records, whatever its limit.
    std::size_t max_read_limit = 1000;
    /// The database file's size, at most, in bytes (0: no limit); reaching
    /// it is a disk_full failure. Rounded down to whole pages.
    std::uint64_t max_database_bytes = 0;
    /// Run SQLite's quick_check when opening (reads the whole file once, on
    /// the writer thread): a damaged file is refused as corrupt_database
    /// rather than failing later.
    bool check_on_open = true;
    /// Called once, on the store's executor, when the store fails (it then
    /// stores nothing more; see store_error::store_failed), with the error
    /// and a line for the log that names the file and SQLite's message.
    std::function<void(std::error_code, const std::string&)> on_failure;
};

/// A store (parley/chat/history/store.hpp) in one SQLite file, in WAL mode
/// with synchronous=NORMAL, held with an exclusive lock for as long as the
/// store is open (a second store or server on the same file gets
/// database_locked).
///
/// The file is opened on the writer thread as soon as the store is
/// constructed; if that fails, async_load_rooms() and reads complete with
/// the reason and the store is in the failed state.
///
/// When a write fails (disk full, I/O error, lock lost), the batch is lost
/// (records_lost), the failure is reported once (on_failure) and the store
/// enters the failed state: later appends are refused with store_failed,
/// so that what is stored stays a gapless prefix of each room. Reads keep
/// answering from what is stored. Reopening the file (a new store) starts
/// over.
class sqlite_store final : public store {
public:
    /// Opens (creating if need be) the database at `path` on a new writer
    /// thread. Completions run on `ex` by default.
    sqlite_store(executor_type ex, std::string path, sqlite_store_options options = {});

    /// Writes what is queued, closes the file and joins the writer: it may
    /// block for a disk's time, so on an I/O thread destroy the store after
    /// async_close() has completed (then it only joins a finished thread).
    ~sqlite_store() override;

    std::error_code append(record r) override;
    store_stats stats() const override;

    const std::string& path() const noexcept { return path_; }

protected:
    void start_load_rooms(rooms_callback cb) override;
    void start_read(range_query q, range_callback cb) override;
    void start_flush(done_callback cb) override;
    void start_close(done_callback cb) override;

private:
    struct load_job { rooms_callback cb; };
    struct read_job { range_query q; range_callback cb; };
    struct flush_job { done_callback cb; };
    struct close_job { done_callback cb; };
    using job = std::variant<record, load_job, read_job, flush_job, close_job>;

    template <class Job, class Fail>
    void enqueue(Job j, Fail fail_now);
    void run();
    void open();
    void process(std::deque<job>& jobs);
    void write(std::deque<job>& jobs, std::size_t from, std::size_t to);
    void answer(load_job& j);
    void answer(read_job& j);
    void apply_age_retention();
    void fail(std::error_code ec, const std::string& detail);

    std::string path_;
    sqlite_store_options options_;

    mutable std::mutex mutex_;
    std::condition_variable wake_;
    std::deque<job> jobs_;           // guarded by mutex_
    std::size_t queued_records_ = 0; // guarded by mutex_
    std::size_t queued_others_ = 0;  // guarded by mutex_
    bool closing_ = false;           // guarded by mutex_

    struct counters {
        std::atomic<std::uint64_t> queued{0}, stored{0}, refused{0}, rejected{0}, lost{0},
            expired{0}, batches{0}, failures{0}, reads{0}, last_batch_ns{0}, commit_ns_total{0};
        std::array<std::atomic<std::uint64_t>, commit_bucket_bounds.size()> commits_within{};
    };
    counters counters_;
    std::atomic<bool> failed_{false};

    // Only the writer thread touches these.
    std::unique_ptr<detail::sqlite_db> db_;
    std::unique_ptr<detail::store_statements> stmts_; // before db_ is closed: reset first
    std::error_code first_error_;
    std::map<std::string, room_state, std::less<>> rooms_;
    std::map<std::string, std::uint64_t, std::less<>> trimmed_at_; // last_seq at the last trim
    std::chrono::steady_clock::time_point next_retention_{};

    std::thread writer_; // last: started when everything above exists
};

} // namespace parley::chat::history

#include <parley/chat/history/impl/sqlite_store.hpp>

#endif
