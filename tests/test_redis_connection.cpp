// Tests for include/parley/redis_connection.hpp against a scripted peer on
// loopback (no redis-server needed): the commands it writes, every kind of
// reply, pipelining order, and each way the connection fails.
// tests/test_redis_backplane.cpp runs it against a real Redis. Needs
// hiredis at build time; without it the cases are skipped.
#ifdef PARLEY_HAVE_HIREDIS
#include <parley/redis/redis_connection.hpp>
#endif

#include "support/skip.hpp"

#include <doctest/doctest.h>

#ifdef PARLEY_HAVE_HIREDIS
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/post.hpp>
#include <asio/read.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace std::string_view_literals;
using asio::ip::tcp;
using kind = parley::redis::reply::kind;

// A command in RESP, written out by hand: the wire form the tests expect.
std::string resp(const std::vector<std::string>& args) {
    std::string out = "*" + std::to_string(args.size()) + "\r\n";
    for (const auto& a : args)
        out += "$" + std::to_string(a.size()) + "\r\n" + a + "\r\n";
    return out;
}

// A one-connection peer: reads `expect` bytes, then writes each of
// `chunks` separately, then reads until the client closes (or `hang_up`
// says close at once).
struct scripted_peer {
    scripted_peer(asio::io_context& ioc, std::size_t expect, std::vector<std::string> chunks,
                  bool hang_up = false)
        : acceptor(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
        asio::co_spawn(ioc, run(expect, std::move(chunks), hang_up), asio::detached);
    }

    asio::awaitable<void> run(std::size_t expect, std::vector<std::string> chunks, bool hang_up) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        received.resize(expect);
        co_await asio::async_read(socket, asio::buffer(received), asio::use_awaitable);
        for (const auto& c : chunks)
            co_await asio::async_write(socket, asio::buffer(c), asio::use_awaitable);
        if (hang_up)
            co_return;
        char sink[256];
        for (;;)
            co_await socket.async_read_some(asio::buffer(sink), asio::use_awaitable);
    }

    std::uint16_t port() const { return acceptor.local_endpoint().port(); }

    tcp::acceptor acceptor;
    std::string received;
};

parley::connect_options once() {
    parley::connect_options how;
    how.max_attempts = 1;
    how.attempt_timeout = 5s;
    return how;
}

template <class Predicate>
bool run_until(asio::io_context& ioc, Predicate done) {
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!done() && std::chrono::steady_clock::now() < deadline)
        ioc.run_one_for(20ms);
    return done();
}

} // namespace

TEST_CASE("redis_connection: commands go out as RESP; every kind of reply reaches its handler, in order") {
    asio::io_context ioc;
    const std::vector<std::vector<std::string>> commands{
        {"SET", "k", "v"}, {"GET", "k"}, {"GET", "missing"}, {"INCR", "n"},
        {"NOPE"}, {"LRANGE", "l", "0", "-1"}, {"ECHO", std::string("a\0\r\nb", 5)}};
    std::string expected;
    for (const auto& c : commands)
        expected += resp(c);
    // The replies in three writes, split inside a bulk string.
    const std::string all_replies(
        "+OK\r\n$5\r\nhello\r\n$-1\r\n:42\r\n-ERR unknown command 'NOPE'\r\n"
        "*3\r\n$1\r\na\r\n:-7\r\n*0\r\n$5\r\na\0\r\nb\r\n"sv);
    const std::size_t split = all_replies.find("hel") + 2;
    scripted_peer peer(ioc, expected.size(),
                       {all_replies.substr(0, split), all_replies.substr(split, 10),
                        all_replies.substr(split + 10)});

    auto redis = std::make_shared<parley::redis::connection>(ioc.get_executor());
    std::vector<std::pair<std::error_code, parley::redis::reply>> got;
    std::error_code connected = asio::error::would_block;
    redis->connect("127.0.0.1", peer.port(), once(), [&](std::error_code ec) {
        connected = ec;
        if (ec)
            return;
        for (const auto& c : commands)
            redis->command(c, [&](std::error_code ec, const parley::redis::reply& r) {
                got.emplace_back(ec, r);
            });
    });
    REQUIRE(run_until(ioc, [&] { return got.size() == commands.size(); }));
    CHECK_FALSE(connected);
    CHECK(peer.received == expected);
    for (const auto& [ec, r] : got)
        CHECK_FALSE(ec);
    CHECK(got[0].second.type == kind::status);
    CHECK(got[0].second.describe() == "OK");
    CHECK(got[1].second.type == kind::string);
    CHECK(got[1].second.str == "hello");
    CHECK(got[2].second.is_nil());
    CHECK(got[2].second.describe() == "(nil)");
    CHECK(got[3].second.type == kind::integer);
    CHECK(got[3].second.integer == 42);
    CHECK(got[4].second.is_error());
    CHECK(got[4].second.describe() == "error: ERR unknown command 'NOPE'");
    REQUIRE(got[5].second.type == kind::array);
    REQUIRE(got[5].second.elements.size() == 3);
    CHECK(got[5].second.elements[1].integer == -7);
    CHECK(got[5].second.elements[2].type == kind::array);
    CHECK(got[5].second.describe() == "[a, -7, []]");
    CHECK(got[6].second.str == std::string("a\0\r\nb", 5)); // binary-safe both ways
    CHECK(redis->is_open());
    CHECK(redis->pending_bytes() == 0);
    redis->close();
    CHECK_FALSE(redis->is_open());
}

TEST_CASE("redis_connection: garbage from the peer fails the waiting commands and closes, once") {
    asio::io_context ioc;
    scripted_peer peer(ioc, resp({"PING"}).size(), {"?what is this\r\n"});
    auto redis = std::make_shared<parley::redis::connection>(ioc.get_executor());
    std::optional<std::error_code> reply_error, closed_with;
    int closes = 0;
    redis->on_close([&](std::error_code ec) {
        closed_with = ec;
        ++closes;
    });
    redis->connect("127.0.0.1", peer.port(), once(), [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        redis->command({"PING"}, [&](std::error_code ec, const parley::redis::reply& r) {
            reply_error = ec;
            CHECK(r.is_nil());
        });
    });
    REQUIRE(run_until(ioc, [&] { return reply_error && closed_with; }));
    CHECK(*reply_error == parley::error::malformed_message);
    CHECK(*closed_with == parley::error::malformed_message);
    CHECK_FALSE(redis->is_open());
    ioc.run_for(50ms);
    CHECK(closes == 1);
}

TEST_CASE("redis_connection: a reply nobody asked for is malformed_message") {
    asio::io_context ioc;
    scripted_peer peer(ioc, 0, {"+OK\r\n"});
    auto redis = std::make_shared<parley::redis::connection>(ioc.get_executor());
    std::optional<std::error_code> closed_with;
    redis->on_close([&](std::error_code ec) { closed_with = ec; });
    redis->connect("127.0.0.1", peer.port(), once(), [&](std::error_code ec) { CHECK_FALSE(ec); });
    REQUIRE(run_until(ioc, [&] { return closed_with.has_value(); }));
    CHECK(*closed_with == parley::error::malformed_message);
}

TEST_CASE("redis_connection: the peer hanging up fails what waits with eof") {
    asio::io_context ioc;
    scripted_peer peer(ioc, resp({"GET", "k"}).size(), {}, true);
    auto redis = std::make_shared<parley::redis::connection>(ioc.get_executor());
    std::optional<std::error_code> reply_error, closed_with;
    redis->on_close([&](std::error_code ec) { closed_with = ec; });
    redis->connect("127.0.0.1", peer.port(), once(), [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        redis->command({"GET", "k"},
                       [&](std::error_code ec, const parley::redis::reply&) { reply_error = ec; });
    });
    REQUIRE(run_until(ioc, [&] { return reply_error && closed_with; }));
    CHECK(*reply_error == asio::error::eof);
    CHECK(*closed_with == asio::error::eof);
}

TEST_CASE("redis_connection: close() aborts what waits; commands before connect or past the limit fail, posted") {
    asio::io_context ioc;
    scripted_peer peer(ioc, 1u << 20, {}); // reads and never answers
    parley::redis::connection_options small;
    small.max_pending_replies = 2;
    auto redis = std::make_shared<parley::redis::connection>(ioc.get_executor(), small);

    // Not connected yet: the handler is posted, not called from command().
    std::optional<std::error_code> early;
    redis->command({"PING"}, [&](std::error_code ec, const parley::redis::reply&) { early = ec; });
    CHECK_FALSE(early.has_value());
    REQUIRE(run_until(ioc, [&] { return early.has_value(); }));
    CHECK(*early == asio::error::not_connected);

    std::vector<std::error_code> results;
    std::optional<std::error_code> closed_with;
    bool connected = false;
    redis->on_close([&](std::error_code ec) { closed_with = ec; });
    redis->connect("127.0.0.1", peer.port(), once(), [&](std::error_code ec) {
        REQUIRE_FALSE(ec);
        connected = true;
        for (int i = 0; i < 3; ++i) // the third is one reply too many
            redis->command({"PING"}, [&](std::error_code ec, const parley::redis::reply&) {
                results.push_back(ec);
            });
        CHECK(results.empty());
    });
    REQUIRE(run_until(ioc, [&] { return results.size() == 1; }));
    CHECK(results[0] == parley::error::queue_full);
    ioc.run_for(50ms);
    CHECK(results.size() == 1); // the other two still wait for replies
    REQUIRE(connected);
    asio::post(redis->get_executor(), [&] { redis->close(); });
    REQUIRE(run_until(ioc, [&] { return results.size() == 3 && closed_with; }));
    CHECK(results[1] == asio::error::operation_aborted);
    CHECK(results[2] == asio::error::operation_aborted);
    CHECK(*closed_with == asio::error::operation_aborted);
}

TEST_CASE("redis_connection: a refused connect reports the error and no close") {
    asio::io_context ioc;
    tcp::acceptor probe(ioc, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    const auto port = probe.local_endpoint().port();
    probe.close();
    auto redis = std::make_shared<parley::redis::connection>(ioc.get_executor());
    bool closed = false;
    redis->on_close([&](std::error_code) { closed = true; });
    std::optional<std::error_code> result;
    redis->connect("127.0.0.1", port, once(), [&](std::error_code ec) { result = ec; });
    REQUIRE(run_until(ioc, [&] { return result.has_value(); }));
    CHECK(*result == asio::error::connection_refused);
    CHECK_FALSE(redis->is_open());
    ioc.run_for(50ms);
    CHECK_FALSE(closed);
}

#else

TEST_CASE("redis_connection: skipped, parley was built without hiredis") {
    parley::test::skip("hiredis was not found at configure time (Debian: apt-get install libhiredis-dev)");
}

#endif
