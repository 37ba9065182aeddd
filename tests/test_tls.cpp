// Tests for include/parley/tls.hpp: contexts, the handshake with its
// timeout, async_connect with certificate and name checks, and
// framed_stream and session over asio::ssl::stream, on loopback with
// throwaway certificates. Skipped (with a message) without OpenSSL.
#if PARLEY_HAVE_TLS
#include <parley/net/tls.hpp>

#include "support/tls_certs.hpp"

#include <parley/stream/framed_stream.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/session.hpp>

#include <doctest/doctest.h>

#include <asio/co_spawn.hpp>
#include <asio/detached.hpp>
#include <asio/experimental/as_tuple.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/use_awaitable.hpp>
#include <asio/use_future.hpp>
#include <asio/write.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <ostream> // doctest prints std::error_code through it
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using parley::as_payload;
using parley::as_string_view;
using tcp = asio::ip::tcp;

void run(asio::io_context& io) {
    io.restart();
    io.run_for(10s);
    CHECK_MESSAGE(io.stopped(), "the io_context still had work after 10 s");
}

parley::connect_options quick() {
    parley::connect_options o;
    o.max_attempts = 1;
    o.attempt_timeout = 3s;
    return o;
}

// A loopback listener handing each connection to `serve`.
struct listener {
    tcp::acceptor acceptor;
    explicit listener(asio::io_context& io) : acceptor(io, {asio::ip::address_v4::loopback(), 0}) {}
    std::uint16_t port() const { return acceptor.local_endpoint().port(); }
};

} // namespace

TEST_CASE("tls: contexts load files and name the file that is wrong") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    CHECK_NOTHROW(parley::tls::server_context(certs.cert(), certs.key()));
    CHECK_NOTHROW(parley::tls::client_context({.ca_file = certs.cert()}));

    std::error_code ec;
    std::string what;
    parley::tls::server_context(certs.dir() + "/missing.pem", certs.key(), ec, &what);
    CHECK(ec);
    CHECK(what.find("missing.pem") != std::string::npos);
    CHECK(what.find("certificate") != std::string::npos);

    // A key that does not belong to the certificate.
    what.clear();
    parley::tls::server_context(certs.cert(), certs.key("other"), ec, &what);
    CAPTURE(what);
    CHECK(ec);
    CHECK(what.find("private key from '" + certs.key("other") + "'") != std::string::npos);
    CHECK(what.find("mismatch") != std::string::npos);

    try {
        parley::tls::client_context({.ca_file = certs.dir() + "/nope.pem"});
        FAIL("no exception for a missing CA file");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("nope.pem") != std::string::npos);
    }
}

TEST_CASE("tls: framed_stream over ssl::stream, async and blocking, with a verified peer") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    asio::io_context io;
    auto server_ctx = parley::tls::server_context(certs.cert(), certs.key());
    auto client_ctx = parley::tls::client_context({.ca_file = certs.cert()});
    listener l(io);

    // Server: handshake, then echo each frame back until the client ends.
    std::vector<std::string> served;
    std::error_code server_end;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
            auto socket = co_await l.acceptor.async_accept(asio::use_awaitable);
            parley::framed_stream<parley::tls::stream> s(std::move(socket), server_ctx);
            co_await parley::tls::async_handshake(s.next_layer(), asio::ssl::stream_base::server,
                                                  2s, asio::use_awaitable);
            for (;;) {
                auto [ec, frame] = co_await s.async_read_frame(
                    asio::experimental::as_tuple(asio::use_awaitable));
                if (ec) {
                    server_end = ec;
                    break;
                }
                served.emplace_back(as_string_view(frame));
                co_await s.async_write_frame(asio::buffer(frame.data(), frame.size()),
                                             asio::use_awaitable);
            }
        },
        asio::detached);

    // Client, by name: SNI and the certificate's DNS name.
    parley::framed_stream<parley::tls::stream> c(io, client_ctx);
    std::error_code connect_ec;
    tcp::endpoint peer;
    parley::tls::async_connect(c.next_layer(), "localhost", l.port(), quick(),
                               [&](std::error_code ec, tcp::endpoint p) {
                                   connect_ec = ec;
                                   peer = p;
                               });
    std::optional<std::string> echoed;
    io.run_one_for(5s); // drive until connected
    while (!connect_ec && peer.port() == 0 && io.run_one_for(5s) != 0) {
    }
    REQUIRE_MESSAGE(!connect_ec, parley::tls::describe(c.next_layer(), connect_ec));
    CHECK(peer.port() == l.port());

    // Async frames, then a large one across several TLS records.
    const std::string big(200000, 'x');
    c.async_write_frame(as_payload("hello"), [&](std::error_code ec, std::size_t n) {
        CHECK_FALSE(ec);
        CHECK(n == 5);
        c.async_read_frame([&](std::error_code rec, parley::frame_view f) {
            CHECK_FALSE(rec);
            echoed = std::string(as_string_view(f));
            c.async_write_frame(as_payload(big), [&](std::error_code wec, std::size_t) {
                CHECK_FALSE(wec);
            });
        });
    });
    while (!echoed && io.run_one_for(5s) != 0) {
    }
    CHECK(echoed == "hello");

    // Blocking reads and writes over the same stream, with the server
    // served by another thread.
    std::thread t([&] { io.run_for(10s); });
    CHECK(as_string_view(c.read_frame()) == big);
    c.write_frame(as_payload("blocking"));
    CHECK(as_string_view(c.read_frame()) == "blocking");
    // A clean TLS end: the server reads end of stream, not a truncation.
    std::error_code ignored;
    c.next_layer().shutdown(ignored);
    c.next_layer().lowest_layer().close(ignored);
    t.join();
    CHECK(served == std::vector<std::string>{"hello", big, "blocking"});
    CHECK(server_end == asio::error::eof);
}

TEST_CASE("tls: a certificate the client does not trust is refused with the reason") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    asio::io_context io;
    auto server_ctx = parley::tls::server_context(certs.cert(), certs.key());
    listener l(io);
    std::error_code server_ec;
    std::optional<parley::tls::stream> served;
    l.acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
        REQUIRE_FALSE(ec);
        served.emplace(std::move(socket), server_ctx);
        parley::tls::async_handshake(*served, asio::ssl::stream_base::server, 2s,
                                     [&](std::error_code hec) { server_ec = hec; });
    });

    SUBCASE("a stranger's CA") {
        auto client_ctx = parley::tls::client_context({.ca_file = certs.cert("other")});
        parley::tls::stream c(io, client_ctx);
        std::error_code result;
        parley::tls::async_connect(c, "localhost", l.port(), quick(),
                                   [&](std::error_code ec, tcp::endpoint) { result = ec; });
        run(io);
        CHECK(result == parley::error::certificate_rejected);
        const std::string why = parley::tls::describe(c, result);
        CAPTURE(why);
        CHECK(why.find("certificate rejected: ") == 0);
        CHECK(why.find("self-signed") != std::string::npos);
        CHECK_FALSE(c.lowest_layer().is_open());
        CHECK(server_ec); // the server sees the client's alert
    }
    SUBCASE("the right CA, by address") {
        auto client_ctx = parley::tls::client_context({.ca_file = certs.cert()});
        parley::tls::stream c(io, client_ctx);
        std::error_code result;
        parley::tls::async_connect(c, "127.0.0.1", l.port(), quick(),
                                   [&](std::error_code ec, tcp::endpoint) { result = ec; });
        run(io);
        CHECK_FALSE(result); // the certificate names 127.0.0.1
        std::error_code ignored;
        c.lowest_layer().close(ignored);
    }
}

TEST_CASE("tls: a host name the certificate was not issued for is refused") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    asio::io_context io;
    auto server_ctx = parley::tls::server_context(certs.cert("other"), certs.key("other"));
    auto client_ctx = parley::tls::client_context({.ca_file = certs.cert("other")});
    listener l(io);
    std::optional<parley::tls::stream> served;
    l.acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
        REQUIRE_FALSE(ec);
        served.emplace(std::move(socket), server_ctx);
        parley::tls::async_handshake(*served, asio::ssl::stream_base::server, 2s,
                                     [](std::error_code) {});
    });
    parley::tls::stream c(io, client_ctx);
    std::error_code result;
    // Trusted, but issued for someone.else, not localhost.
    parley::tls::async_connect(c, "localhost", l.port(), quick(),
                               [&](std::error_code ec, tcp::endpoint) { result = ec; });
    run(io);
    CHECK(result == parley::error::certificate_rejected);
    const std::string why = parley::tls::describe(c, result);
    CAPTURE(why);
    CHECK(why.find("mismatch") != std::string::npos);
}

TEST_CASE("tls: a peer that never completes the handshake times out; a plain-TCP peer fails it") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    asio::io_context io;
    auto server_ctx = parley::tls::server_context(certs.cert(), certs.key());
    listener l(io);
    std::error_code server_ec;
    bool done = false;
    std::optional<parley::tls::stream> served;
    l.acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
        REQUIRE_FALSE(ec);
        served.emplace(std::move(socket), server_ctx);
        parley::tls::async_handshake(*served, asio::ssl::stream_base::server, 200ms,
                                     [&](std::error_code hec) {
                                         server_ec = hec;
                                         done = true;
                                     });
    });
    tcp::socket plain(io);
    plain.connect(tcp::endpoint(asio::ip::address_v4::loopback(), l.port()));

    SUBCASE("silent") {
        const auto start = std::chrono::steady_clock::now();
        run(io);
        CHECK(done);
        CHECK(server_ec == parley::error::timed_out);
        CHECK(std::chrono::steady_clock::now() - start < 3s);
    }
    SUBCASE("speaks plain text") {
        asio::write(plain, asio::buffer(std::string("alice\n")));
        run(io);
        CHECK(done);
        CAPTURE(server_ec.message());
        CHECK(server_ec);
        CHECK(server_ec != parley::error::timed_out);
    }
}

TEST_CASE("tls: session over ssl::stream writes many messages and ends with close_notify") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    asio::io_context io;
    auto server_ctx = parley::tls::server_context(certs.cert(), certs.key());
    auto client_ctx = parley::tls::client_context({.ca_file = certs.cert()});
    listener l(io);

    using tls_session = parley::session<parley::tls::stream>;
    std::shared_ptr<tls_session> session;
    std::vector<std::string> from_client;
    std::error_code closed_with;
    constexpr int count = 2000;
    l.acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
        REQUIRE_FALSE(ec);
        session = std::make_shared<tls_session>(
            parley::tls::stream(std::move(socket), server_ctx),
            parley::session_options{.queue = {.max_bytes = 1 << 24, .max_messages = 100000}});
        session->on_close([&](parley::session_base&, std::error_code why) { closed_with = why; });
        parley::tls::async_handshake(
            session->stream().next_layer(), asio::ssl::stream_base::server, 2s,
            [&](std::error_code hec) {
                REQUIRE_FALSE(hec);
                session->read_frames([&](tls_session&, parley::frame_view f) {
                    from_client.emplace_back(as_string_view(f));
                });
                // Queued all at once: the generic write path gathers them.
                for (int i = 0; i < count; ++i) {
                    std::error_code mec;
                    CHECK(session->send(parley::make_frame_message(
                        "message " + std::to_string(i), mec)));
                }
                session->close(); // flushes, then close_notify
            });
    });

    parley::framed_stream<parley::tls::stream> c(io, client_ctx);
    std::vector<std::string> received;
    std::error_code end;
    std::function<void()> read_next = [&] {
        c.async_read_frame([&](std::error_code ec, parley::frame_view f) {
            if (ec) {
                end = ec;
                return;
            }
            received.emplace_back(as_string_view(f));
            read_next();
        });
    };
    parley::tls::async_connect(c.next_layer(), "127.0.0.1", l.port(), quick(),
                               [&](std::error_code ec, tcp::endpoint) {
                                   REQUIRE_FALSE(ec);
                                   read_next();
                               });
    run(io);
    REQUIRE(received.size() == count);
    CHECK(received.front() == "message 0");
    CHECK(received.back() == "message " + std::to_string(count - 1));
    CHECK(end == asio::error::eof); // close_notify, not a truncated stream
    CHECK_FALSE(parley::tls::is_truncation(end));
    CHECK(closed_with == parley::error::session_closed);
    CHECK(session->stats().sent_messages == count);
}

TEST_CASE("tls: a lingering close: a peer still sending gets the last message and close_notify, not a reset") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    asio::io_context io;
    auto server_ctx = parley::tls::server_context(certs.cert(), certs.key());
    auto client_ctx = parley::tls::client_context({.ca_file = certs.cert()});
    listener l(io);
    // Small socket buffers, so that most of what the client sends is still
    // to come when the session closes.
    l.acceptor.set_option(asio::socket_base::receive_buffer_size(8192));

    using tls_session = parley::session<parley::tls::stream>;
    std::shared_ptr<tls_session> session;
    std::error_code closed_with;
    l.acceptor.async_accept([&](std::error_code ec, tcp::socket socket) {
        REQUIRE_FALSE(ec);
        session = std::make_shared<tls_session>(parley::tls::stream(std::move(socket), server_ctx));
        session->on_close([&](parley::session_base&, std::error_code why) { closed_with = why; });
        parley::tls::async_handshake(session->stream().next_layer(), asio::ssl::stream_base::server, 2s,
                                     [&](std::error_code hec) {
                                         REQUIRE_FALSE(hec);
                                         session->read_frames([](tls_session& self, parley::frame_view) {
                                             std::error_code mec;
                                             self.close(parley::make_frame_message("too much", mec));
                                         });
                                     });
    });

    // A frame, then 2 MiB more the session never reads as frames. A socket
    // closed with that unread would reset the connection: the write would
    // fail and "too much" could be lost before the client reads it.
    std::string input;
    auto append = [&](const std::string& payload) {
        const auto n = static_cast<std::uint32_t>(payload.size());
        input += {static_cast<char>(n >> 24), static_cast<char>(n >> 16), static_cast<char>(n >> 8),
                  static_cast<char>(n)};
        input += payload;
    };
    append("first");
    for (int i = 0; i < 32; ++i)
        append(std::string(64 * 1024, 'x'));

    parley::framed_stream<parley::tls::stream> c(io, client_ctx);
    std::vector<std::string> received;
    std::error_code read_end = asio::error::would_block, write_end = asio::error::would_block;
    auto close_when_done = [&] { // then the session's lingering ends
        if (read_end != asio::error::would_block && write_end != asio::error::would_block) {
            std::error_code ignored;
            c.next_layer().lowest_layer().close(ignored);
        }
    };
    std::function<void()> read_next = [&] {
        c.async_read_frame([&](std::error_code ec, parley::frame_view f) {
            if (ec) {
                read_end = ec;
                return close_when_done();
            }
            received.emplace_back(as_string_view(f));
            read_next();
        });
    };
    parley::tls::async_connect(c.next_layer(), "127.0.0.1", l.port(), quick(), [&](std::error_code ec, tcp::endpoint) {
        REQUIRE_FALSE(ec);
        c.next_layer().lowest_layer().set_option(asio::socket_base::send_buffer_size(8192));
        read_next();
        asio::async_write(c.next_layer(), asio::buffer(input), [&](std::error_code ec, std::size_t) {
            write_end = ec;
            close_when_done();
        });
    });
    run(io);
    CHECK(received == std::vector<std::string>{"too much"});
    CHECK(read_end == asio::error::eof); // close_notify, not a reset
    CHECK_FALSE(write_end);
    CHECK(closed_with == parley::error::session_closed);
}

#else
#include "support/skip.hpp"

#include <doctest/doctest.h>

TEST_CASE("tls: skipped, parley was built without OpenSSL (Debian: apt-get install libssl-dev)") {
    parley::test::skip("OpenSSL was not found at configure time (Debian: apt-get install libssl-dev)");
}
#endif
