// The seed's chat room, done right: a chat server with rooms, nicknames and
// private messages (docs/PROTOCOL.md). Framed clients (chat_client,
// tests/chat_client.py) connect to --port; people with nothing but nc or
// telnet connect to --line-port and chat in the same rooms:
//
//   chat_server [--host 127.0.0.1] [--port 9999] [--line-port 9998] [--web-port 8080]
//   nc 127.0.0.1 9998
//
// Browsers open http://127.0.0.1:8080/ (the chat page, speaking to the
// server over a WebSocket at /ws) and chat in the same rooms too. With
// --web-deflate (when built with zlib) their messages are compressed
// (permessage-deflate), each broadcast once for all of them.
//
// Several chat servers become one chat through Redis (docs/SCALING.md):
//
//   chat_server --port 9999 --redis redis://127.0.0.1:6379
//   chat_server --port 9997 --line-port 9996 --redis redis://127.0.0.1:6379
//
// and share each room's last N messages, replayed to joiners on every
// server, with --redis-history N (instead of --history N).
//
// With --history-db FILE the rooms' history is kept in an SQLite file
// (docs/HISTORY.md): after a restart the rooms continue their seq in the
// same epoch, and /history reaches back beyond what memory keeps.
//
// With --tls-cert FILE --tls-key FILE every port speaks TLS (https:// for the web port) (chat_client
// --tls; `openssl s_client -quiet -connect 127.0.0.1:9998` for line mode).
// With --token SECRET every client must send `/auth SECRET` before its
// nickname (chat_client --token SECRET).
//
// Joins, leaves, errors and slow-consumer disconnects are logged to stderr,
// one line each. SIGUSR1 prints the counters (deliveries, and every limit
// hit: docs/RELIABILITY.md) to stderr. SIGINT or SIGTERM stops accepting,
// tells every client, gives each --shutdown-ms to receive what is queued
// for it, closes, and exits with status 0.
#include "common/options.hpp"

#include <parley/chat/server.hpp>
#ifdef PARLEY_HAVE_HIREDIS
#include <parley/chat/redis_backplane.hpp>
#endif
#if PARLEY_HAVE_TLS
#include <parley/chat/tls.hpp>
#endif
#ifdef PARLEY_HAVE_SQLITE
#include <parley/chat/history/sqlite_store.hpp>
#endif

#include <asio/io_context.hpp>
#include <asio/signal_set.hpp>

#include <chrono>
#include <functional>
#include <iostream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

// One line with every counter, for SIGUSR1.
std::string stats(const parley::chat::server& server) {
    const auto h = server.counters();
    const auto l = server.limit_counters();
    std::ostringstream out;
    out << "stats: " << server.clients().size() << " connections, " << h.rooms << " rooms, "
        << h.published << " published, " << h.deliveries << " deliveries, " << h.dropped
        << " dropped; limits hit: " << l.slow_consumers << " slow consumers, " << l.write_timeouts
        << " write timeouts, " << l.idle_timeouts << " idle timeouts (" << l.pings_sent
        << " pings), " << l.nickname_timeouts << " nickname timeouts, " << l.frames_too_large
        << " frames too large, " << l.lines_too_long << " lines too long, " << l.server_full
        << " server full, " << l.address_full << " per-address refusals, " << l.rate_limited
        << " inputs rate-limited, " << l.flood_disconnects << " flooders, " << l.budget_refusals
        << " budget refusals, " << l.accept_pauses << " accept pauses; outbound "
        << l.outbound_bytes << " bytes queued (peak " << l.outbound_peak_bytes << ")";
    return out.str();
}

int main(int argc, char** argv) {
    parley::chat::server_options options;
    std::uint16_t line_port = 9998, web_port = 8080;
    bool frames_only = false, no_web = false;
    std::string web_origin;
    std::size_t history = 0, redis_history = 0;
    unsigned threads = 1;
    std::string redis_url;
    std::string redis_prefix = "parley:";
    unsigned heartbeat_ms = 1000, expiry_ms = 3000;
    std::string tls_cert, tls_key;
    unsigned idle_s = 120, ping_s = 45, write_s = 30, shutdown_ms = 2000, flood_rate = 20;
    unsigned resume_grace_s = 120;
    unsigned memory_sweep_ms = 2000;
    bool no_heap_trim = false;
    std::string history_db;
    std::uint64_t history_db_keep = 10000;
    std::size_t history_db_resume = 10000;
    unsigned history_db_max_age_s = 0;

    parley::examples::command_line cli(
        "chat_server", "A chat server: rooms, nicknames and private messages, for framed "
                       "clients and for nc users alike.");
    cli.option("--host", options.host, "address to listen on")
        .option("--port", options.port, "port for framed clients, 0 for any free one")
        .option("--line-port", line_port, "port for line mode (nc, telnet), 0 for any free one")
        .flag("--no-line-mode", frames_only, "no line mode")
        .option("--web-port", web_port, "port for browsers (the chat page, WebSocket), 0 for any free one")
        .flag("--no-web", no_web, "no web port")
#if PARLEY_HAVE_ZLIB
        .flag("--web-deflate", options.web_deflate,
              "compress WebSocket messages (permessage-deflate) for browsers that offer it")
#endif
        .option("--web-origin", web_origin,
                "origin whose pages may use the WebSocket (e.g. https://chat.example.org); "
                "default: the page's own")
        .option("--prompt", options.prompt, "the text asking for a nickname")
        .option("--history", history, "messages per room replayed to joiners", std::size_t{0},
                std::size_t{10000})
        .option("--resume-grace", resume_grace_s,
                "seconds a lost client's nickname and rooms wait for its /resume, 0: no resume",
                0u, 86400u)
        .option("--history-db", history_db,
                "keep the rooms' history in this SQLite file: it survives restarts")
        .option("--history-db-keep", history_db_keep,
                "messages kept per room in --history-db, 0 for no limit")
        .option("--history-db-max-age", history_db_max_age_s,
                "seconds a message stays in --history-db, 0 for ever")
        .option("--history-db-resume", history_db_resume,
                "a /resume reads a room's gap from --history-db up to this many messages "
                "(0: from memory only)",
                std::size_t{0}, std::size_t{1000000})
        .option("--threads", threads, "threads running the I/O", 1u, 64u)
        .option("--redis", redis_url,
                "join the chat servers sharing this Redis, e.g. redis://127.0.0.1:6379")
        .option("--redis-prefix", redis_prefix, "prefix of the Redis keys and channel")
        .option("--redis-history", redis_history,
                "messages per room kept in Redis and replayed to joiners on every server "
                "(with --redis, instead of --history)",
                std::size_t{0}, std::size_t{10000})
        .option("--redis-heartbeat-ms", heartbeat_ms, "how often this server tells Redis it lives",
                10u, 60000u)
        .option("--redis-expiry-ms", expiry_ms,
                "a server silent this long is taken for dead, its members' leaves announced",
                30u, 600000u)
        .option("--tls-cert", tls_cert, "PEM certificate (chain): both ports speak TLS")
        .option("--tls-key", tls_key, "PEM private key of --tls-cert")
        .option("--token", options.access_token,
                "access token clients must send (/auth TOKEN) before their nickname")
        .option("--max-clients", options.max_clients, "connections at most", std::size_t{1})
        .option("--max-per-address", options.max_clients_per_address,
                "connections from one IP address at most, 0 for no limit")
        .option("--idle-timeout", idle_s, "seconds a framed client may stay silent, 0 for ever")
        .option("--ping-interval", ping_s, "seconds of silence before a keepalive ping, 0: none")
        .option("--write-timeout", write_s,
                "seconds a client's socket may accept nothing while events wait, 0 for ever")
        .option("--flood-rate", flood_rate, "inputs per second per client (bursts of 3x), 0: off")
        .option("--shutdown-ms", shutdown_ms,
                "on SIGINT/SIGTERM, how long clients get to receive what is queued")
        .option("--memory-sweep-ms", memory_sweep_ms,
                "how often idle clients' outbound buffers are given back, 0: never")
        .flag("--no-heap-trim", no_heap_trim,
              "keep the heap freed after a burst (no malloc_trim once the load settles)");
    if (auto status = cli.parse(argc, argv))
        return *status;
    options.idle_timeout = std::chrono::seconds(idle_s);
    options.resume_grace = std::chrono::seconds(resume_grace_s);
    options.ping_interval = std::chrono::seconds(ping_s);
    options.write_timeout = std::chrono::seconds(write_s);
    options.memory_sweep = std::chrono::milliseconds(memory_sweep_ms);
    options.trim_heap = !no_heap_trim;
    // One thread runs the io_context: connections need no strand each.
    options.single_threaded = threads == 1;
    options.flood.messages_per_second = flood_rate;
    options.flood.burst_messages = std::size_t{flood_rate} * 3;
    if (tls_cert.empty() != tls_key.empty()) {
        std::cerr << "chat_server: --tls-cert and --tls-key go together\n";
        return 2;
    }
    if (!tls_cert.empty()) {
#if PARLEY_HAVE_TLS
        std::error_code ec;
        std::string why;
        options.tls = parley::chat::make_tls({.certificate_file = tls_cert,
                                              .private_key_file = tls_key}, ec, &why);
        if (ec) {
            std::cerr << "chat_server: " << why << '\n';
            return 1;
        }
#else
        std::cerr << "chat_server: built without TLS support (OpenSSL was not found)\n";
        return 1;
#endif
    }
    options.line_port = frames_only ? std::nullopt : std::optional<std::uint16_t>(line_port);
    options.web_port = no_web ? std::nullopt : std::optional<std::uint16_t>(web_port);
    if (!web_origin.empty())
        options.web_origins.push_back(web_origin);
    // Bytes bound too: rooms come and go with their members, so this is
    // what each live room may keep.
    options.history = {.max_messages = history, .max_bytes = 256 * 1024};
    // One write per line, so lines from several threads do not interleave.
    options.log = [](std::string_view line) { std::cerr << (std::string(line) + '\n'); };

    if (redis_history != 0 && (redis_url.empty() || history != 0)) {
        std::cerr << "chat_server: --redis-history needs --redis, and replaces --history\n";
        return 2;
    }
    asio::io_context ioc(static_cast<int>(threads));
    if (!redis_url.empty()) {
#ifdef PARLEY_HAVE_HIREDIS
        std::string error;
        auto where = parley::chat::parse_redis_url(redis_url, error);
        if (!where) {
            std::cerr << "chat_server: --redis " << redis_url << ": " << error << '\n';
            return 2;
        }
        if (expiry_ms <= heartbeat_ms) {
            std::cerr << "chat_server: --redis-expiry-ms must exceed --redis-heartbeat-ms\n";
            return 2;
        }
        options.backplane = parley::chat::redis_backplane::create(
            ioc.get_executor(), {.host = where->first,
                                 .port = where->second,
                                 .prefix = redis_prefix,
                                 .heartbeat = std::chrono::milliseconds(heartbeat_ms),
                                 .expiry = std::chrono::milliseconds(expiry_ms),
                                 .history = {.max_messages = redis_history,
                                             .max_bytes = 256 * 1024},
                                 .log = options.log});
#else
        std::cerr << "chat_server: --redis: this chat_server was built without hiredis, so it "
                     "cannot use Redis (install libhiredis-dev and rebuild)\n";
        return 2;
#endif
    }
    if (!history_db.empty() && !redis_url.empty()) {
        std::cerr << "chat_server: --history-db keeps one server's history; with --redis use "
                     "--redis-history\n";
        return 2;
    }
#ifdef PARLEY_HAVE_SQLITE
    std::shared_ptr<parley::chat::history::sqlite_store> store;
    if (!history_db.empty()) {
        store = std::make_shared<parley::chat::history::sqlite_store>(
            ioc.get_executor(), history_db,
            parley::chat::history::sqlite_store_options{
                .max_records_per_room = history_db_keep,
                .max_age = std::chrono::seconds(history_db_max_age_s),
                .on_failure = [log = options.log](std::error_code, const std::string& line) {
                    log(line); // "history store FILE: ..."
                }});
        // A file that cannot serve (not a database, corrupt, locked, a
        // read-only directory) stops the server before it listens.
        std::error_code load_error;
        store->async_load_rooms(
            [&](std::error_code ec, std::vector<parley::chat::history::room_state>) {
                load_error = ec;
            });
        ioc.run();
        ioc.restart();
        if (load_error) {
            std::cerr << "chat_server: --history-db " << history_db << ": " << load_error.message()
                      << '\n';
            return 1;
        }
        options.history_store = store;
        options.resume_store_messages = history_db_resume;
    }
#else
    if (!history_db.empty()) {
        std::cerr << "chat_server: --history-db: this chat_server was built without SQLite "
                     "(install libsqlite3-dev and rebuild)\n";
        return 2;
    }
#endif
    parley::chat::server server(ioc, options);
    // The server holds its own reference. `options` outlives ioc, and a
    // backplane (timers, sockets on ioc) must not be destroyed after it.
    options.backplane.reset();
    try {
        server.start();
    } catch (const std::system_error& e) {
        std::cerr << "chat_server: " << e.what() << '\n';
        return 1;
    }
    const auto address = asio::ip::make_address(options.host);
    std::cout << "listening on "
              << parley::examples::to_string({address, server.local_port()}) << std::endl;
    if (options.tls)
        std::cout << "TLS on every port" << std::endl;
    if (server.line_port() != 0)
        std::cout << "line mode on "
                  << parley::examples::to_string({address, server.line_port()}) << std::endl;
    if (server.web_port() != 0) {
        const auto web = parley::examples::to_string({address, server.web_port()});
        std::cout << "web port on " << web << std::endl;
        std::cout << "chat in a browser: open " << (options.tls ? "https://" : "http://") << web
                  << "/" << std::endl;
    }

    asio::signal_set signals(ioc, SIGINT, SIGTERM);
    asio::signal_set usr1(ioc, SIGUSR1);
    signals.async_wait([&](std::error_code ec, int) {
        if (ec)
            return;
        usr1.cancel();
        // run() returns once every client is told and closed.
        server.stop(std::chrono::milliseconds(shutdown_ms));
    });
    std::function<void()> wait_usr1 = [&] {
        usr1.async_wait([&](std::error_code ec, int) {
            if (ec)
                return;
            std::cerr << (stats(server) + '\n');
            wait_usr1();
        });
    };
    wait_usr1();

    std::vector<std::thread> pool;
    for (unsigned i = 1; i < threads; ++i)
        pool.emplace_back([&] { ioc.run(); });
    ioc.run();
    for (auto& t : pool)
        t.join();
    std::cerr << (stats(server) + '\n');
#ifdef PARLEY_HAVE_SQLITE
    if (store) { // what is queued is written before the file closes
        options.history_store.reset();
        std::error_code ec;
        store->async_close([&](std::error_code e) { ec = e; });
        ioc.restart();
        ioc.run();
        if (ec)
            std::cerr << "chat_server: --history-db " << history_db << ": " << ec.message() << '\n';
    }
#endif
    std::cout << "stopped" << std::endl;
    return 0;
}
