// The chat server's line mode, with a plain socket, mixed with framed
// clients in the same rooms.
#include <parley/chat/server.hpp>

#include "test_chat_support.hpp"

#include <doctest/doctest.h>

using namespace parley::test::chat;

namespace {

// A line-mode user: what `nc 127.0.0.1 9998` does.
class line_user {
public:
    explicit line_user(std::uint16_t port) : conn_(port) {}

    void send(std::string_view line) { conn_.send_raw(std::string(line) + "\n"); }

    std::string line() {
        auto l = conn_.recv_line();
        REQUIRE_MESSAGE(l.has_value(), "no line in time" << (conn_.closed() ? " (closed)" : ""));
        return *l;
    }

    /// Skips lines until one starting with `prefix`.
    std::string line_starting(std::string_view prefix) {
        for (;;) {
            auto l = line();
            if (l.starts_with(prefix))
                return l;
        }
    }

    bool silent(clock::duration quiet = 150ms) {
        auto l = conn_.recv_line(quiet);
        if (l)
            MESSAGE("unexpected line: " << *l);
        return !l;
    }

    connection& conn() { return conn_; }

private:
    connection conn_;
};

} // namespace

TEST_SUITE("chat line mode") {

TEST_CASE("nc users and framed clients share a room") {
    pc::server_options options;
    options.max_line_bytes = 100;
    server_fixture f(options);
    client alice(f.port());
    alice.login("alice");

    line_user carol(f.line_port());
    CHECK(carol.line() == "连接成功!,请输入昵称");
    carol.conn().send_raw("carol\r\n"); // telnet line endings work too
    CHECK(carol.line() == "* welcome, carol! type /help for the commands");
    CHECK(carol.line() == "* carol joined lobby");
    CHECK(carol.line() == "* members of lobby (2): alice, carol");
    CHECK(alice.expect<pc::join_event>().nick == "carol");
    CHECK(f.count_log({"join: carol", "(line mode)"}) == 1);

    carol.send("hello from nc");
    CHECK(carol.line() == "[lobby] carol: hello from nc");
    auto m = alice.expect<pc::message_event>();
    CHECK(m.from == "carol");
    CHECK(m.text == "hello from nc");
    CHECK(m.room == "lobby");

    alice.say("hi carol, 你好");
    alice.expect<pc::message_event>();
    CHECK(carol.line() == "[lobby] alice: hi carol, 你好");

    alice.say("/msg carol psst");
    alice.expect<pc::private_event>();
    CHECK(carol.line() == "[private] alice -> carol: psst");
    carol.send("/msg alice back at you");
    CHECK(carol.line() == "[private] carol -> alice: back at you");
    CHECK(alice.expect<pc::private_event>().text == "back at you");

    carol.send("/nick caroline");
    CHECK(carol.line() == "* carol is now known as caroline");
    CHECK(alice.expect<pc::rename_event>().new_nick == "caroline");

    carol.send("/list");
    CHECK(carol.line() == "* members of lobby (2): alice, caroline");
    carol.send("/help");
    CHECK(carol.line() == "* commands:");
    CHECK(carol.line_starting("* anything else").find("//") != std::string::npos);

    // Mistakes: one error line each, and the connection carries on.
    carol.send("bad \xFF byte");
    CHECK(carol.line() == "! invalid_utf8: the input is not valid UTF-8; it was ignored");
    carol.send(std::string(150, 'x'));
    CHECK(carol.line() == "! line_too_long: a line longer than 100 bytes was discarded");
    carol.send("bell\x07");
    CHECK(carol.line().starts_with("! invalid_text: messages cannot contain control characters"));
    carol.send("/bogus");
    CHECK(carol.line() == "! unknown_command: unknown command /bogus; type /help for the commands");
    carol.send("");
    CHECK(carol.line() == "! empty_message: empty messages are not sent");
    CHECK(alice.silent());
    carol.send("still here");
    CHECK(carol.line() == "[lobby] caroline: still here");
    CHECK(alice.expect<pc::message_event>().text == "still here");

    // A line split across many writes is one line.
    for (char ch : std::string_view("byte by byte\n")) {
        carol.conn().send_raw(std::string(1, ch));
        std::this_thread::sleep_for(1ms);
    }
    CHECK(alice.expect<pc::message_event>().text == "byte by byte");
    CHECK(carol.line() == "[lobby] caroline: byte by byte");

    carol.send("quit");
    CHECK(carol.line() == "* goodbye, caroline");
    CHECK(carol.conn().wait_closed());
    auto l = alice.expect<pc::leave_event>();
    CHECK(l.nick == "caroline");
    CHECK(l.reason == "quit");
    CHECK(alice.silent());
}

TEST_CASE("line mode: nickname errors, rooms, and the last line without a newline") {
    server_fixture f;
    client alice(f.port());
    alice.login("alice");

    line_user dave(f.line_port());
    dave.line(); // the prompt
    dave.send("ALICE");
    CHECK(dave.line() == "! nickname_taken: the nickname \"ALICE\" is taken; choose another");
    dave.send("da ve");
    CHECK(dave.line() == "! nickname_invalid: a nickname cannot contain spaces; choose another");
    dave.send("/list");
    CHECK(dave.line().starts_with("! nickname_required: "));
    dave.send("dave");
    CHECK(dave.line() == "* welcome, dave! type /help for the commands");
    dave.line_starting("* members of lobby");
    alice.expect<pc::join_event>();

    dave.send("/join side");
    CHECK(dave.line() == "* dave joined side");
    CHECK(dave.line() == "* members of side (1): dave");
    alice.say("lobby only");
    alice.expect<pc::message_event>();
    CHECK(dave.line() == "[lobby] alice: lobby only");
    dave.send("side only");
    CHECK(dave.line() == "[side] dave: side only");
    CHECK(alice.silent());
    dave.send("/part");
    CHECK(dave.line() == "* dave left side (part)");

    // What `printf 'eve\nbye' | nc -N ...` sends: the last line has no
    // newline, then the sender half-closes.
    line_user eve(f.line_port());
    eve.line();
    eve.conn().send_raw("eve\nbye for now");
    eve.conn().shutdown_send();
    CHECK(alice.expect<pc::join_event>().nick == "eve");
    auto m = alice.expect<pc::message_event>();
    CHECK(m.from == "eve");
    CHECK(m.text == "bye for now");
    auto l = alice.expect<pc::leave_event>();
    CHECK(l.nick == "eve");
    CHECK(l.reason == "disconnected");
    // Eve still gets what was queued for her before the server closes.
    CHECK(eve.line_starting("[lobby] eve:") == "[lobby] eve: bye for now");
    CHECK(eve.conn().wait_closed());
    CHECK(alice.silent());
    CHECK(dave.line() == "* eve joined lobby");
    CHECK(dave.line() == "[lobby] eve: bye for now");
    CHECK(dave.line() == "* eve left lobby (disconnected)");
}

TEST_CASE("an nc user is given its resume token, resumes after a reset and pages back") {
    pc::server_options options;
    options.resume_grace = 30s;
    server_fixture f(options);
    client alice(f.port());
    alice.login("alice");
    line_user dave(f.line_port());
    dave.line(); // the prompt
    dave.send("dave");
    CHECK(dave.line() == "* welcome, dave! type /help for the commands");
    const std::string offer = dave.line();
    const std::string prefix = "* if your connection drops, send this first to resume: /resume ";
    REQUIRE(offer.starts_with(prefix));
    const std::string token = offer.substr(prefix.size());
    alice.wait_for<pc::join_event>([](const auto& j) { return j.nick == "dave"; });
    dave.conn().reset();
    alice.say("one");
    alice.say("two");
    alice.wait_for<pc::message_event>([](const auto& m) { return m.text == "two"; });
    line_user back(f.line_port());
    back.line();
    back.send("/resume " + token + " lobby=0");
    CHECK(back.line().starts_with("* welcome, dave!"));
    CHECK(back.line().starts_with(prefix));
    CHECK(back.line() == "[lobby] alice: one");
    CHECK(back.line() == "[lobby] alice: two");
    CHECK(back.line() == "* members of lobby (2): alice, dave");
    CHECK(back.line() == "* resumed as dave: nothing was missed");
    back.send("/history lobby limit=1");
    CHECK(back.line() == "* history of lobby: 1 message(s)");
    const std::string entry = back.line();
    CHECK(entry.starts_with("2 "));
    CHECK(entry.ends_with(" alice: two"));
    CHECK(back.line() == "* older: /history lobby before=2");
    CHECK(alice.seen_of<pc::leave_event>().empty());
}
} // TEST_SUITE
