// parley: bodies of parley/chat/history/sqlite_store.hpp.
#ifndef PARLEY_CHAT_HISTORY_IMPL_SQLITE_STORE_HPP
#define PARLEY_CHAT_HISTORY_IMPL_SQLITE_STORE_HPP

#include <parley/chat/history/detail/sqlite_schema.hpp>
#include <parley/detail/duration_buckets.hpp>

#include <asio/post.hpp>

#include <algorithm>
#include <limits>
#include <set>
#include <vector>

namespace parley::chat::history {

inline sqlite_store::sqlite_store(executor_type ex, std::string path, sqlite_store_options options)
    : store(std::move(ex)), path_(std::move(path)), options_(std::move(options)) {
    options_.batch_max_records = std::max<std::size_t>(options_.batch_max_records, 1);
    writer_ = std::thread([this] { run(); });
}

inline sqlite_store::~sqlite_store() {
    {
        std::lock_guard lock(mutex_);
        if (!closing_) {
            closing_ = true;
            jobs_.emplace_back(close_job{});
            ++queued_others_;
        }
    }
    wake_.notify_one();
    writer_.join();
}

inline std::error_code sqlite_store::append(record r) {
    bool wake = false;
    {
        std::lock_guard lock(mutex_);
        std::error_code ec;
        if (closing_)
            ec = store_error::closed;
        else if (failed_.load(std::memory_order_relaxed))
            ec = store_error::store_failed;
        else if (queued_records_ >= options_.max_queued_records)
            ec = store_error::queue_full;
        if (ec) {
            counters_.refused.fetch_add(1, std::memory_order_relaxed);
            return ec;
        }
        // The writer needs waking for the first record (it waits for any
        // job) and for the one that fills a batch (it waits for that or
        // its batch delay), not for each record between.
        wake = jobs_.empty() || queued_records_ + 1 == options_.batch_max_records;
        jobs_.emplace_back(std::move(r));
        ++queued_records_;
    }
    counters_.queued.fetch_add(1, std::memory_order_relaxed);
    if (wake)
        wake_.notify_one();
    return {};
}

template <class Job, class Fail>
void sqlite_store::enqueue(Job j, Fail fail_now) {
    std::error_code ec;
    {
        std::lock_guard lock(mutex_);
        if (closing_) {
            ec = store_error::closed;
        } else if (!std::is_same_v<Job, close_job> && queued_others_ >= options_.max_queued_requests) {
            ec = store_error::queue_full;
        } else {
            jobs_.emplace_back(std::move(j));
            ++queued_others_;
            if constexpr (std::is_same_v<Job, close_job>)
                closing_ = true;
        }
    }
    if (ec)
        fail_now(j, ec); // the callback posts: never completes inside the initiating function
    else
        wake_.notify_one();
}

inline void sqlite_store::start_load_rooms(rooms_callback cb) {
    enqueue(load_job{std::move(cb)}, +[](load_job& j, std::error_code ec) { j.cb(ec, {}); });
}

inline void sqlite_store::start_read(range_query q, range_callback cb) {
    enqueue(read_job{std::move(q), std::move(cb)}, +[](read_job& j, std::error_code ec) { j.cb(ec, {}); });
}

inline void sqlite_store::start_flush(done_callback cb) {
    enqueue(flush_job{std::move(cb)}, +[](flush_job& j, std::error_code ec) { j.cb(ec); });
}

inline void sqlite_store::start_close(done_callback cb) {
    enqueue(close_job{std::move(cb)}, +[](close_job& j, std::error_code ec) { j.cb(ec); });
}

inline store_stats sqlite_store::stats() const {
    store_stats s;
    s.records_queued = counters_.queued.load(std::memory_order_relaxed);
    s.records_stored = counters_.stored.load(std::memory_order_relaxed);
    s.records_refused = counters_.refused.load(std::memory_order_relaxed);
    s.records_rejected = counters_.rejected.load(std::memory_order_relaxed);
    s.records_lost = counters_.lost.load(std::memory_order_relaxed);
    s.records_expired = counters_.expired.load(std::memory_order_relaxed);
    s.batches = counters_.batches.load(std::memory_order_relaxed);
    s.failures = counters_.failures.load(std::memory_order_relaxed);
    s.reads = counters_.reads.load(std::memory_order_relaxed);
    s.last_batch_ns = counters_.last_batch_ns.load(std::memory_order_relaxed);
    for (std::size_t b = 0; b < s.commits_within.size(); ++b)
        s.commits_within[b] = counters_.commits_within[b].load(std::memory_order_relaxed);
    s.commit_ns_total = counters_.commit_ns_total.load(std::memory_order_relaxed);
    s.failed = failed_.load(std::memory_order_relaxed);
    {
        std::lock_guard lock(mutex_);
        s.queued_now = queued_records_;
    }
    return s;
}

inline void sqlite_store::fail(std::error_code ec, const std::string& detail) {
    // Failed before counted: whoever sees the failure counted (a scrape)
    // finds append() refusing already.
    const bool already = failed_.exchange(true);
    counters_.failures.fetch_add(1, std::memory_order_release);
    if (already)
        return;
    first_error_ = ec;
    if (options_.on_failure)
        asio::post(get_executor(), [cb = options_.on_failure, ec,
                                    line = "history store " + path_ + ": " + ec.message() + " (" + detail + ")"] {
            cb(ec, line);
        });
}

inline void sqlite_store::run() {
    open();
    for (;;) {
        std::deque<job> jobs;
        {
            std::unique_lock lock(mutex_);
            if (options_.max_age.count() > 0 && db_)
                wake_.wait_until(lock, next_retention_, [&] { return !jobs_.empty(); });
            else
                wake_.wait(lock, [&] { return !jobs_.empty(); });
            if (!jobs_.empty() && queued_others_ == 0 && queued_records_ < options_.batch_max_records) {
                // Only records: give the batch a moment to fill.
                auto until = std::chrono::steady_clock::now() + options_.batch_delay;
                wake_.wait_until(lock, until, [&] {
                    return queued_others_ > 0 || queued_records_ >= options_.batch_max_records;
                });
            }
            jobs.swap(jobs_);
            queued_others_ = 0;
        }
        bool closed = !jobs.empty() && std::holds_alternative<close_job>(jobs.back());
        process(jobs);
        if (closed)
            return;
        if (options_.max_age.count() > 0 && db_ && std::chrono::steady_clock::now() >= next_retention_)
            apply_age_retention();
    }
}

inline void sqlite_store::open() {
    try {
        auto db = std::make_unique<detail::sqlite_db>(path_);
        sqlite3_busy_timeout(db->get(), static_cast<int>(options_.busy_timeout.count()));
        // Exclusive: one store per file, and WAL without a shared-memory index.
        db->exec("PRAGMA locking_mode=EXCLUSIVE");
        std::string mode = db->query_text("PRAGMA journal_mode=WAL");
        if (mode != "wal")
            throw detail::sqlite_failure{store_error::read_only, "cannot switch to WAL mode (journal_mode=" + mode + ")"};
        db->exec("PRAGMA synchronous=NORMAL");
        if (options_.max_database_bytes > 0) {
            auto page = std::max<std::int64_t>(db->query_int("PRAGMA page_size"), 512);
            auto pages = std::max<std::uint64_t>(options_.max_database_bytes / static_cast<std::uint64_t>(page), 1);
            db->exec(("PRAGMA max_page_count=" + std::to_string(pages)).c_str());
        }
        if (options_.check_on_open) {
            std::string verdict = db->query_text("PRAGMA quick_check");
            if (verdict != "ok")
                throw detail::sqlite_failure{store_error::corrupt_database, verdict};
        }
        // Takes the exclusive lock now, and keeps it.
        db->exec("BEGIN EXCLUSIVE");
        auto version = db->query_int("PRAGMA user_version");
        auto others = db->query_int("SELECT count(*) FROM sqlite_schema WHERE type='table'"
                                    " AND name NOT IN ('rooms','messages','meta')");
        if (version > 1 || (version == 0 && others > 0)) {
            db->exec("ROLLBACK");
            throw detail::sqlite_failure{store_error::incompatible_schema,
                                         "user_version " + std::to_string(version) + ", " +
                                             std::to_string(others) + " other tables"};
        }
        db->exec(detail::schema_v1);
        // 'open' stays 1 until a clean close. Found at 1, the last process
        // ended without one (a crash, kill -9): the messages it numbered and
        // had not committed (its max_queued_records, 'queue_bound', at
        // most) were delivered with seqs no row holds. Each room's seq
        // skips past them, so that none is given to two messages; clients
        // see the jump as a possible hole. Durable at once (checkpointed).
        const std::string bound = std::to_string(options_.max_queued_records);
        if (db->query_int("SELECT count(*) FROM meta WHERE key = 'open' AND value = 1") > 0)
            db->exec(("UPDATE rooms SET last_seq = last_seq + coalesce("
                      "(SELECT value FROM meta WHERE key = 'queue_bound'), " + bound + ")")
                         .c_str());
        db->exec(("INSERT INTO meta(key, value) VALUES('open', 1), ('queue_bound', " + bound +
                  ") ON CONFLICT(key) DO UPDATE SET value = excluded.value")
                     .c_str());
        db->exec("COMMIT");
        db->exec("PRAGMA wal_checkpoint(TRUNCATE)");
        auto s = db->prepare("SELECT room, epoch, last_seq FROM rooms");
        while (db->step(s))
            rooms_[s.text(0)] = room_state{s.text(0), s.text(1), static_cast<std::uint64_t>(s.int64(2))};
        stmts_ = std::make_unique<detail::store_statements>(*db);
        db_ = std::move(db);
    } catch (const detail::sqlite_failure& f) {
        fail(f.ec, f.detail);
        return;
    }
    if (options_.max_age.count() > 0)
        apply_age_retention();
}

inline void sqlite_store::process(std::deque<job>& jobs) {
    std::size_t i = 0;
    while (i < jobs.size()) {
        if (std::holds_alternative<record>(jobs[i])) {
            std::size_t end = i;
            while (end < jobs.size() && std::holds_alternative<record>(jobs[end]))
                ++end;
            for (std::size_t from = i; from < end; from += options_.batch_max_records) {
                std::size_t to = std::min(end, from + options_.batch_max_records);
                write(jobs, from, to);
                // Records count against the queue's bound until written (or
                // lost): a crash loses at most max_queued_records.
                std::lock_guard lock(mutex_);
                queued_records_ -= to - from;
            }
            i = end;
            continue;
        }
        std::visit(
            [&](auto& j) {
                using J = std::decay_t<decltype(j)>;
                if constexpr (std::is_same_v<J, load_job> || std::is_same_v<J, read_job>) {
                    answer(j);
                } else if constexpr (std::is_same_v<J, flush_job>) {
                    j.cb(failed_ ? (first_error_ ? first_error_ : make_error_code(store_error::store_failed))
                                 : std::error_code());
                } else if constexpr (std::is_same_v<J, close_job>) {
                    if (db_ && !failed_) {
                        try {
                            db_->exec("UPDATE meta SET value = 0 WHERE key = 'open'");
                        } catch (const detail::sqlite_failure& f) {
                            fail(f.ec, f.detail);
                        }
                    }
                    stmts_.reset();
                    db_.reset(); // checkpoints the WAL into the file and removes it
                    if (j.cb)
                        j.cb({});
                }
            },
            jobs[i]);
        ++i;
    }
}

inline void sqlite_store::write(std::deque<job>& jobs, std::size_t from, std::size_t to) {
    const auto n = static_cast<std::uint64_t>(to - from);
    if (!db_ || failed_) {
        counters_.lost.fetch_add(n, std::memory_order_relaxed);
        return;
    }
    auto started = std::chrono::steady_clock::now();
    std::map<std::string, room_state, std::less<>> touched; // the rooms' states after this batch
    std::uint64_t stored = 0, rejected = 0, expired = 0;
    try {
        auto& db = *db_;
        db.exec("BEGIN IMMEDIATE");
        try {
            auto& insert = stmts_->insert;
            for (std::size_t i = from; i < to; ++i) {
                record& r = std::get<record>(jobs[i]);
                auto it = touched.find(r.room);
                if (it == touched.end()) {
                    auto known = rooms_.find(r.room);
                    it = touched.emplace(r.room, known != rooms_.end() ? known->second : room_state{r.room, {}, 0})
                             .first;
                }
                room_state& st = it->second;
                if (!may_follow(st, r)) {
                    ++rejected;
                    continue;
                }
                if (r.epoch != st.epoch && !st.epoch.empty()) {
                    // A new epoch: the room's history starts again.
                    auto& drop = stmts_->drop_room;
                    drop.reset();
                    drop.bind(1, r.room);
                    db.step(drop);
                    expired += static_cast<std::uint64_t>(db.changes());
                }
                insert.reset();
                insert.bind(1, r.room);
                insert.bind(2, detail::to_sql(r.seq));
                insert.bind(3, detail::to_sql(r.id));
                insert.bind(4, r.from);
                insert.bind(5, r.text);
                insert.bind(6, r.time);
                insert.bind(7, r.unix_ms);
                db.step(insert);
                st.epoch = r.epoch;
                st.last_seq = r.seq;
                ++stored;
            }
            auto& upsert = stmts_->upsert_room;
            auto& trim = stmts_->trim;
            for (auto& [name, st] : touched) {
                if (st.last_seq == 0)
                    continue; // only rejected records
                upsert.reset();
                upsert.bind(1, name);
                upsert.bind(2, st.epoch);
                upsert.bind(3, detail::to_sql(st.last_seq));
                db.step(upsert);
                // The trim walks `keep` rows of the index: done for a room's
                // first batch, then each time it grew by a sixteenth of it.
                const std::uint64_t keep = options_.max_records_per_room;
                auto [at, first] = trimmed_at_.try_emplace(name, st.last_seq);
                if (keep > 0 && st.last_seq > keep &&
                    (first || st.last_seq < at->second ||
                     st.last_seq - at->second >= std::max<std::uint64_t>(keep / 16, 1))) {
                    at->second = st.last_seq;
                    trim.reset();
                    trim.bind(1, name);
                    trim.bind(2, detail::to_sql(keep));
                    db.step(trim);
                    expired += static_cast<std::uint64_t>(db.changes());
                }
            }
            db.exec("COMMIT");
        } catch (...) {
            sqlite3_exec(db.get(), "ROLLBACK", nullptr, nullptr, nullptr);
            throw;
        }
    } catch (const detail::sqlite_failure& f) {
        counters_.lost.fetch_add(n - rejected, std::memory_order_relaxed);
        counters_.rejected.fetch_add(rejected, std::memory_order_relaxed);
        fail(f.ec, f.detail);
        return;
    }
    for (auto& [name, st] : touched)
        if (st.last_seq != 0)
            rooms_[name] = st;
    counters_.stored.fetch_add(stored, std::memory_order_relaxed);
    counters_.rejected.fetch_add(rejected, std::memory_order_relaxed);
    counters_.expired.fetch_add(expired, std::memory_order_relaxed);
    const auto took = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                             started)
            .count());
    ::parley::detail::count_duration(commit_bucket_bounds, counters_.commits_within, took);
    counters_.commit_ns_total.fetch_add(took, std::memory_order_relaxed);
    counters_.last_batch_ns.store(took, std::memory_order_relaxed);
    counters_.batches.fetch_add(1, std::memory_order_relaxed);
}

inline void sqlite_store::answer(load_job& j) {
    if (!db_) {
        j.cb(first_error_ ? first_error_ : make_error_code(store_error::store_failed), {});
        return;
    }
    std::vector<room_state> rooms;
    rooms.reserve(rooms_.size());
    for (auto& [name, st] : rooms_)
        rooms.push_back(st);
    j.cb({}, std::move(rooms));
}

inline void sqlite_store::answer(read_job& j) {
    if (!db_) {
        j.cb(first_error_ ? first_error_ : make_error_code(store_error::store_failed), {});
        return;
    }
    range out;
    auto known = rooms_.find(j.q.room);
    if (known == rooms_.end()) {
        counters_.reads.fetch_add(1, std::memory_order_relaxed);
        j.cb({}, std::move(out));
        return;
    }
    out.state = known->second;
    const auto limit = static_cast<std::int64_t>(std::min(j.q.limit, options_.max_read_limit));
    const std::int64_t before = j.q.before ? detail::to_sql(*j.q.before) : std::numeric_limits<std::int64_t>::max();
    try {
        auto& db = *db_;
        auto& first = stmts_->first_seq;
        first.reset();
        first.bind(1, j.q.room);
        if (db.step(first))
            out.first_seq = static_cast<std::uint64_t>(first.int64(0));
        first.reset(); // an unfinished statement would hold a read transaction open
        const bool ascending = j.q.after.has_value();
        auto& s = ascending ? stmts_->read_up : stmts_->read_down;
        s.reset();
        s.bind(1, j.q.room);
        s.bind(2, ascending ? detail::to_sql(*j.q.after) : std::int64_t{0});
        s.bind(3, before);
        s.bind(4, limit);
        while (db.step(s)) {
            record r;
            r.room = j.q.room;
            r.epoch = out.state.epoch;
            r.seq = static_cast<std::uint64_t>(s.int64(0));
            r.id = static_cast<std::uint64_t>(s.int64(1));
            r.from = s.text(2);
            r.text = s.text(3);
            r.time = s.text(4);
            r.unix_ms = s.int64(5);
            out.records.push_back(std::move(r));
        }
        s.reset();
        if (!ascending)
            std::reverse(out.records.begin(), out.records.end());
    } catch (const detail::sqlite_failure& f) {
        counters_.failures.fetch_add(1, std::memory_order_relaxed);
        j.cb(f.ec, {});
        return;
    }
    counters_.reads.fetch_add(1, std::memory_order_relaxed);
    j.cb({}, std::move(out));
}

inline void sqlite_store::apply_age_retention() {
    next_retention_ = std::chrono::steady_clock::now() + options_.retention_interval;
    if (!db_ || failed_)
        return;
    auto cutoff = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::system_clock::now().time_since_epoch() - options_.max_age)
                      .count();
    try {
        auto& s = stmts_->expire;
        s.reset();
        s.bind(1, static_cast<std::int64_t>(cutoff));
        db_->step(s);
        counters_.expired.fetch_add(static_cast<std::uint64_t>(db_->changes()), std::memory_order_relaxed);
    } catch (const detail::sqlite_failure& f) {
        fail(f.ec, f.detail);
    }
}

} // namespace parley::chat::history

#endif
