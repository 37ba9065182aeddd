// parley: the interface of a chat history store, and its errors. A store
// keeps rooms' messages somewhere slow (a disk, a network) without ever
// making its caller wait: append() only queues, and every read completes
// later, through the caller's executor (Asio's universal model: a callback,
// a bound strand, use_awaitable, ...). parley/chat/history/sqlite_store.hpp
// is the SQLite one; docs/HISTORY.md describes the storage.
//
// @code
// store.append(rec);                          // queued, never blocks
// store.async_read({.room = "lobby", .after = 41, .limit = 100},
//     [](std::error_code ec, parley::chat::history::range r) { /* on my executor */ });
// @endcode
#ifndef PARLEY_CHAT_HISTORY_STORE_HPP
#define PARLEY_CHAT_HISTORY_STORE_HPP

#include <parley/chat/history/record.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <system_error>
#include <type_traits>
#include <vector>

namespace parley::chat::history {

/// Errors of a history store (category "parley.history").
enum class store_error {
    /// The store's queue is full (the disk is slower than the chat):
    /// append() did not take the record (counted in stats().records_refused),
    /// or a read or flush was not queued.
    queue_full = 1,
    /// The store failed earlier (see its first error) and stores nothing
    /// more; reads of what it holds may still work.
    store_failed,
    /// The store was closed.
    closed,
    /// The file exists but is not an SQLite database.
    not_a_database,
    /// The database is damaged (its integrity check failed).
    corrupt_database,
    /// The file cannot be opened or created (missing or read-only
    /// directory, permissions).
    cannot_open,
    /// The database or its directory is read-only.
    read_only,
    /// The disk (or the configured size limit) is full.
    disk_full,
    /// Another process holds the database (a second server on one file).
    database_locked,
    /// The database was written by another program or another version.
    incompatible_schema,
    /// Any other failure of the storage (the detail is logged).
    io_error,
    /// append(): the record's seq does not follow the room's last one in the
    /// same epoch (or its room or epoch is empty); it was not stored.
    seq_out_of_order,
};

namespace detail {

class store_category_impl final : public std::error_category {
public:
    const char* name() const noexcept override { return "parley.history"; }
    std::string message(int ev) const override;
    std::error_condition default_error_condition(int ev) const noexcept override;
};

} // namespace detail

/// The category of every store_error.
inline const std::error_category& store_category() noexcept {
    static const detail::store_category_impl instance;
    return instance;
}

inline std::error_code make_error_code(store_error e) noexcept {
    return {static_cast<int>(e), store_category()};
}

/// The upper bounds, in seconds, of the buckets of store_stats::commits_within.
inline constexpr std::array<double, 12> commit_bucket_bounds{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5};

/// Counters of a store, readable from any thread.
struct store_stats {
    std::uint64_t records_queued = 0;   ///< accepted by append()
    std::uint64_t records_stored = 0;   ///< committed to storage
    std::uint64_t records_refused = 0;  ///< append() said queue_full, store_failed or closed
    std::uint64_t records_rejected = 0; ///< seq_out_of_order
    std::uint64_t records_lost = 0;     ///< accepted, then lost to a storage failure
    std::uint64_t records_expired = 0;  ///< removed by retention
    std::uint64_t batches = 0;          ///< write transactions committed
    std::uint64_t failures = 0;         ///< storage operations that failed
    std::uint64_t reads = 0;            ///< range reads answered
    std::uint64_t queued_now = 0;       ///< records accepted, not yet written
    std::uint64_t last_batch_ns = 0;    ///< how long the last commit took
    /// Committed write transactions by how long they took (a batch's
    /// statements and its COMMIT): commits_within[i] counts those above
    /// commit_bucket_bounds[i-1] and at most commit_bucket_bounds[i]; the
    /// ones above the last bound are the rest of `batches`.
    std::array<std::uint64_t, commit_bucket_bounds.size()> commits_within{};
    std::uint64_t commit_ns_total = 0; ///< the sum of every committed batch's time
    bool failed = false;                ///< in the failed state (store_error::store_failed)
};

/// A history store. Thread-safe: every member may be called from any thread.
///
/// Completion handlers are never called from within the initiating function;
/// they run on the handler's associated executor, by default the executor
/// the store was given, through asio::post (the store's own threads never
/// run them). Until then the operation counts as outstanding work of that
/// executor, so io_context::run() does not return before it completes.
class store {
public:
    using executor_type = asio::any_io_executor;

    virtual ~store() = default;
    store(const store&) = delete;
    store& operator=(const store&) = delete;

    /// The executor completions run on by default.
    executor_type get_executor() const { return executor_; }

    /// Queues `r` for writing, in order after every record queued before it,
    /// and returns at once: {} (queued), queue_full, store_failed or closed
    /// (not queued; counted). A record that does not follow its room
    /// (may_follow) is dropped by the writer and counted as rejected. A write
    /// that fails later is counted and reported once (for sqlite_store:
    /// sqlite_store_options::on_failure).
    virtual std::error_code append(record r) = 0;

    /// Every room's state, as held at completion (after every append queued
    /// before). Signature: void(std::error_code, std::vector<room_state>).
    template <asio::completion_token_for<void(std::error_code, std::vector<room_state>)> Token>
    auto async_load_rooms(Token&& token);

    /// One room's messages, as range_query says (after every append queued
    /// before). Signature: void(std::error_code, range).
    template <asio::completion_token_for<void(std::error_code, range)> Token>
    auto async_read(range_query q, Token&& token);

    /// Completes when every record queued before is written (or lost: the
    /// error says why). Signature: void(std::error_code).
    template <asio::completion_token_for<void(std::error_code)> Token>
    auto async_flush(Token&& token);

    /// Writes what is queued, then stops: later appends are refused with
    /// `closed`, later operations complete with `closed`. Completes when the
    /// storage is closed. Signature: void(std::error_code).
    template <asio::completion_token_for<void(std::error_code)> Token>
    auto async_close(Token&& token);

    /// The counters now.
    virtual store_stats stats() const = 0;

protected:
    explicit store(executor_type ex) : executor_(std::move(ex)) {}

    /// Type-erased completions as implementations see them: they may be
    /// called on any thread, exactly once; they post to the caller.
    using rooms_callback = std::function<void(std::error_code, std::vector<room_state>)>;
    using range_callback = std::function<void(std::error_code, range)>;
    using done_callback = std::function<void(std::error_code)>;

    virtual void start_load_rooms(rooms_callback cb) = 0;
    virtual void start_read(range_query q, range_callback cb) = 0;
    virtual void start_flush(done_callback cb) = 0;
    virtual void start_close(done_callback cb) = 0;

private:
    executor_type executor_;
};

} // namespace parley::chat::history

template <>
struct std::is_error_code_enum<parley::chat::history::store_error> : std::true_type {};

#include <parley/chat/history/impl/store.hpp>

#endif
