// The chat server over TLS (parley/chat/tls.hpp) and its access token:
// framed TLS clients chat, a wrong CA and a plain-TCP client are refused
// and counted, a silent one times out, `openssl s_client` chats in line
// mode, and /auth TOKEN guards the door. Loopback only, throwaway
// certificates, every wait bounded.
#include "support/skip.hpp"
#include "test_chat_support.hpp"

#include <parley/constant_time.hpp>

#if PARLEY_HAVE_TLS
#include "support/tls_certs.hpp"

#include <parley/chat/tls.hpp>
#include <parley/net/tls.hpp>

#include <asio/ip/tcp.hpp>
#include <asio/io_context.hpp>

#include <cstdio>
#include <fstream>
#include <future>
#include <memory>
#include <sstream>
#endif

#include <string>

using namespace parley::test::chat;

TEST_CASE("chat access token: /auth before the nickname, one wrong token closes, counted") {
    pc::server_options options;
    options.access_token = "s3cret";
    server_fixture f(options);

    // Without a token: told how, and the connection stays usable.
    client alice(f.port());
    alice.expect<pc::welcome_event>();
    alice.say("alice");
    const auto hint = alice.expect_error("access_required");
    CHECK(hint.message.find("/auth") != std::string::npos);
    alice.say("/auth s3cret");
    CHECK(alice.expect<pc::notice_event>().text.find("access granted") != std::string::npos);
    alice.say("alice");
    CHECK(alice.expect<pc::nick_accepted_event>().nick == "alice");
    alice.expect<pc::join_event>();
    alice.expect<pc::members_event>();

    // A wrong token: access_denied, then closed; nobody hears of it.
    client mallory(f.port());
    mallory.expect<pc::welcome_event>();
    mallory.say("/auth s3creT");
    CHECK(mallory.expect_error("access_denied").message.find("wrong access token") !=
          std::string::npos);
    CHECK(mallory.conn().wait_closed());
    // A token with the right prefix, and an empty one, are wrong too.
    client eve(f.port());
    eve.expect<pc::welcome_event>();
    eve.say("/auth s3cret2");
    eve.expect_error("access_denied");
    CHECK(eve.conn().wait_closed());
    client empty(f.port());
    empty.expect<pc::welcome_event>();
    empty.say("/auth");
    empty.expect_error("access_denied");
    CHECK(empty.conn().wait_closed());

    CHECK(f.server().security().access_denied == 3);
    CHECK(alice.silent());

    // Line mode asks the same.
    connection line(f.line_port());
    REQUIRE(line.recv_line());
    line.send_raw("/auth s3cret\nbob\n");
    bool accepted = false;
    for (int i = 0; i < 5 && !accepted; ++i)
        if (auto l = line.recv_line())
            accepted = l->find("bob") != std::string::npos;
    CHECK(accepted);
}

#if PARLEY_HAVE_TLS

namespace {

// A framed chat client over TLS, every wait bounded: an io_context of its
// own, run only while the test waits for something.
class tls_client {
public:
    explicit tls_client(const std::string& ca_file)
        : ctx_(parley::tls::client_context({.ca_file = ca_file})), stream_(io_, ctx_) {}

    std::error_code connect(std::uint16_t port, const std::string& host = "localhost") {
        parley::connect_options o;
        o.max_attempts = 1;
        o.attempt_timeout = 3s;
        std::optional<std::error_code> result;
        parley::tls::async_connect(stream_.next_layer(), host, port, o,
                                   [&](std::error_code ec, asio::ip::tcp::endpoint) { result = ec; });
        run_until([&] { return result.has_value(); });
        REQUIRE(result.has_value());
        return *result;
    }

    std::string describe(std::error_code ec) { return parley::tls::describe(stream_.next_layer(), ec); }

    std::optional<pc::event> next(clock::duration timeout = patience) {
        std::optional<std::string> payload;
        bool done = false;
        stream_.async_read_frame([&](std::error_code ec, parley::frame_view f) {
            done = true;
            if (!ec)
                payload = std::string(parley::as_string_view(f));
            else
                end_ = ec;
        });
        run_until([&] { return done; }, timeout);
        if (!done) {
            std::error_code ignored;
            stream_.next_layer().lowest_layer().cancel(ignored);
            run_until([&] { return done; });
            return std::nullopt;
        }
        if (!payload)
            return std::nullopt;
        std::string error;
        auto e = pc::parse_event(*payload, error);
        REQUIRE_MESSAGE(e.has_value(), "undecodable event " << *payload << ": " << error);
        return e;
    }

    template <class E>
    E expect() {
        auto e = next();
        REQUIRE_MESSAGE(e.has_value(), "no " << E::type << " event in time");
        const E* got = std::get_if<E>(&*e);
        REQUIRE_MESSAGE(got != nullptr, "expected " << E::type << ", got " << pc::to_json(*e));
        return *got;
    }

    template <class E, class Match>
    E wait_for(Match match) {
        const auto deadline = clock::now() + patience;
        while (clock::now() < deadline) {
            auto e = next(deadline - clock::now());
            REQUIRE_MESSAGE(e.has_value(), "no matching " << E::type << " event in time");
            if (const E* got = std::get_if<E>(&*e); got && match(*got))
                return *got;
        }
        FAIL("no matching " << E::type << " event in time");
        return {};
    }

    void say(std::string_view text) {
        std::optional<std::error_code> result;
        stream_.async_write_frame(parley::as_payload(text),
                                  [&](std::error_code ec, std::size_t) { result = ec; });
        run_until([&] { return result.has_value(); });
        REQUIRE(result.has_value());
        CHECK_FALSE(*result);
    }

    void login(std::string_view nick) {
        expect<pc::welcome_event>();
        say(nick);
        CHECK(expect<pc::nick_accepted_event>().nick == nick);
    }

    std::error_code end() const { return end_; }

private:
    void run_until(const std::function<bool()>& done, clock::duration timeout = patience) {
        io_.restart();
        const auto deadline = clock::now() + timeout;
        while (!done() && clock::now() < deadline)
            io_.run_one_for(std::chrono::duration_cast<std::chrono::milliseconds>(
                std::max<clock::duration>(deadline - clock::now(), 1ms)));
    }

    asio::io_context io_;
    asio::ssl::context ctx_;
    parley::framed_stream<parley::tls::stream> stream_;
    std::error_code end_;
};

pc::server_options tls_options(const parley::test::tls_certs& certs,
                               std::chrono::milliseconds handshake_timeout = 5s) {
    pc::server_options o;
    o.tls = pc::make_tls({.certificate_file = certs.cert(),
                          .private_key_file = certs.key(),
                          .handshake_timeout = handshake_timeout});
    return o;
}

} // namespace

TEST_CASE("chat over TLS: framed TLS clients chat through the server") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    server_fixture f(tls_options(certs));

    tls_client alice(certs.cert()), bob(certs.cert());
    REQUIRE(!alice.connect(f.port()));
    REQUIRE(!bob.connect(f.port(), "127.0.0.1"));
    alice.login("alice");
    bob.login("bob");
    alice.say("hello over TLS");
    auto m = bob.wait_for<pc::message_event>([](const auto& e) { return e.from == "alice"; });
    CHECK(m.text == "hello over TLS");
    bob.say("/quit");
    bob.wait_for<pc::notice_event>([](const auto& e) { return e.code == "goodbye"; });
    // The server ends TLS with a close_notify: a clean end of stream.
    CHECK_FALSE(bob.next(2s));
    CHECK(bob.end() == asio::error::eof);
    auto left = alice.wait_for<pc::leave_event>([](const auto& e) { return e.nick == "bob"; });
    CHECK(left.reason == "quit");
    CHECK(f.server().security().tls_handshake_failures == 0);
}

TEST_CASE("chat over TLS: a client trusting another CA refuses the server, which counts it") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    server_fixture f(tls_options(certs));

    tls_client wrong(certs.cert("other"));
    const auto ec = wrong.connect(f.port());
    CHECK(ec == parley::error::certificate_rejected);
    const std::string why = wrong.describe(ec);
    CAPTURE(why);
    CHECK(why.find("certificate rejected") != std::string::npos);
    // The client's alert fails the server's side of the handshake.
    CHECK(server_fixture::eventually(
        [&] { return f.server().security().tls_handshake_failures == 1; }));
    CHECK(server_fixture::eventually(
        [&] { return f.count_log({"tls: handshake with 127.0.0.1:", "failed"}) == 1; }));
    CHECK(f.server().clients().empty());
}

TEST_CASE("chat over TLS: plain-TCP clients are dropped cleanly and counted") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    server_fixture f(tls_options(certs, 300ms));

    // One that speaks the framed protocol in the clear.
    connection plain(f.port());
    plain.send_frame("alice");
    CHECK(plain.wait_closed());
    CHECK(server_fixture::eventually(
        [&] { return f.server().security().tls_handshake_failures == 1; }));

    // One that says nothing: closed at the handshake timeout.
    connection silent(f.line_port());
    CHECK(silent.wait_closed());
    CHECK(server_fixture::eventually(
        [&] { return f.server().security().tls_handshake_timeouts == 1; }));
    CHECK(server_fixture::eventually(
        [&] { return f.count_log({"tls: handshake with", "timed out"}) == 1; }));

    // The server goes on serving TLS clients.
    tls_client alice(certs.cert());
    REQUIRE(!alice.connect(f.port()));
    alice.login("alice");
    CHECK(f.server().clients().size() == 1);
}

TEST_CASE("chat over TLS: openssl s_client chats in line mode") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    server_fixture f(tls_options(certs));
    tls_client alice(certs.cert());
    REQUIRE(!alice.connect(f.port()));
    alice.login("alice");

    // An outside TLS client, with certificate and name checks, bounded by
    // timeout(1). -quiet keeps the connection after its input ends, until
    // the server closes it after /quit.
    const std::string out = certs.dir() + "/s_client.out";
    const std::string command =
        "printf 'carol\\nhello from s_client\\n/quit\\n' | timeout 10 openssl s_client -quiet "
        "-verify_return_error -CAfile '" + certs.cert() + "' -verify_hostname localhost "
        "-connect 127.0.0.1:" + std::to_string(f.line_port()) + " >'" + out + "' 2>&1";
    auto s_client = std::async(std::launch::async, [command] { return std::system(command.c_str()); });

    auto m = alice.wait_for<pc::message_event>([](const auto& e) { return e.from == "carol"; });
    CHECK(m.text == "hello from s_client");
    const int status = s_client.get();
    std::ifstream file(out);
    std::stringstream printed;
    printed << file.rdbuf();
    CAPTURE(printed.str());
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0); // not killed by timeout (124)
    CHECK(printed.str().find("carol") != std::string::npos);
    CHECK(printed.str().find("goodbye") != std::string::npos);
    CHECK(f.server().security().tls_handshake_failures == 0);
}

TEST_CASE("chat over TLS: parley::tls::async_client connects, chats, closes; a wrong CA is refused") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    server_fixture f(tls_options(certs));
    asio::io_context io;
    parley::client_options options;
    options.connect.max_attempts = 1;

    SUBCASE("trusted") {
        auto ctx = std::make_shared<asio::ssl::context>(
            parley::tls::client_context({.ca_file = certs.cert()}));
        parley::tls::async_client client(io.get_executor(), options,
                                         parley::tls::client_transport<>(ctx));
        std::vector<std::string> frames;
        std::optional<std::error_code> closed;
        client.on_frame([&](parley::frame_view f) {
            frames.emplace_back(parley::as_string_view(f));
            if (frames.size() == 1)
                client.send("alice");
            if (frames.size() == 2) { // nick_accepted
                client.send("/quit");
                client.close(); // sends close_notify after /quit
            }
        });
        client.on_event([&](const parley::client_event& e) {
            if (e.what == parley::client_event::kind::closed)
                closed = e.error;
        });
        std::error_code connect_ec;
        client.async_connect("localhost", f.port(),
                             [&](std::error_code ec, asio::ip::tcp::endpoint) { connect_ec = ec; });
        io.run_for(patience);
        CHECK_FALSE(connect_ec);
        REQUIRE(closed.has_value());
        CHECK_FALSE(*closed); // everything written, the server closed cleanly
        REQUIRE(frames.size() >= 3);
        CHECK(frames[0].find("\"welcome\"") != std::string::npos);
        CHECK(frames[1].find("\"nick_accepted\"") != std::string::npos);
        // The server's goodbye arrived before its close_notify.
        CHECK(frames.back().find("goodbye") != std::string::npos);
    }
    SUBCASE("a stranger's CA") {
        auto ctx = std::make_shared<asio::ssl::context>(
            parley::tls::client_context({.ca_file = certs.cert("other")}));
        parley::tls::async_client client(io.get_executor(), options,
                                         parley::tls::client_transport<>(ctx));
        std::optional<std::error_code> result;
        client.async_connect("localhost", f.port(),
                             [&](std::error_code ec, asio::ip::tcp::endpoint) { result = ec; });
        io.run_for(patience);
        REQUIRE(result.has_value());
        CHECK(*result == parley::error::certificate_rejected);
        const std::string why = client.describe(*result);
        CAPTURE(why);
        CHECK(why.find("TLS handshake failed: certificate rejected: ") == 0);
        CHECK(client.state() == parley::client_state::closed);
    }
}

TEST_CASE("chat over TLS: the token travels inside TLS") {
    if (parley::test::no_openssl_tool())
        return;
    parley::test::tls_certs certs;
    auto options = tls_options(certs);
    options.access_token = "s3cret";
    server_fixture f(options);
    tls_client alice(certs.cert());
    REQUIRE(!alice.connect(f.port()));
    alice.expect<pc::welcome_event>();
    alice.say("/auth s3cret");
    alice.expect<pc::notice_event>();
    alice.say("alice");
    CHECK(alice.expect<pc::nick_accepted_event>().nick == "alice");
}

#else

TEST_CASE("chat over TLS: skipped, parley was built without OpenSSL (Debian: libssl-dev)") {
    parley::test::skip("OpenSSL was not found at configure time (Debian: apt-get install libssl-dev)");
}

#endif
