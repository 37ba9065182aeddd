// Tests for async_client.hpp over loopback.
#include <parley/client/async_client.hpp>

#include <doctest/doctest.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;
using event_kind = parley::client_event::kind;
using kind = parley::connect_event::kind;
constexpr auto with_error = asio::experimental::as_tuple(asio::use_awaitable);

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// Fast retries for tests.
parley::client_options quick_options() {
    parley::client_options options;
    options.connect.attempt_timeout = 2s;
    options.connect.max_attempts = 3;
    options.connect.initial_backoff = 10ms;
    options.connect.max_backoff = 100ms;
    return options;
}

// A framed server on loopback run by the test's io_context. Each accepted
// connection is handed to `serve`.
struct test_server {
    using session_fn = std::function<asio::awaitable<void>(parley::framed_stream<tcp::socket>)>;

    test_server(asio::io_context& ioc, session_fn serve, std::uint16_t port = 0)
        : acceptor(ioc), serve(std::move(serve)) {
        listen(port);
    }

    void listen(std::uint16_t port) {
        acceptor.open(tcp::v4());
        acceptor.set_option(tcp::acceptor::reuse_address(true));
        acceptor.bind(tcp::endpoint(loopback, port));
        acceptor.listen();
        asio::co_spawn(acceptor.get_executor(), accept_loop(), asio::detached);
    }

    asio::awaitable<void> accept_loop() {
        for (;;) {
            auto [ec, socket] = co_await acceptor.async_accept(with_error);
            if (ec)
                co_return;
            ++accepted;
            asio::co_spawn(acceptor.get_executor(),
                           serve(parley::framed_stream<tcp::socket>(std::move(socket))),
                           asio::detached);
        }
    }

    std::uint16_t port() const { return acceptor.local_endpoint().port(); }

    tcp::acceptor acceptor;
    session_fn serve;
    int accepted = 0;
};

// Echoes every frame until end of stream.
asio::awaitable<void> echo_on(parley::framed_stream<tcp::socket>& stream) {
    for (;;) {
        auto [ec, frame] = co_await stream.async_read_frame(with_error);
        if (ec)
            co_return;
        std::string copy(parley::as_string_view(frame));
        auto [wec, n] = co_await stream.async_write_frame(parley::as_payload(copy), with_error);
        if (wec)
            co_return;
    }
}

// Echoes every frame until end of stream, then closes.
asio::awaitable<void> echo(parley::framed_stream<tcp::socket> stream) {
    co_await echo_on(stream);
}

// Runs `ioc` until `done()` holds, it runs out of work, or `limit` passes.
// (The test servers keep accepting, so run_for() alone would always wait
// for its whole limit.)
template <class Predicate>
bool run_until(asio::io_context& ioc, Predicate done, std::chrono::seconds limit = 10s) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (!done() && !ioc.stopped() && std::chrono::steady_clock::now() < deadline)
        ioc.run_one_for(20ms);
    return done();
}

std::vector<event_kind> kinds(const std::vector<parley::client_event>& events) {
    std::vector<event_kind> out;
    for (const auto& e : events)
        if (e.what != event_kind::connect_progress)
            out.push_back(e.what);
    return out;
}

} // namespace

TEST_CASE("async_client: connect, send, receive, close") {
    asio::io_context ioc;
    test_server server(ioc, echo);
    parley::async_client client(ioc, quick_options());
    std::vector<std::string> received;
    std::vector<parley::client_event> events;
    client.on_frame([&](parley::frame_view f) { received.emplace_back(parley::as_string_view(f)); });
    client.on_event([&](const parley::client_event& e) { events.push_back(e); });

    CHECK(client.state() == parley::client_state::idle);
    std::error_code ec;
    CHECK_FALSE(client.send("too early", ec));
    CHECK(ec == asio::error::not_connected);

    bool closed = false;
    std::error_code close_result = asio::error::would_block;
    client.async_connect("127.0.0.1", server.port(), [&](std::error_code cec, tcp::endpoint ep) {
        REQUIRE_FALSE(cec);
        CHECK(ep.port() == server.port());
        CHECK(client.state() == parley::client_state::connected);
        CHECK(client.remote_endpoint()->port() == server.port());
        for (int i = 0; i < 10; ++i)
            CHECK(client.send("frame " + std::to_string(i)));
        CHECK(client.send(""));
        client.async_close([&](std::error_code e) {
            close_result = e;
            closed = true;
        });
        CHECK(client.state() == parley::client_state::closing);
        CHECK_FALSE(client.send("too late", ec));
        CHECK(ec == parley::error::session_closed);
    });
    // Started from outside the running context: the operation moves to the
    // client's executor, so nothing has happened yet.
    CHECK(client.state() == parley::client_state::idle);
    run_until(ioc, [&] { return closed; });
    REQUIRE(closed);
    CHECK_FALSE(close_result);
    CHECK(client.state() == parley::client_state::closed);
    // The echoes of everything sent arrived before the server closed.
    REQUIRE(received.size() == 11);
    CHECK(received[0] == "frame 0");
    CHECK(received[9] == "frame 9");
    CHECK(received[10] == "");
    CHECK(kinds(events) == std::vector{event_kind::connected, event_kind::closed});
    CHECK(events.front().what == event_kind::connect_progress);
    CHECK(events.back().describe() == "closed");
}

TEST_CASE("async_client: close() flushes 1000 queued frames, then the peer reads end of stream") {
    asio::io_context ioc;
    std::vector<std::string> got;
    std::error_code peer_end;
    bool peer_done = false;
    // A peer that starts reading late, so that close() finds the queue full.
    test_server server(ioc, [&](parley::framed_stream<tcp::socket> stream) -> asio::awaitable<void> {
        asio::steady_timer pause(stream.get_executor(), 200ms);
        co_await pause.async_wait(asio::use_awaitable);
        for (;;) {
            auto [ec, frame] = co_await stream.async_read_frame(with_error);
            if (ec) {
                peer_end = ec;
                break;
            }
            got.emplace_back(parley::as_string_view(frame));
        }
        peer_done = true;
        // Closing on end of stream, as a server does, ends the client's close.
    });

    auto options = quick_options();
    options.queue.max_bytes = 64 * 1024 * 1024;
    options.queue.max_messages = 2000;
    parley::async_client client(ioc, options);
    std::size_t queued_at_close = 0;
    std::vector<parley::client_event> events;
    client.on_event([&](const parley::client_event& e) { events.push_back(e); });
    client.async_connect("127.0.0.1", server.port(), [&](std::error_code ec, tcp::endpoint) {
        REQUIRE_FALSE(ec);
        for (int i = 0; i < 1000; ++i) {
            std::string payload = std::to_string(i) + ":" + std::string(16 * 1024, 'x');
            REQUIRE(client.send(payload));
        }
        queued_at_close = client.queued_frames();
        client.close();
    });
    run_until(ioc, [&] { return peer_done && client.state() == parley::client_state::closed; }, 30s);
    CHECK(queued_at_close == 1000);
    REQUIRE(peer_done);
    CHECK(peer_end == asio::error::eof);
    REQUIRE(got.size() == 1000);
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(got[i].starts_with(std::to_string(i) + ":"));
        REQUIRE(got[i].size() == std::to_string(i).size() + 1 + 16 * 1024);
    }
    REQUIRE(!events.empty());
    CHECK(events.back().what == event_kind::closed);
    CHECK_FALSE(events.back().error);
    CHECK(events.back().unsent == 0);
    CHECK(client.state() == parley::client_state::closed);
}

TEST_CASE("async_client: a close that cannot flush in time reports timed_out") {
    asio::io_context ioc;
    std::vector<std::shared_ptr<parley::framed_stream<tcp::socket>>> held;
    // A peer that never reads.
    test_server server(ioc, [&](parley::framed_stream<tcp::socket> stream) -> asio::awaitable<void> {
        held.push_back(std::make_shared<parley::framed_stream<tcp::socket>>(std::move(stream)));
        co_return;
    });
    auto options = quick_options();
    options.queue.max_bytes = 64 * 1024 * 1024;
    parley::async_client client(ioc, options);
    std::vector<parley::client_event> events;
    client.on_event([&](const parley::client_event& e) { events.push_back(e); });
    std::error_code close_result = asio::error::would_block;
    const auto start = std::chrono::steady_clock::now();
    auto elapsed = start - start;
    client.async_connect("127.0.0.1", server.port(), [&](std::error_code ec, tcp::endpoint) {
        REQUIRE_FALSE(ec);
        const std::string big(1024 * 1024, 'y');
        for (int i = 0; i < 32; ++i)
            REQUIRE(client.send(big));
        client.async_close(200ms, [&](std::error_code e) {
            close_result = e;
            elapsed = std::chrono::steady_clock::now() - start;
        });
    });
    run_until(ioc, [&] { return close_result != asio::error::would_block; });
    CHECK(close_result == parley::error::timed_out);
    CHECK(elapsed >= 200ms);
    CHECK(elapsed < 5s);
    REQUIRE(!events.empty());
    CHECK(events.back().what == event_kind::closed);
    CHECK(events.back().error == parley::error::timed_out);
    CHECK(events.back().unsent > 0);
}

TEST_CASE("async_client: send refuses what it cannot queue") {
    asio::io_context ioc;
    std::vector<std::shared_ptr<parley::framed_stream<tcp::socket>>> held;
    test_server server(ioc, [&](parley::framed_stream<tcp::socket> stream) -> asio::awaitable<void> {
        held.push_back(std::make_shared<parley::framed_stream<tcp::socket>>(std::move(stream)));
        co_return;
    });
    auto options = quick_options();
    options.queue.max_messages = 4;
    options.max_payload = 1000;
    parley::async_client client(ioc, options);
    bool checked = false;
    client.async_connect("127.0.0.1", server.port(), [&](std::error_code ec, tcp::endpoint) {
        REQUIRE_FALSE(ec);
        std::error_code send_ec;
        CHECK_FALSE(client.send(std::string(1001, 'z'), send_ec));
        CHECK(send_ec == parley::error::frame_too_large);
        for (int i = 0; i < 4; ++i)
            CHECK(client.send("ok", send_ec));
        CHECK_FALSE(client.send("one too many", send_ec));
        CHECK(send_ec == parley::error::queue_full);
        CHECK(client.queued_frames() == 4);
        CHECK(client.queued_bytes() == 4 * 6);
        checked = true;
        client.abort();
    });
    run_until(ioc, [&] { return checked && client.state() == parley::client_state::closed; });
    CHECK(checked);
    CHECK(client.state() == parley::client_state::closed);
}

TEST_CASE("async_client: a failed connect reports why") {
    asio::io_context ioc;
    tcp::acceptor probe(ioc, tcp::endpoint(loopback, 0));
    const auto port = probe.local_endpoint().port();
    probe.close();

    parley::async_client client(ioc, quick_options());
    std::vector<parley::client_event> events;
    client.on_event([&](const parley::client_event& e) { events.push_back(e); });
    std::error_code result;
    client.async_connect("127.0.0.1", port, [&](std::error_code ec, tcp::endpoint ep) {
        result = ec;
        CHECK(ep == tcp::endpoint());
    });
    run_until(ioc, [&] { return client.state() == parley::client_state::closed; });
    CHECK(result == asio::error::connection_refused);
    CHECK(client.state() == parley::client_state::closed);
    CHECK(kinds(events) == std::vector{event_kind::closed});
    CHECK(events.back().error == asio::error::connection_refused);
    int failed_attempts = 0;
    for (const auto& e : events)
        if (e.what == event_kind::connect_progress &&
            e.progress.what == parley::connect_event::kind::attempt_failed)
            ++failed_attempts;
    CHECK(failed_attempts == 3);
}

TEST_CASE("async_client: reconnects when the server restarts") {
    asio::io_context ioc;
    std::vector<std::shared_ptr<parley::framed_stream<tcp::socket>>> sessions;
    auto keep = [&](parley::framed_stream<tcp::socket> stream) -> asio::awaitable<void> {
        auto s = std::make_shared<parley::framed_stream<tcp::socket>>(std::move(stream));
        sessions.push_back(s);
        co_await echo_on(*s);
    };
    auto server = std::make_unique<test_server>(ioc, keep);
    const auto port = server->port();

    auto options = quick_options();
    options.reconnect = true;
    options.connect.max_attempts = 0;
    parley::async_client client(ioc, options);
    std::vector<parley::client_event> events;
    std::vector<std::string> received;
    int connections = 0;
    client.on_frame([&](parley::frame_view f) {
        received.emplace_back(parley::as_string_view(f));
        if (received.size() == 1) {
            // The server goes away: its listener and its connections.
            server.reset();
            for (auto& s : sessions)
                s->next_layer().close();
            sessions.clear();
        } else if (received.size() == 2) {
            client.close();
        }
    });
    client.on_event([&](const parley::client_event& e) {
        events.push_back(e);
        // The server comes back once the client has failed to reach it
        // twice: the reconnection must have been retried.
        if (e.what == event_kind::connect_progress && e.progress.what == kind::attempt_failed &&
            e.progress.attempt == 2 && !server)
            server = std::make_unique<test_server>(ioc, echo, port);
        if (e.what == event_kind::connected) {
            ++connections;
            // A protocol's handshake goes here, on every connection.
            CHECK(client.send("hello " + std::to_string(connections)));
        }
    });
    client.async_connect("127.0.0.1", port, [](std::error_code ec, tcp::endpoint) {
        CHECK_FALSE(ec);
    });
    run_until(ioc, [&] { return client.state() == parley::client_state::closed; }, 20s);
    CHECK(connections == 2);
    REQUIRE(received.size() == 2);
    CHECK(received[0] == "hello 1");
    CHECK(received[1] == "hello 2");
    const auto k = kinds(events);
    REQUIRE(k.size() == 4);
    CHECK(k == std::vector{event_kind::connected, event_kind::disconnected, event_kind::connected,
                           event_kind::closed});
    for (const auto& e : events)
        if (e.what == event_kind::disconnected) {
            CHECK(e.reconnecting);
            CHECK(e.describe().find("reconnecting in") != std::string::npos);
        }
    // Between the disconnection and the second connection: two refused
    // attempts, then the third connected.
    std::vector<std::pair<kind, unsigned>> retries;
    bool lost = false;
    for (const auto& e : events) {
        lost = lost || e.what == event_kind::disconnected;
        if (lost && e.what == event_kind::connect_progress &&
            (e.progress.what == kind::attempt_failed || e.progress.what == kind::connected)) {
            retries.emplace_back(e.progress.what, e.progress.attempt);
            if (e.progress.what == kind::attempt_failed)
                CHECK(e.progress.error == asio::error::connection_refused);
        }
    }
    CHECK(retries == std::vector<std::pair<kind, unsigned>>{
                         {kind::attempt_failed, 1}, {kind::attempt_failed, 2}, {kind::connected, 3}});
    CHECK(client.state() == parley::client_state::closed);
}

TEST_CASE("async_client: without reconnect, a lost connection closes the client") {
    asio::io_context ioc;
    test_server server(ioc, [](parley::framed_stream<tcp::socket> stream) -> asio::awaitable<void> {
        co_await stream.async_write_frame(parley::as_payload("bye"), asio::use_awaitable);
    });
    parley::async_client client(ioc, quick_options());
    std::vector<parley::client_event> events;
    client.on_event([&](const parley::client_event& e) { events.push_back(e); });
    client.async_connect("127.0.0.1", server.port(), [](std::error_code, tcp::endpoint) {});
    run_until(ioc, [&] { return client.state() == parley::client_state::closed; });
    CHECK(kinds(events) ==
          std::vector{event_kind::connected, event_kind::disconnected, event_kind::closed});
    REQUIRE(events.size() >= 2);
    const auto& lost = events[events.size() - 2];
    CHECK(lost.error == asio::error::eof);
    CHECK_FALSE(lost.reconnecting);
    CHECK(lost.describe().ends_with("closed by the peer"));
    CHECK(client.state() == parley::client_state::closed);
}

TEST_CASE("async_client: cancelling async_connect stops the retries") {
    asio::io_context ioc;
    tcp::acceptor probe(ioc, tcp::endpoint(loopback, 0));
    const auto port = probe.local_endpoint().port();
    probe.close();
    auto options = quick_options();
    options.connect.max_attempts = 0;
    options.connect.initial_backoff = 10s;
    options.connect.max_backoff = 10s;
    parley::async_client client(ioc, options);
    asio::cancellation_signal signal;
    asio::steady_timer timer(ioc, 100ms);
    timer.async_wait([&](std::error_code) { signal.emit(asio::cancellation_type::terminal); });
    std::error_code result;
    const auto start = std::chrono::steady_clock::now();
    client.async_connect("127.0.0.1", port,
                         asio::bind_cancellation_slot(signal.slot(),
                                                      [&](std::error_code ec, tcp::endpoint) {
                                                          result = ec;
                                                      }));
    run_until(ioc, [&] { return result == asio::error::operation_aborted; }, 20s);
    CHECK(result == asio::error::operation_aborted);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(client.state() == parley::client_state::closed);
}

TEST_CASE("async_client: close() while connecting stops it") {
    asio::io_context ioc;
    tcp::acceptor probe(ioc, tcp::endpoint(loopback, 0));
    const auto port = probe.local_endpoint().port();
    probe.close();
    auto options = quick_options();
    options.connect.max_attempts = 0;
    options.connect.initial_backoff = 10s;
    options.connect.max_backoff = 10s;
    parley::async_client client(ioc, options);
    std::error_code connect_result, close_result = asio::error::would_block;
    client.async_connect("127.0.0.1", port,
                         [&](std::error_code ec, tcp::endpoint) { connect_result = ec; });
    asio::steady_timer timer(ioc, 50ms);
    timer.async_wait([&](std::error_code) {
        client.async_close([&](std::error_code ec) { close_result = ec; });
    });
    const auto start = std::chrono::steady_clock::now();
    run_until(ioc, [&] { return connect_result && !close_result; }, 20s);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(connect_result == asio::error::operation_aborted);
    CHECK_FALSE(close_result);
}

TEST_CASE("async_client: abort() during close drops the queue") {
    asio::io_context ioc;
    std::vector<std::shared_ptr<parley::framed_stream<tcp::socket>>> held;
    test_server server(ioc, [&](parley::framed_stream<tcp::socket> stream) -> asio::awaitable<void> {
        held.push_back(std::make_shared<parley::framed_stream<tcp::socket>>(std::move(stream)));
        co_return;
    });
    auto options = quick_options();
    options.queue.max_bytes = 64 * 1024 * 1024;
    parley::async_client client(ioc, options);
    std::error_code close_result;
    std::vector<parley::client_event> events;
    client.on_event([&](const parley::client_event& e) { events.push_back(e); });
    client.async_connect("127.0.0.1", server.port(), [&](std::error_code ec, tcp::endpoint) {
        REQUIRE_FALSE(ec);
        for (int i = 0; i < 32; ++i)
            client.send(std::string(1024 * 1024, 'a'));
        client.async_close(10s, [&](std::error_code e) { close_result = e; });
        asio::post(ioc, [&] { client.abort(); });
    });
    run_until(ioc, [&] { return close_result == asio::error::operation_aborted; });
    CHECK(close_result == asio::error::operation_aborted);
    REQUIRE(!events.empty());
    CHECK(events.back().what == event_kind::closed);
    CHECK(events.back().error == asio::error::operation_aborted);
    CHECK(events.back().unsent > 0);
}

TEST_CASE("async_client: may be destroyed from within its own frame handler") {
    asio::io_context ioc;
    test_server server(ioc, echo);
    auto client = std::make_unique<parley::async_client>(ioc, quick_options());
    int frames = 0;
    client->on_frame([&](parley::frame_view) {
        ++frames;
        client.reset();
    });
    client->async_connect("127.0.0.1", server.port(), [&](std::error_code ec, tcp::endpoint) {
        REQUIRE_FALSE(ec);
        client->send("one");
        client->send("two");
    });
    run_until(ioc, [&] { return !client; }, 5s);
    ioc.run_for(100ms); // nothing more may happen
    CHECK(frames == 1);
    CHECK_FALSE(client);
}

TEST_CASE("async_client: completion tokens") {
    asio::io_context ioc;
    test_server server(ioc, echo);
    const auto port = server.port();

    SUBCASE("use_awaitable") {
        bool finished = false;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                parley::async_client client(co_await asio::this_coro::executor, quick_options());
                std::string echoed;
                client.on_frame([&](parley::frame_view f) { echoed = parley::as_string_view(f); });
                auto ep = co_await client.async_connect("127.0.0.1", port, asio::use_awaitable);
                CHECK(ep.port() == port);
                client.send("ping");
                co_await client.async_close(asio::use_awaitable);
                CHECK(echoed == "ping");
                finished = true;
                server.acceptor.close();
            },
            asio::detached);
        run_until(ioc, [&] { return finished; });
        CHECK(finished);
    }

    SUBCASE("use_future") {
        auto work = asio::make_work_guard(ioc);
        std::thread runner([&] { ioc.run(); });
        {
            parley::async_client client(ioc, quick_options());
            auto connected = client.async_connect("127.0.0.1", port, asio::use_future);
            CHECK(connected.get().port() == port);
            auto closed = client.async_close(asio::use_future);
            closed.get();
            // Destroy the client on its own thread.
            asio::post(ioc, asio::use_future([c = std::move(client)]() mutable {
                auto gone = std::move(c);
            })).get();
        }
        asio::post(ioc, [&] { server.acceptor.close(); });
        work.reset();
        runner.join();
    }

    SUBCASE("deferred") {
        parley::async_client client(ioc, quick_options());
        auto connect = client.async_connect("127.0.0.1", port, asio::experimental::deferred);
        ioc.poll();
        CHECK(client.state() == parley::client_state::idle);
        bool finished = false;
        std::move(connect)([&](std::error_code ec, tcp::endpoint) {
            CHECK_FALSE(ec);
            auto close = client.async_close(asio::experimental::deferred);
            std::move(close)([&](std::error_code cec) {
                CHECK_FALSE(cec);
                finished = true;
                server.acceptor.close();
            });
        });
        run_until(ioc, [&] { return finished; });
        CHECK(finished);
    }
}

TEST_CASE("async_client: on a strand of an io_context run by two threads") {
    asio::io_context ioc(2);
    test_server server(ioc, echo);
    const auto port = server.port();
    using strand_type = asio::strand<asio::io_context::executor_type>;
    parley::basic_async_client<strand_type> client(asio::make_strand(ioc), quick_options());
    std::atomic<int> echoed{0};
    std::promise<std::error_code> closed;
    client.on_frame([&](parley::frame_view) {
        CHECK(client.get_executor().running_in_this_thread());
        if (++echoed == 200)
            client.async_close([&](std::error_code ec) {
                closed.set_value(ec);
                ioc.stop();
            });
    });
    client.async_connect("127.0.0.1", port, [&](std::error_code ec, tcp::endpoint) {
        REQUIRE_FALSE(ec);
        for (int i = 0; i < 200; ++i)
            client.send("frame " + std::to_string(i));
    });
    asio::steady_timer watchdog(ioc, 10s);
    watchdog.async_wait([&](std::error_code ec) {
        if (!ec)
            ioc.stop();
    });
    std::thread second([&] { ioc.run(); });
    auto result = closed.get_future();
    ioc.run();
    second.join();
    REQUIRE(result.wait_for(0s) == std::future_status::ready);
    CHECK_FALSE(result.get());
    CHECK(echoed == 200);
}
