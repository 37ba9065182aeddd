// Micro-benchmark of parley/chat/history/sqlite_store.hpp: how many records
// per second the writer commits, what append() costs the caller, and the
// latency of a range read (queued to the writer, answered, posted back).
//
//   history_bench [--records N] [--rooms R] [--reads N] [--db FILE]
//
// FILE defaults to a fresh file in the temporary directory (removed after).
// A plain program rather than Google Benchmark: the figures are end-to-end
// (a batch is done when its flush completes), not per call of a loop.
#include <parley/chat/history/sqlite_store.hpp>

#include <asio/io_context.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace history = parley::chat::history;
using clock_type = std::chrono::steady_clock;

namespace {

double us(clock_type::duration d) { return std::chrono::duration<double, std::micro>(d).count(); }

double percentile(std::vector<double> v, double p) {
    std::sort(v.begin(), v.end());
    return v[std::min(v.size() - 1, static_cast<std::size_t>(p * static_cast<double>(v.size())))];
}

} // namespace

int main(int argc, char** argv) {
    std::size_t records = 200000, rooms = 10, reads = 5000;
    std::string path;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!std::strcmp(argv[i], "--records"))
            records = std::strtoull(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--rooms"))
            rooms = std::max<std::size_t>(1, std::strtoull(argv[i + 1], nullptr, 10));
        else if (!std::strcmp(argv[i], "--reads"))
            reads = std::strtoull(argv[i + 1], nullptr, 10);
        else if (!std::strcmp(argv[i], "--db"))
            path = argv[i + 1];
        else {
            std::fprintf(stderr, "usage: history_bench [--records N] [--rooms R] [--reads N] [--db FILE]\n");
            return 2;
        }
    }
    bool temporary = path.empty();
    if (temporary)
        path = (std::filesystem::temp_directory_path() /
                ("parley-history-bench-" + std::to_string(::getpid()) + ".db"))
                   .string();

    asio::io_context ioc;
    history::sqlite_store_options options;
    options.max_records_per_room = 0; // measure writes, not retention
    int status = 0;
    {
        history::sqlite_store store(ioc.get_executor(), path, options);
        std::error_code open_ec;
        bool opened = false;
        store.async_load_rooms([&](std::error_code ec, std::vector<history::room_state>) {
            open_ec = ec;
            opened = true;
        });
        // run_one() stops the io_context when it runs out of work: restart it
        // before each wait.
        ioc.restart();
        while (!opened)
            ioc.run_one();
        if (open_ec) {
            std::fprintf(stderr, "history_bench: %s: %s\n", path.c_str(), open_ec.message().c_str());
            return 1;
        }

        // Appends: as fast as the caller can; a full queue is retried after a
        // yield (and counted), as a chat server would drop instead.
        history::record r;
        r.epoch = "bench";
        r.from = "alice";
        r.text = std::string(80, 'x');
        r.time = "2026-12-07T01:00:00.000Z";
        std::vector<std::uint64_t> seq(rooms, 0);
        std::size_t refusals = 0;
        clock_type::duration worst_append{}, in_append{};
        auto started = clock_type::now();
        for (std::size_t i = 0; i < records; ++i) {
            std::size_t room = i % rooms;
            r.room = "room" + std::to_string(room);
            r.seq = seq[room] + 1;
            r.id = i + 1;
            r.unix_ms = 1796605200000 + static_cast<std::int64_t>(i);
            for (;;) {
                auto t0 = clock_type::now();
                auto ec = store.append(r);
                auto took = clock_type::now() - t0;
                worst_append = std::max(worst_append, took);
                if (!ec) {
                    in_append += took; // accepted calls only: a refusal is cheaper
                    break;
                }
                if (ec != history::store_error::queue_full) {
                    std::fprintf(stderr, "history_bench: append: %s\n", ec.message().c_str());
                    return 1;
                }
                ++refusals;
                std::this_thread::yield();
            }
            seq[room] = r.seq;
        }
        bool flushed = false;
        store.async_flush([&](std::error_code ec) {
            if (ec)
                std::fprintf(stderr, "history_bench: flush: %s\n", ec.message().c_str()), status = 1;
            flushed = true;
        });
        ioc.restart();
        while (!flushed)
            ioc.run_one();
        auto done = clock_type::now();
        auto st = store.stats();
        double seconds = std::chrono::duration<double>(done - started).count();
        std::printf("appends: %zu records of %zu bytes text in %zu rooms: %.0f records/s committed "
                    "(%.3f s, %llu batches, %.1f records/batch)\n",
                    records, r.text.size(), rooms, static_cast<double>(records) / seconds, seconds,
                    static_cast<unsigned long long>(st.batches),
                    st.batches ? static_cast<double>(st.records_stored) / static_cast<double>(st.batches) : 0.0);
        std::printf("append() on the caller: %.0f ns mean (accepted calls), %.1f us worst; "
                    "%zu queue_full refusals retried (the producer yields and retries, competing "
                    "with the writer for the cores)\n",
                    std::chrono::duration<double, std::nano>(in_append).count() /
                        static_cast<double>(records),
                    us(worst_append), refusals);

        // Reads: one at a time, 50 records after a random seq, round trip
        // through the writer thread and back to this thread.
        std::mt19937_64 rng(42);
        std::vector<double> lat;
        lat.reserve(reads);
        for (std::size_t i = 0; i < reads; ++i) {
            std::size_t room = rng() % rooms;
            history::range_query q;
            q.room = "room" + std::to_string(room);
            q.after = seq[room] > 50 ? rng() % (seq[room] - 50) : 0;
            q.limit = 50;
            bool got = false;
            auto t0 = clock_type::now();
            store.async_read(q, [&](std::error_code ec, history::range res) {
                if (ec || res.records.size() != std::min<std::uint64_t>(50, seq[room] - *q.after))
                    status = 1;
                got = true;
            });
            ioc.restart();
            while (!got)
                ioc.run_one();
            lat.push_back(us(clock_type::now() - t0));
        }
        if (!lat.empty())
            std::printf("read of 50 records after a random seq: p50 %.1f us, p99 %.1f us, max %.1f us (%zu reads)\n",
                        percentile(lat, 0.5), percentile(lat, 0.99), percentile(lat, 1.0), lat.size());
    }
    if (temporary) {
        std::error_code ec;
        std::filesystem::remove(path, ec);
        std::filesystem::remove(path + "-wal", ec);
    }
    return status;
}
