// Tests for connect.hpp: async_connect and connect over loopback.
#include <parley/net/connect.hpp>

#include <doctest/doctest.h>

#include <asio/bind_cancellation_slot.hpp>
#include <asio/cancellation_signal.hpp>
#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/experimental/deferred.hpp>
#include <asio/io_context.hpp>
#include <asio/read.hpp>
#include <asio/write.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/steady_timer.hpp>
#include <asio/strand.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <random>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using asio::ip::tcp;
using kind = parley::connect_event::kind;

namespace {

const auto loopback = asio::ip::make_address("127.0.0.1");

// A port on which nothing listens: bound by the system, then released.
std::uint16_t refused_port(asio::io_context& ioc) {
    tcp::acceptor probe(ioc, tcp::endpoint(loopback, 0));
    const auto port = probe.local_endpoint().port();
    probe.close();
    return port;
}

// Options that retry fast, recording every event.
parley::connect_options quick_options(std::vector<parley::connect_event>& events) {
    parley::connect_options options;
    options.attempt_timeout = 2s;
    options.max_attempts = 3;
    options.initial_backoff = 20ms;
    options.max_backoff = 1s;
    options.multiplier = 2.0;
    options.jitter = 0.25;
    options.on_state = [&events](const parley::connect_event& e) { events.push_back(e); };
    return options;
}

std::vector<parley::connect_event> of_kind(const std::vector<parley::connect_event>& events,
                                           kind what) {
    std::vector<parley::connect_event> out;
    for (const auto& e : events)
        if (e.what == what)
            out.push_back(e);
    return out;
}

} // namespace

TEST_CASE("backoff_delay grows by the multiplier up to the cap") {
    parley::connect_options options;
    options.initial_backoff = 100ms;
    options.max_backoff = 1000ms;
    options.multiplier = 2.0;
    CHECK(parley::backoff_delay(options, 1) == 100ms);
    CHECK(parley::backoff_delay(options, 2) == 200ms);
    CHECK(parley::backoff_delay(options, 3) == 400ms);
    CHECK(parley::backoff_delay(options, 4) == 800ms);
    CHECK(parley::backoff_delay(options, 5) == 1000ms);
    CHECK(parley::backoff_delay(options, 4000000000u) == 1000ms);

    options.jitter = 0.5;
    std::minstd_rand rng(42);
    for (int i = 0; i < 1000; ++i) {
        const auto d = parley::jittered_backoff_delay(options, 3, rng);
        CHECK(d >= 200ms);
        CHECK(d <= 400ms);
    }
    options.jitter = 0.0;
    CHECK(parley::jittered_backoff_delay(options, 3, rng) == 400ms);
}

TEST_CASE("connect_options::valid rejects nonsense") {
    parley::connect_options options;
    CHECK(options.valid());
    options.multiplier = 0.5;
    CHECK_FALSE(options.valid());
    options.multiplier = 2;
    options.jitter = 1.5;
    CHECK_FALSE(options.valid());
    options.jitter = 0;
    options.max_backoff = 10ms;
    options.initial_backoff = 20ms;
    CHECK_FALSE(options.valid());
}

TEST_CASE("async_connect connects to a listening port") {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(loopback, 0));
    const auto port = acceptor.local_endpoint().port();
    tcp::socket accepted(ioc);
    acceptor.async_accept(accepted, [](std::error_code) {});

    std::vector<parley::connect_event> events;
    tcp::socket socket(ioc);
    std::error_code result = asio::error::would_block;
    tcp::endpoint peer;
    bool inline_completion = true;
    parley::async_connect(socket, "127.0.0.1", port, quick_options(events),
                          [&](std::error_code ec, tcp::endpoint ep) {
                              result = ec;
                              peer = ep;
                          });
    inline_completion = result != asio::error::would_block;
    ioc.run_for(5s);

    CHECK_FALSE(inline_completion);
    CHECK_FALSE(result);
    CHECK(peer == tcp::endpoint(loopback, port));
    CHECK(socket.is_open());
    CHECK(socket.remote_endpoint().port() == port);
    REQUIRE(events.size() == 2);
    CHECK(events[0].what == kind::connecting);
    CHECK(events[0].attempt == 1);
    CHECK(events[1].what == kind::connected);
    CHECK(events[1].describe() == "connected to 127.0.0.1:" + std::to_string(port) +
                                      " (attempt 1)");
}

TEST_CASE("async_connect resolves a host name") {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(loopback, 0));
    const auto port = acceptor.local_endpoint().port();
    tcp::socket accepted(ioc);
    acceptor.async_accept(accepted, [](std::error_code) {});

    std::vector<parley::connect_event> events;
    tcp::socket socket(ioc);
    std::error_code result = asio::error::would_block;
    parley::async_connect(socket, "localhost", port, quick_options(events),
                          [&](std::error_code ec, tcp::endpoint) { result = ec; });
    ioc.run_for(10s);
    // "localhost" may also resolve to ::1, where nothing listens: that
    // address fails and the attempt goes on with 127.0.0.1.
    CHECK_FALSE(result);
    CHECK(of_kind(events, kind::attempt_failed).empty());
    REQUIRE(!events.empty());
    CHECK(events.back().what == kind::connected);
}

TEST_CASE("a refused port fails after max_attempts with growing delays") {
    asio::io_context ioc;
    const auto port = refused_port(ioc);
    std::vector<parley::connect_event> events;
    tcp::socket socket(ioc);
    std::error_code result;
    bool done = false;
    parley::async_connect(socket, "127.0.0.1", port, quick_options(events),
                          [&](std::error_code ec, tcp::endpoint ep) {
                              result = ec;
                              done = true;
                              CHECK(ep == tcp::endpoint());
                          });
    ioc.run_for(10s);
    REQUIRE(done);
    CHECK(result == asio::error::connection_refused);
    CHECK_FALSE(socket.is_open());

    CHECK(of_kind(events, kind::connecting).size() == 3);
    const auto failed = of_kind(events, kind::attempt_failed);
    REQUIRE(failed.size() == 3);
    for (unsigned i = 0; i < 3; ++i) {
        CHECK(failed[i].attempt == i + 1);
        CHECK(failed[i].error == asio::error::connection_refused);
        CHECK(failed[i].giving_up == (i == 2));
    }
    // Delays of 20 ms and 40 ms less up to 25%: [15, 20] then [30, 40].
    CHECK(failed[0].next_delay >= 15ms);
    CHECK(failed[0].next_delay <= 20ms);
    CHECK(failed[1].next_delay >= 30ms);
    CHECK(failed[1].next_delay <= 40ms);
    CHECK(failed[1].next_delay > failed[0].next_delay);
    CHECK(failed[2].next_delay == 0ms);
    CHECK(failed[2].describe() == "attempt 3 failed: Connection refused; giving up");
    CHECK(parley::describe_connect_failure("127.0.0.1", port, 3, result) ==
          "could not connect to 127.0.0.1:" + std::to_string(port) +
              " (3 attempts): Connection refused");
}

TEST_CASE("a listener that starts after the second attempt is reached by the third") {
    asio::io_context ioc;
    const auto port = refused_port(ioc);
    tcp::acceptor acceptor(ioc);
    tcp::socket accepted(ioc);

    std::vector<parley::connect_event> events;
    auto options = quick_options(events);
    options.max_attempts = 5;
    options.on_state = [&](const parley::connect_event& e) {
        events.push_back(e);
        if (e.what == kind::attempt_failed && e.attempt == 2) {
            acceptor.open(tcp::v4());
            acceptor.set_option(tcp::acceptor::reuse_address(true));
            acceptor.bind(tcp::endpoint(loopback, port));
            acceptor.listen();
            acceptor.async_accept(accepted, [](std::error_code) {});
        }
    };
    tcp::socket socket(ioc);
    std::error_code result = asio::error::would_block;
    parley::async_connect(socket, "127.0.0.1", port, options,
                          [&](std::error_code ec, tcp::endpoint) { result = ec; });
    ioc.run_for(10s);
    CHECK_FALSE(result);
    CHECK(of_kind(events, kind::attempt_failed).size() == 2);
    REQUIRE(!events.empty());
    CHECK(events.back().what == kind::connected);
    CHECK(events.back().attempt == 3);
}

TEST_CASE("an address that does not answer fails each attempt with timed_out") {
    asio::io_context ioc;
    // A listener with a backlog of 0 that never accepts: once one
    // connection waits in its queue, the next SYNs go unanswered.
    tcp::acceptor acceptor(ioc, tcp::v4());
    acceptor.bind(tcp::endpoint(loopback, 0));
    acceptor.listen(0);
    const auto port = acceptor.local_endpoint().port();
    std::vector<tcp::socket> fillers;
    for (int i = 0; i < 3; ++i) {
        fillers.emplace_back(ioc);
        fillers.back().async_connect(tcp::endpoint(loopback, port), [](std::error_code) {});
    }
    ioc.run_for(200ms);
    ioc.restart();

    std::vector<parley::connect_event> events;
    auto options = quick_options(events);
    options.attempt_timeout = 150ms;
    options.max_attempts = 2;
    tcp::socket socket(ioc);
    std::error_code result;
    bool done = false;
    const auto start = std::chrono::steady_clock::now();
    parley::async_connect(socket, "127.0.0.1", port, options, [&](std::error_code ec, tcp::endpoint) {
        result = ec;
        done = true;
    });
    while (!done && ioc.run_one_for(5s) != 0) {
    }
    REQUIRE(done);
    CHECK(result == parley::error::timed_out);
    CHECK(std::chrono::steady_clock::now() - start >= 300ms);
    const auto failed = of_kind(events, kind::endpoint_failed);
    REQUIRE(failed.size() == 2);
    CHECK(failed[0].error == parley::error::timed_out);
}

TEST_CASE("cancellation during the wait between attempts stops at once") {
    asio::io_context ioc;
    const auto port = refused_port(ioc);
    std::vector<parley::connect_event> events;
    auto options = quick_options(events);
    options.max_attempts = 0; // until cancelled
    options.initial_backoff = 30s;
    options.max_backoff = 30s;
    asio::cancellation_signal signal;
    asio::steady_timer timer(ioc);
    options.on_state = [&](const parley::connect_event& e) {
        events.push_back(e);
        if (e.what == kind::attempt_failed) {
            timer.expires_after(50ms);
            timer.async_wait([&](std::error_code) { signal.emit(asio::cancellation_type::terminal); });
        }
    };
    tcp::socket socket(ioc);
    std::error_code result;
    bool done = false;
    const auto start = std::chrono::steady_clock::now();
    parley::async_connect(socket, "127.0.0.1", port, options,
                          asio::bind_cancellation_slot(signal.slot(),
                                                       [&](std::error_code ec, tcp::endpoint) {
                                                           result = ec;
                                                           done = true;
                                                       }));
    ioc.run_for(10s);
    REQUIRE(done);
    CHECK(result == asio::error::operation_aborted);
    CHECK(std::chrono::steady_clock::now() - start < 5s);
    CHECK(of_kind(events, kind::attempt_failed).size() == 1);
    CHECK_FALSE(socket.is_open());
}

TEST_CASE("cancellation during a connect stops it") {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::v4());
    acceptor.bind(tcp::endpoint(loopback, 0));
    acceptor.listen(0);
    const auto port = acceptor.local_endpoint().port();
    std::vector<tcp::socket> fillers;
    for (int i = 0; i < 3; ++i) {
        fillers.emplace_back(ioc);
        fillers.back().async_connect(tcp::endpoint(loopback, port), [](std::error_code) {});
    }
    ioc.run_for(200ms);
    ioc.restart();

    for (const auto timeout : {0ms, 30000ms}) { // with and without an attempt timeout
        CAPTURE(timeout.count());
        std::vector<parley::connect_event> events;
        auto options = quick_options(events);
        options.attempt_timeout = timeout;
        asio::cancellation_signal signal;
        asio::steady_timer timer(ioc, 100ms);
        timer.async_wait([&](std::error_code) { signal.emit(asio::cancellation_type::terminal); });
        tcp::socket socket(ioc);
        std::error_code result;
        bool done = false;
        parley::async_connect(socket, "127.0.0.1", port, options,
                              asio::bind_cancellation_slot(signal.slot(),
                                                           [&](std::error_code ec, tcp::endpoint) {
                                                               result = ec;
                                                               done = true;
                                                           }));
        while (!done && ioc.run_one_for(5s) != 0) {
        }
        ioc.restart();
        REQUIRE(done);
        CHECK(result == asio::error::operation_aborted);
        CHECK(of_kind(events, kind::endpoint_failed).empty());
        CHECK_FALSE(socket.is_open());
    }
}

TEST_CASE("invalid options fail with invalid_argument, not from within the call") {
    asio::io_context ioc;
    parley::connect_options options;
    options.multiplier = 0;
    tcp::socket socket(ioc);
    std::error_code result;
    bool done = false;
    parley::async_connect(socket, "127.0.0.1", 1, options, [&](std::error_code ec, tcp::endpoint) {
        result = ec;
        done = true;
    });
    CHECK_FALSE(done);
    ioc.run_for(5s);
    CHECK(done);
    CHECK(result == parley::error::invalid_argument);
}

TEST_CASE("async_connect works with every completion token") {
    asio::io_context ioc;
    tcp::acceptor acceptor(ioc, tcp::endpoint(loopback, 0));
    const auto port = acceptor.local_endpoint().port();
    const auto refused = refused_port(ioc);
    parley::connect_options options;
    options.max_attempts = 2;
    options.initial_backoff = 5ms;
    std::vector<tcp::socket> accepted;
    std::function<void()> accept_loop = [&] {
        acceptor.async_accept([&](std::error_code ec, tcp::socket s) {
            if (ec)
                return;
            accepted.push_back(std::move(s));
            accept_loop();
        });
    };
    accept_loop();

    SUBCASE("use_future") {
        std::thread runner;
        tcp::socket socket(ioc);
        auto work = asio::make_work_guard(ioc);
        runner = std::thread([&] { ioc.run(); });
        auto ok = parley::async_connect(socket, "127.0.0.1", port, options, asio::use_future);
        CHECK(ok.get().port() == port);
        tcp::socket other(ioc);
        auto bad = parley::async_connect(other, "127.0.0.1", refused, options, asio::use_future);
        try {
            bad.get();
            FAIL("expected an exception");
        } catch (const std::system_error& e) {
            CHECK(e.code() == asio::error::connection_refused);
        }
        asio::post(ioc, [&] { acceptor.close(); });
        work.reset();
        runner.join();
    }

    SUBCASE("use_awaitable") {
        bool finished = false;
        asio::co_spawn(
            ioc,
            [&]() -> asio::awaitable<void> {
                tcp::socket socket(ioc);
                auto ep = co_await parley::async_connect(socket, "127.0.0.1", port, options,
                                                         asio::use_awaitable);
                CHECK(ep.port() == port);
                tcp::socket other(ioc);
                auto [ec, none] = co_await parley::async_connect(
                    other, "127.0.0.1", refused, options,
                    asio::experimental::as_tuple(asio::use_awaitable));
                CHECK(ec == asio::error::connection_refused);
                finished = true;
                acceptor.close();
            },
            asio::detached);
        ioc.run_for(10s);
        CHECK(finished);
    }

    SUBCASE("deferred") {
        tcp::socket socket(ioc);
        auto op = parley::async_connect(socket, "127.0.0.1", port, options,
                                        asio::experimental::deferred);
        bool finished = false;
        ioc.poll();
        CHECK_FALSE(socket.is_open()); // nothing happens until it is launched
        std::move(op)([&](std::error_code ec, tcp::endpoint ep) {
            CHECK_FALSE(ec);
            CHECK(ep.port() == port);
            finished = true;
            acceptor.close();
        });
        ioc.run_for(10s);
        CHECK(finished);
    }

    SUBCASE("a handler bound to a strand") {
        auto strand = asio::make_strand(ioc);
        asio::basic_stream_socket<tcp, decltype(strand)> socket(strand);
        bool finished = false;
        parley::async_connect(socket, "127.0.0.1", port, options,
                              [&](std::error_code ec, tcp::endpoint) {
                                  CHECK(strand.running_in_this_thread());
                                  CHECK_FALSE(ec);
                                  finished = true;
                                  acceptor.close();
                              });
        ioc.run_for(10s);
        CHECK(finished);
    }
}

TEST_CASE("blocking connect") {
    asio::io_context server_ioc;
    tcp::acceptor acceptor(server_ioc, tcp::endpoint(loopback, 0));
    const auto port = acceptor.local_endpoint().port();

    asio::io_context ioc; // never run: connect() needs no running context
    tcp::socket socket(ioc);
    std::vector<parley::connect_event> events;
    auto peer = parley::connect(socket, "127.0.0.1", port, quick_options(events));
    CHECK(peer.port() == port);
    CHECK(socket.remote_endpoint().port() == port);
    const char hello[] = "hi";
    CHECK(asio::write(socket, asio::buffer(hello, 2)) == 2);
    tcp::socket server_side = acceptor.accept();
    char got[2];
    CHECK(asio::read(server_side, asio::buffer(got)) == 2);
    CHECK(std::string(got, 2) == "hi");

    const auto refused = refused_port(ioc);
    tcp::socket other(ioc);
    std::error_code ec;
    events.clear();
    CHECK(parley::connect(other, "127.0.0.1", refused, quick_options(events), ec) ==
          tcp::endpoint());
    CHECK(ec == asio::error::connection_refused);
    CHECK(of_kind(events, kind::attempt_failed).size() == 3);
    try {
        parley::connect(other, "127.0.0.1", refused, quick_options(events));
        FAIL("expected an exception");
    } catch (const std::system_error& e) {
        CHECK(e.code() == asio::error::connection_refused);
        CHECK(std::string(e.what()) == "could not connect to 127.0.0.1:" +
                                           std::to_string(refused) +
                                           " (3 attempts): Connection refused");
    }
}
