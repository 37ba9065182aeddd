// Tests for include/parley/chat/history/sqlite_store.hpp on real files in a
// temporary directory: reads and appends, reopening, retention, the bounded
// queue, each fault (not a database, corrupt, read-only directory, full,
// locked, foreign schema) and a writer killed with SIGKILL mid-stream. Needs
// SQLite at build time; without it the cases are skipped.
#ifdef PARLEY_HAVE_SQLITE
#include <parley/chat/history/sqlite_store.hpp>
#endif

#include "support/skip.hpp"

#include <doctest/doctest.h>

#ifdef PARLEY_HAVE_SQLITE
#include <asio/io_context.hpp>

#include <sqlite3.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <system_error>
#include <tuple>
#include <vector>

#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace history = parley::chat::history;
namespace fs = std::filesystem;
using namespace std::chrono_literals;

namespace {

// A fresh directory, removed with everything in it.
struct temp_dir {
    fs::path path;
    temp_dir() {
        std::string tmpl = (fs::temp_directory_path() / "parley-history-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~temp_dir() {
        std::error_code ec;
        fs::permissions(path, fs::perms::owner_all, ec);
        fs::remove_all(path, ec);
    }
    std::string file(const char* name) const { return (path / name).string(); }
};

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

history::record rec(std::string room, std::uint64_t seq, std::string epoch = "e1",
                    std::int64_t unix_ms = now_ms()) {
    history::record r;
    r.room = std::move(room);
    r.seq = seq;
    r.epoch = std::move(epoch);
    r.id = 1000 + seq;
    r.from = "alice";
    r.text = "message " + std::to_string(seq);
    r.time = "2026-12-07T01:00:00.000Z";
    r.unix_ms = unix_ms;
    return r;
}

// Runs `ioc` until the operation started by `start(handler)` completes, at
// most 20 s; returns its arguments.
template <class... Args, class Start>
std::optional<std::tuple<Args...>> wait_for(asio::io_context& ioc, Start start) {
    std::optional<std::tuple<Args...>> result;
    start([&](Args... args) { result.emplace(std::move(args)...); });
    ioc.restart();
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (!result && std::chrono::steady_clock::now() < deadline)
        ioc.run_one_for(100ms);
    return result;
}

std::error_code flush(asio::io_context& ioc, history::store& s) {
    auto r = wait_for<std::error_code>(ioc, [&](auto h) { s.async_flush(h); });
    REQUIRE(r);
    return std::get<0>(*r);
}

std::error_code close(asio::io_context& ioc, history::store& s) {
    auto r = wait_for<std::error_code>(ioc, [&](auto h) { s.async_close(h); });
    REQUIRE(r);
    return std::get<0>(*r);
}

std::pair<std::error_code, std::vector<history::room_state>> rooms(asio::io_context& ioc, history::store& s) {
    auto r = wait_for<std::error_code, std::vector<history::room_state>>(
        ioc, [&](auto h) { s.async_load_rooms(h); });
    REQUIRE(r);
    return {std::get<0>(*r), std::get<1>(*r)};
}

std::pair<std::error_code, history::range> read(asio::io_context& ioc, history::store& s, history::range_query q) {
    auto r = wait_for<std::error_code, history::range>(ioc, [&](auto h) { s.async_read(q, h); });
    REQUIRE(r);
    return {std::get<0>(*r), std::get<1>(*r)};
}

std::vector<std::uint64_t> seqs(const history::range& r) {
    std::vector<std::uint64_t> out;
    for (auto& x : r.records)
        out.push_back(x.seq);
    return out;
}

std::vector<std::uint64_t> iota(std::uint64_t from, std::uint64_t to) {
    std::vector<std::uint64_t> out;
    for (auto i = from; i <= to; ++i)
        out.push_back(i);
    return out;
}

// Counts the failure reports a store gives.
struct failure_log {
    std::vector<std::error_code> codes;
    std::vector<std::string> lines;
    void attach(history::sqlite_store_options& o) {
        o.on_failure = [this](std::error_code ec, const std::string& line) {
            codes.push_back(ec);
            lines.push_back(line);
        };
    }
};

void write_file(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f << bytes;
}

} // namespace

TEST_CASE("sqlite_store: appends are read back by range, after and before, capped") {
    temp_dir dir;
    asio::io_context ioc;
    history::sqlite_store_options o;
    o.max_read_limit = 50;
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
    for (std::uint64_t i = 1; i <= 120; ++i)
        REQUIRE_FALSE(s.append(rec("lobby", i)));
    for (std::uint64_t i = 1; i <= 3; ++i)
        REQUIRE_FALSE(s.append(rec("dev", i, "d1")));
    // Reads come after every append queued before them, without a flush.
    auto [ec, r] = read(ioc, s, {.room = "lobby", .after = 100, .limit = 10});
    CHECK_FALSE(ec);
    CHECK(seqs(r) == iota(101, 110));
    CHECK(r.state == history::room_state{"lobby", "e1", 120});
    CHECK(r.first_seq == 1);
    CHECK(r.records[0] == rec("lobby", 101, "e1", r.records[0].unix_ms));

    std::tie(ec, r) = read(ioc, s, {.room = "lobby", .before = 11, .limit = 5});
    CHECK(seqs(r) == iota(6, 10));
    std::tie(ec, r) = read(ioc, s, {.room = "lobby", .limit = 3});
    CHECK(seqs(r) == iota(118, 120));
    std::tie(ec, r) = read(ioc, s, {.room = "lobby", .after = 5, .before = 9, .limit = 100});
    CHECK(seqs(r) == iota(6, 8));
    std::tie(ec, r) = read(ioc, s, {.room = "lobby", .after = 0, .limit = 1000000});
    CHECK(r.records.size() == 50); // max_read_limit
    std::tie(ec, r) = read(ioc, s, {.room = "nowhere", .after = 0});
    CHECK_FALSE(ec);
    CHECK(r.records.empty());
    CHECK(r.state.last_seq == 0);

    auto [lec, list] = rooms(ioc, s);
    CHECK_FALSE(lec);
    CHECK(list == std::vector<history::room_state>{{"dev", "d1", 3}, {"lobby", "e1", 120}});
    CHECK_FALSE(flush(ioc, s));
    auto st = s.stats();
    CHECK(st.records_queued == 123);
    CHECK(st.records_stored == 123);
    CHECK(st.batches >= 1);
    CHECK(st.reads == 6);
    CHECK_FALSE(st.failed);
}

TEST_CASE("sqlite_store: seq and epoch continue after reopening, queued records written at close") {
    temp_dir dir;
    asio::io_context ioc;
    history::sqlite_store_options o;
    o.batch_delay = 2s; // the records are still queued when the close comes
    o.batch_max_records = 100000;
    {
        history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
        for (std::uint64_t i = 1; i <= 500; ++i)
            REQUIRE_FALSE(s.append(rec("lobby", i, "epoch-A")));
        CHECK_FALSE(close(ioc, s));
        CHECK(s.append(rec("lobby", 501, "epoch-A")) == history::store_error::closed);
        auto [ec, r] = read(ioc, s, {.room = "lobby"});
        CHECK(ec == history::store_error::closed);
    }
    {
        // Destroyed without async_close: the destructor writes what is queued.
        history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
        auto [ec, list] = rooms(ioc, s);
        CHECK_FALSE(ec);
        CHECK(list == std::vector<history::room_state>{{"lobby", "epoch-A", 500}});
        for (std::uint64_t i = 501; i <= 600; ++i)
            REQUIRE_FALSE(s.append(rec("lobby", i, "epoch-A")));
    }
    CHECK_FALSE(fs::exists(dir.file("h.db-wal"))); // a clean close checkpoints the WAL into the file
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
    auto [ec, r] = read(ioc, s, {.room = "lobby", .after = 0, .limit = 1000});
    CHECK_FALSE(ec);
    CHECK(seqs(r) == iota(1, 600));
    CHECK(r.state == history::room_state{"lobby", "epoch-A", 600});
}

TEST_CASE("sqlite_store: a record out of order is rejected; a new epoch starts the room again") {
    temp_dir dir;
    asio::io_context ioc;
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"));
    for (std::uint64_t i = 1; i <= 5; ++i)
        REQUIRE_FALSE(s.append(rec("lobby", i)));
    REQUIRE_FALSE(s.append(rec("lobby", 7)));  // a gap
    REQUIRE_FALSE(s.append(rec("lobby", 5)));  // a duplicate
    REQUIRE_FALSE(s.append(rec("lobby", 6)));
    REQUIRE_FALSE(s.append(rec("lobby", 0, "e9")));
    CHECK_FALSE(flush(ioc, s));
    CHECK(s.stats().records_rejected == 3);
    auto [ec, r] = read(ioc, s, {.room = "lobby", .after = 0});
    CHECK(seqs(r) == iota(1, 6));

    REQUIRE_FALSE(s.append(rec("lobby", 1, "e2")));
    REQUIRE_FALSE(s.append(rec("lobby", 2, "e2")));
    std::tie(ec, r) = read(ioc, s, {.room = "lobby", .after = 0});
    CHECK(seqs(r) == iota(1, 2));
    CHECK(r.state == history::room_state{"lobby", "e2", 2});
    CHECK(r.records[0].epoch == "e2");
    CHECK_FALSE(s.stats().failed);
}

TEST_CASE("sqlite_store: retention keeps the newest messages per room; the room's seq goes on") {
    temp_dir dir;
    asio::io_context ioc;
    history::sqlite_store_options o;
    o.max_records_per_room = 10;
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
    for (std::uint64_t i = 1; i <= 25; ++i)
        REQUIRE_FALSE(s.append(rec("lobby", i)));
    for (std::uint64_t i = 1; i <= 4; ++i)
        REQUIRE_FALSE(s.append(rec("dev", i)));
    auto [ec, r] = read(ioc, s, {.room = "lobby", .after = 0});
    CHECK(seqs(r) == iota(16, 25));
    CHECK(r.first_seq == 16);
    CHECK(r.state.last_seq == 25);
    std::tie(ec, r) = read(ioc, s, {.room = "dev", .after = 0});
    CHECK(seqs(r) == iota(1, 4));
    CHECK(s.stats().records_expired == 15);
}

TEST_CASE("sqlite_store: retention by age drops old messages at open, keeps the rooms' positions") {
    temp_dir dir;
    asio::io_context ioc;
    const auto two_hours_ago = now_ms() - 2 * 3600 * 1000;
    {
        history::sqlite_store s(ioc.get_executor(), dir.file("h.db"));
        for (std::uint64_t i = 1; i <= 10; ++i)
            REQUIRE_FALSE(s.append(rec("old", i, "e1", two_hours_ago)));
        for (std::uint64_t i = 1; i <= 10; ++i)
            REQUIRE_FALSE(s.append(rec("mixed", i, "e1", i <= 6 ? two_hours_ago : now_ms())));
        CHECK_FALSE(close(ioc, s));
    }
    history::sqlite_store_options o;
    o.max_age = std::chrono::hours(1);
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
    auto [ec, r] = read(ioc, s, {.room = "mixed", .after = 0});
    CHECK_FALSE(ec);
    CHECK(seqs(r) == iota(7, 10));
    std::tie(ec, r) = read(ioc, s, {.room = "old", .after = 0});
    CHECK(r.records.empty());
    CHECK(r.first_seq == 0);
    CHECK(r.state == history::room_state{"old", "e1", 10});
    REQUIRE_FALSE(s.append(rec("old", 11)));
    std::tie(ec, r) = read(ioc, s, {.room = "old", .after = 0});
    CHECK(seqs(r) == iota(11, 11));
    CHECK(s.stats().records_expired == 16);
}

TEST_CASE("sqlite_store: a full queue refuses at once and counts, without blocking") {
    temp_dir dir;
    asio::io_context ioc;
    history::sqlite_store_options o;
    o.max_queued_records = 4;
    o.batch_max_records = 1000;
    o.batch_delay = 5s; // the writer waits for a fuller batch meanwhile
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
    REQUIRE_FALSE(rooms(ioc, s).first); // opened
    std::vector<std::error_code> results;
    auto started = std::chrono::steady_clock::now();
    for (std::uint64_t i = 1; i <= 10; ++i)
        results.push_back(s.append(rec("lobby", i)));
    CHECK(std::chrono::steady_clock::now() - started < 1s);
    for (std::size_t i = 0; i < 4; ++i)
        CHECK_FALSE(results[i]);
    for (std::size_t i = 4; i < 10; ++i)
        CHECK(results[i] == history::store_error::queue_full);
    CHECK(s.stats().records_refused == 6);
    CHECK(s.stats().queued_now == 4);
    CHECK_FALSE(flush(ioc, s)); // a flush does not wait for the batch delay
    CHECK(s.stats().records_stored == 4);
    CHECK_FALSE(s.append(rec("lobby", 5)));
}

TEST_CASE("sqlite_store: requests beyond the queue's bound complete at once with queue_full") {
    temp_dir dir;
    asio::io_context ioc;
    history::sqlite_store_options o;
    o.max_queued_requests = 3;
    o.batch_delay = 5s;
    o.busy_timeout = 3s;
    // Another store holds the file, so this one's writer is stuck opening it
    // (for the busy timeout) while the requests queue up.
    history::sqlite_store holder(ioc.get_executor(), dir.file("h.db"));
    REQUIRE_FALSE(rooms(ioc, holder).first);
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
    std::vector<std::error_code> results;
    bool called_inside = true;
    for (int i = 0; i < 5; ++i) {
        s.async_flush([&](std::error_code ec) { results.push_back(ec); });
        called_inside = called_inside && !results.empty();
    }
    CHECK_FALSE(called_inside);
    ioc.restart();
    auto deadline = std::chrono::steady_clock::now() + 20s;
    while (results.size() < 5 && std::chrono::steady_clock::now() < deadline)
        ioc.run_one_for(100ms);
    REQUIRE(results.size() == 5);
    // The two refused ones complete first (posted at once); the three
    // queued ones after the open fails.
    CHECK(results[0] == history::store_error::queue_full);
    CHECK(results[1] == history::store_error::queue_full);
    for (int i = 2; i < 5; ++i)
        CHECK(results[static_cast<std::size_t>(i)] == history::store_error::database_locked);
}

TEST_CASE("sqlite_store: a file that is not a database is refused, said once") {
    temp_dir dir;
    asio::io_context ioc;
    write_file(dir.file("h.db"), std::string(8192, 'x'));
    failure_log log;
    history::sqlite_store_options o;
    log.attach(o);
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
    auto [ec, list] = rooms(ioc, s);
    CHECK(ec == history::store_error::not_a_database);
    CHECK(s.append(rec("lobby", 1)) == history::store_error::store_failed);
    CHECK(s.append(rec("lobby", 1)) == history::store_error::store_failed);
    CHECK(read(ioc, s, {.room = "lobby"}).first == history::store_error::not_a_database);
    CHECK(flush(ioc, s) == history::store_error::not_a_database);
    ioc.restart();
    ioc.poll();
    REQUIRE(log.codes.size() == 1);
    CHECK(log.codes[0] == history::store_error::not_a_database);
    CHECK(log.lines[0].find(dir.file("h.db")) != std::string::npos);
    CHECK(s.stats().failed);
    CHECK(s.stats().records_refused == 2);
    CHECK(std::string(8192, 'x') == [&] {
        std::ifstream f(dir.file("h.db"), std::ios::binary);
        return std::string(std::istreambuf_iterator<char>(f), {});
    }()); // left as it was
}

TEST_CASE("sqlite_store: a corrupt database is refused at open") {
    temp_dir dir;
    asio::io_context ioc;
    {
        history::sqlite_store s(ioc.get_executor(), dir.file("h.db"));
        for (std::uint64_t i = 1; i <= 3000; ++i)
            REQUIRE_FALSE(s.append(rec("lobby", i)));
        CHECK_FALSE(close(ioc, s));
    }
    auto size = fs::file_size(dir.file("h.db"));
    REQUIRE(size > 16 * 4096);
    {
        // Garbage over pages 3 to 6 (the header page stays valid).
        std::fstream f(dir.file("h.db"), std::ios::binary | std::ios::in | std::ios::out);
        f.seekp(2 * 4096);
        std::string junk(4 * 4096, '\0');
        for (std::size_t i = 0; i < junk.size(); ++i)
            junk[i] = static_cast<char>((i * 7919) % 251);
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"));
    auto [ec, list] = rooms(ioc, s);
    CHECK(ec == history::store_error::corrupt_database);
    CHECK(s.stats().failed);
}

TEST_CASE("sqlite_store: a database in a directory it cannot write is refused") {
    temp_dir dir;
    asio::io_context ioc;
    std::string path;
    if (::geteuid() != 0) {
        fs::create_directory(dir.path / "ro");
        fs::permissions(dir.path / "ro", fs::perms::owner_read | fs::perms::owner_exec);
        path = (dir.path / "ro" / "h.db").string();
    } else {
        path = "/proc/self/history.db"; // read-only even for root
    }
    history::sqlite_store s(ioc.get_executor(), path);
    auto [ec, list] = rooms(ioc, s);
    CHECK(ec == history::store_error::cannot_open);
    CHECK(s.append(rec("lobby", 1)) == history::store_error::store_failed);
}

TEST_CASE("sqlite_store: a full disk fails the batch, says so once, keeps a gapless prefix readable") {
    temp_dir dir;
    asio::io_context ioc;
    failure_log log;
    history::sqlite_store_options o;
    log.attach(o);
    o.max_database_bytes = 64 * 1024; // 16 pages of 4 KiB: SQLite's max_page_count
    o.batch_max_records = 20;
    std::uint64_t accepted = 0;
    {
        history::sqlite_store s(ioc.get_executor(), dir.file("h.db"), o);
        std::error_code ec;
        for (std::uint64_t i = 1; i <= 2000 && !ec; ++i) {
            auto r = rec("lobby", i);
            r.text = std::string(500, 'a' + static_cast<char>(i % 26));
            ec = s.append(r);
            if (!ec)
                accepted = i;
            if (i % 20 == 0 && !ec && flush(ioc, s))
                break;
        }
        CHECK(flush(ioc, s) == history::store_error::disk_full);
        CHECK(s.append(rec("lobby", accepted + 1)) == history::store_error::store_failed);
        auto st = s.stats();
        CHECK(st.failed);
        CHECK(st.records_lost > 0);
        CHECK(st.records_stored + st.records_lost == st.records_queued);
        CHECK(st.records_stored > 0);
        auto [rec_ec, r] = read(ioc, s, {.room = "lobby", .after = 0, .limit = 1000});
        CHECK_FALSE(rec_ec);
        CHECK(seqs(r) == iota(1, st.records_stored));
        ioc.restart();
        ioc.poll();
        REQUIRE(log.codes.size() == 1);
        CHECK(log.codes[0] == history::store_error::disk_full);
        CHECK(log.codes[0] == std::errc::no_space_on_device);
    }
    // More room: the stored prefix is intact and the room goes on after it.
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"));
    auto [ec, list] = rooms(ioc, s);
    CHECK_FALSE(ec);
    REQUIRE(list.size() == 1);
    // A failed store leaves the file marked open, like a crash: the room's
    // seq skips the failed writer's queue bound past what the file holds.
    REQUIRE(list[0].last_seq > o.max_queued_records);
    const auto held = list[0].last_seq - o.max_queued_records;
    CHECK(held < accepted);
    auto [rec_ec, r] = read(ioc, s, {.room = "lobby", .after = 0, .limit = 1000});
    CHECK(seqs(r) == iota(1, held));
}

TEST_CASE("sqlite_store: a database another store holds is refused after the busy timeout") {
    temp_dir dir;
    asio::io_context ioc;
    history::sqlite_store first(ioc.get_executor(), dir.file("h.db"));
    REQUIRE_FALSE(rooms(ioc, first).first);
    REQUIRE_FALSE(first.append(rec("lobby", 1)));
    REQUIRE_FALSE(flush(ioc, first));
    history::sqlite_store_options o;
    o.busy_timeout = 200ms;
    auto started = std::chrono::steady_clock::now();
    history::sqlite_store second(ioc.get_executor(), dir.file("h.db"), o);
    auto [ec, list] = rooms(ioc, second);
    CHECK(ec == history::store_error::database_locked);
    CHECK(std::chrono::steady_clock::now() - started >= 200ms);
    CHECK(std::chrono::steady_clock::now() - started < 10s);
    // The first is unharmed.
    REQUIRE_FALSE(first.append(rec("lobby", 2)));
    auto [rec_ec, r] = read(ioc, first, {.room = "lobby", .after = 0});
    CHECK(seqs(r) == iota(1, 2));
}

TEST_CASE("sqlite_store: a database of another program is left alone") {
    temp_dir dir;
    asio::io_context ioc;
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(dir.file("h.db").c_str(), &db) == SQLITE_OK);
        REQUIRE(sqlite3_exec(db, "CREATE TABLE accounts(name TEXT, balance INTEGER)", nullptr, nullptr,
                             nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    history::sqlite_store s(ioc.get_executor(), dir.file("h.db"));
    CHECK(rooms(ioc, s).first == history::store_error::incompatible_schema);
}

TEST_CASE("sqlite_store: a writer killed with SIGKILL loses at most its last batch") {
    temp_dir dir;
    const std::string path = dir.file("h.db");
    int progress[2];
    REQUIRE(::pipe(progress) == 0);
    // The last seq the child's append() accepted, seen by both processes.
    void* shared = ::mmap(nullptr, sizeof(std::uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    REQUIRE(shared != MAP_FAILED);
    auto* accepted = new (shared) std::atomic<std::uint64_t>(0);
    constexpr std::size_t queue_bound = 4096;
    std::fflush(nullptr);
    pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Appends a stream; every 200 records reports the seq known to be
        // committed, and goes on without waiting.
        ::close(progress[0]);
        asio::io_context ioc;
        history::sqlite_store_options o;
        o.batch_delay = 5ms;
        o.max_records_per_room = 0; // keep every seq, however far the child gets
        o.max_queued_records = queue_bound;
        history::sqlite_store s(ioc.get_executor(), path, o);
        for (std::uint64_t i = 1; i <= 10000000;) {
            auto ec = s.append(rec("lobby", i, "crash-epoch"));
            if (ec == history::store_error::queue_full) {
                ::usleep(1000);
                continue;
            }
            if (ec)
                ::_exit(3);
            accepted->store(i);
            if (i % 200 == 0) {
                s.async_flush([&, i](std::error_code fec) {
                    if (fec)
                        ::_exit(4);
                    std::uint64_t v = i;
                    if (::write(progress[1], &v, sizeof v) != sizeof v)
                        ::_exit(5);
                });
            }
            ioc.poll();
            ioc.restart();
            ++i;
        }
        ::_exit(0);
    }
    ::close(progress[1]);
    std::uint64_t reported = 0, v = 0;
    while (reported < 3000 && ::read(progress[0], &v, sizeof v) == sizeof v)
        reported = v;
    ::kill(child, SIGKILL);
    int status = 0;
    ::waitpid(child, &status, 0);
    ::close(progress[0]);
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGKILL);
    REQUIRE(reported >= 3000);

    asio::io_context ioc;
    history::sqlite_store_options o;
    o.max_records_per_room = 0;
    history::sqlite_store s(ioc.get_executor(), path, o);
    auto [ec, list] = rooms(ioc, s);
    REQUIRE_FALSE(ec);
    REQUIRE(list.size() == 1);
    CHECK(list[0].epoch == "crash-epoch");
    // Opened after a crash, the room's seq skips the dead writer's queue
    // bound: what it had accepted and not committed may have been seen.
    REQUIRE(list[0].last_seq > queue_bound);
    const auto last = list[0].last_seq - queue_bound;
    CHECK(last >= reported);
    // Lost: what append() had accepted and the writer not yet committed,
    // never more than the queue's bound (the child appends faster than the
    // disk writes, so its queue is full when it dies).
    const std::uint64_t took = accepted->load();
    ::munmap(shared, sizeof(std::uint64_t));
    REQUIRE(took >= last);
    const auto lost = took - last;
    CHECK(lost <= queue_bound);
    MESSAGE("reported committed: " << reported << ", found after SIGKILL: " << last << ", accepted: " << took
                                   << ", lost: " << lost);
    std::uint64_t expect = 1;
    for (std::uint64_t after = 0; after < last;) {
        auto [rec_ec, r] = read(ioc, s, {.room = "lobby", .after = after, .limit = 1000});
        REQUIRE_FALSE(rec_ec);
        REQUIRE_FALSE(r.records.empty());
        CHECK(r.first_seq == 1);
        for (auto& x : r.records) {
            REQUIRE(x.seq == expect);
            CHECK(x.text == "message " + std::to_string(expect));
            ++expect;
        }
        after = r.records.back().seq;
    }
    CHECK(expect == last + 1);
    auto [past_ec, past] = read(ioc, s, {.room = "lobby", .after = last, .limit = 10});
    REQUIRE_FALSE(past_ec);
    CHECK(past.records.empty());
    // The room goes on past the skipped seqs, not at the first lost one.
    const auto next = list[0].last_seq + 1;
    CHECK(s.append(rec("lobby", last + 1, "crash-epoch")) == std::error_code()); // queued...
    REQUIRE_FALSE(s.append(rec("lobby", next, "crash-epoch")));
    CHECK_FALSE(flush(ioc, s));
    CHECK(s.stats().records_rejected == 1); // ...and rejected: that seq was skipped
}

#else

TEST_CASE("sqlite_store: skipped, parley was built without SQLite") {
    parley::test::skip("SQLite was not found at configure time (Debian: apt-get install libsqlite3-dev)");
}

#endif
