// The chat server over real loopback connections, framed clients.
#include <parley/chat/server.hpp>

#include "support/skip.hpp"
#include "test_chat_support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <set>
#include <thread>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

using namespace parley::test::chat;

namespace {

// Counts the leave events for `nick` among what `c` received.
std::size_t leaves_of(const client& c, std::string_view nick) {
    std::size_t n = 0;
    for (const auto& l : c.seen_of<pc::leave_event>())
        n += l.nick == nick;
    return n;
}

// Sends `count` numbered messages padded with `filler`, never more than
// `window` ahead of what the slowest of `readers` has received: a room that
// keeps pace with its readers, so that only a member that stops reading
// falls behind, however the test's threads happen to be scheduled.
void send_paced(connection& conn, int count, const std::string& filler,
                std::initializer_list<const std::atomic<std::size_t>*> readers,
                std::size_t window = 8) {
    const auto slowest = [&] {
        std::size_t n = SIZE_MAX;
        for (const auto* r : readers)
            n = std::min<std::size_t>(n, *r);
        return n;
    };
    for (int i = 0; i < count; ++i) {
        const auto deadline = clock::now() + patience;
        while (static_cast<std::size_t>(i) >= slowest() + window && clock::now() < deadline)
            std::this_thread::sleep_for(100us);
        conn.send_frame(std::to_string(i) + " " + filler);
    }
}

// True once the server has no client called `nick`.
bool forgotten(server_fixture& f, std::string_view nick) {
    return server_fixture::eventually([&] {
        for (const auto& c : f.server().clients())
            if (c.nick == nick)
                return false;
        return true;
    });
}

// What one client's reader thread collected (no doctest macros off the
// main thread).
struct transcript {
    std::vector<pc::message_event> messages;
    std::vector<pc::leave_event> leaves;
    std::string failure;
};

// Reads events until `count` messages arrived (or the patience ran out);
// `progress`, if given, follows the number of messages received.
transcript read_messages(connection& conn, std::size_t count, clock::duration timeout,
                         std::atomic<std::size_t>* progress = nullptr,
                         std::size_t leaves = 0) {
    transcript t;
    const auto deadline = clock::now() + timeout;
    while (t.messages.size() < count || t.leaves.size() < leaves) {
        const auto left = deadline - clock::now();
        auto payload = conn.recv_frame(std::max<clock::duration>(left, 0ms));
        if (!payload) {
            t.failure = "timed out after " + std::to_string(t.messages.size()) + " of " +
                        std::to_string(count) + " messages" +
                        (conn.closed() ? " (connection closed)" : "");
            return t;
        }
        std::string error;
        auto e = pc::parse_event(*payload, error);
        if (!e) {
            t.failure = "bad event " + *payload + ": " + error;
            return t;
        }
        if (auto* m = std::get_if<pc::message_event>(&*e)) {
            t.messages.push_back(std::move(*m));
            if (progress)
                *progress = t.messages.size();
        }
        else if (auto* l = std::get_if<pc::leave_event>(&*e))
            t.leaves.push_back(std::move(*l));
    }
    return t;
}

} // namespace

TEST_SUITE("chat server") {

TEST_CASE("the handshake: welcome, nickname, lobby") {
    server_fixture f;
    client alice(f.port());
    auto members = alice.login("alice");
    CHECK(members.members == std::vector<std::string>{"alice"});
    CHECK(members.count == 1);
    const auto welcome = std::get<pc::welcome_event>(alice.seen().front());
    CHECK(welcome.server == "parley/" PARLEY_VERSION);
    CHECK(welcome.max_frame_bytes == pc::default_max_frame_bytes);
    CHECK(welcome.max_message_bytes == pc::default_max_message_bytes);
    CHECK(welcome.max_nickname_length == 32);
    CHECK(is_rfc3339_utc_millis(alice.seen_of<pc::join_event>().at(0).time));

    client bob(f.port());
    members = bob.login("bob");
    CHECK(members.members == std::vector<std::string>{"alice", "bob"});
    // Alice is told, once.
    auto j = alice.expect<pc::join_event>();
    CHECK(j.nick == "bob");
    CHECK(j.room == "lobby");
    CHECK(alice.silent());
    CHECK(f.count_log({"join: alice", "joined lobby"}) == 1);
    CHECK(f.count_log({"join: bob", "joined lobby"}) == 1);
}

TEST_CASE("every member gets every message, in each sender's order, exactly once") {
    server_fixture f({}, 3);
    constexpr int clients = 4, per_client = 300;
    std::vector<std::unique_ptr<client>> peers;
    for (int i = 0; i < clients; ++i) {
        peers.push_back(std::make_unique<client>(f.port()));
        peers.back()->login("user" + std::to_string(i));
        for (int k = 0; k < i; ++k) // earlier ones see the join
            peers[k]->expect<pc::join_event>();
    }

    std::vector<transcript> results(clients);
    std::vector<std::thread> threads;
    for (int i = 0; i < clients; ++i) {
        threads.emplace_back([&, i] {
            connection& conn = peers[i]->conn();
            std::thread reader([&] {
                results[i] = read_messages(conn, clients * per_client, 20s);
            });
            for (int n = 0; n < per_client; ++n)
                conn.send_frame("m " + std::to_string(i) + " " + std::to_string(n));
            reader.join();
        });
    }
    for (auto& t : threads)
        t.join();

    std::vector<std::uint64_t> reference_ids;
    for (int r = 0; r < clients; ++r) {
        const auto& got = results[r];
        INFO("receiver user" << r);
        REQUIRE_MESSAGE(got.failure.empty(), got.failure);
        CHECK(got.messages.size() == clients * per_client);
        // Per sender: 0, 1, 2... with nothing missing or repeated.
        std::map<std::string, int> next;
        std::vector<std::uint64_t> ids;
        for (const auto& m : got.messages) {
            CHECK(m.room == "lobby");
            const std::string expected =
                "m " + m.from.substr(4) + " " + std::to_string(next[m.from]++);
            CHECK(m.text == expected);
            ids.push_back(m.id);
        }
        for (int s = 0; s < clients; ++s)
            CHECK(next["user" + std::to_string(s)] == per_client);
        // Ids increase, and every member sees the room in the same order.
        CHECK(std::is_sorted(ids.begin(), ids.end()));
        CHECK(std::adjacent_find(ids.begin(), ids.end()) == ids.end());
        if (r == 0)
            reference_ids = ids;
        else
            CHECK(ids == reference_ids);
        CHECK(is_rfc3339_utc_millis(got.messages.front().time));
    }
    const auto counters = f.server().counters();
    CHECK(counters.slow_disconnects == 0);
    CHECK(counters.dropped == 0);
}

TEST_CASE("private messages reach only their target, and a copy the sender") {
    server_fixture f;
    client alice(f.port()), bob(f.port()), carol(f.port());
    alice.login("alice");
    bob.login("Bob");
    carol.login("carol");
    alice.expect<pc::join_event>();
    alice.expect<pc::join_event>();
    bob.expect<pc::join_event>();

    alice.say("/msg bob psst, bob");  // nicknames match ignoring case
    auto to_bob = bob.expect<pc::private_event>();
    CHECK(to_bob.from == "alice");
    CHECK(to_bob.to == "Bob");
    CHECK(to_bob.text == "psst, bob");
    CHECK(is_rfc3339_utc_millis(to_bob.time));
    CHECK(alice.expect<pc::private_event>() == to_bob);
    CHECK(carol.silent());

    alice.say("/msg nobody hello");
    CHECK(alice.expect_error("no_such_nick").message == "nobody is called nobody");
    alice.say("/msg alice note to self"); // delivered once
    CHECK(alice.expect<pc::private_event>().to == "alice");
    CHECK(alice.silent());
    alice.say("/msg bob " + std::string(5000, 'x'));
    alice.expect_error("message_too_long");
    CHECK(bob.silent(50ms));
}

TEST_CASE("leaving produces exactly one leave notice, whichever way") {
    struct way {
        std::string name;
        std::string reason;
        std::function<void(client&)> leave;
    };
    const way ways[] = {
        {"QUIT", "quit", [](client& c) { c.say("QUIT"); }},
        {"quit in lowercase", "quit", [](client& c) { c.say("quit"); }},
        {"/quit", "quit", [](client& c) { c.say("/quit"); }},
        {"closing the connection", "disconnected", [](client& c) { c.conn().close(); }},
        {"half-closing the connection", "disconnected",
         [](client& c) { c.conn().shutdown_send(); }},
        {"a reset (SO_LINGER 0)", "error", [](client& c) { c.conn().reset(); }},
    };
    server_fixture f;
    client observer(f.port());
    observer.login("observer");
    for (const auto& w : ways) {
        INFO("leaving by " << w.name);
        const std::string nick = "leaver" + std::to_string(&w - ways);
        client leaver(f.port());
        leaver.login(nick);
        leaver.say("/join side"); // in two rooms: one notice per room
        leaver.expect<pc::join_event>();
        leaver.expect<pc::members_event>();
        observer.expect<pc::join_event>();
        observer.say("/join side");
        observer.wait_for<pc::members_event>([](const auto& m) { return m.room == "side"; });
        leaver.expect<pc::join_event>();

        // Everything read on both sides first: a socket closed with
        // unread data sends a reset, not a FIN, and that is another way.
        leaver.say("last words");
        leaver.wait_for<pc::message_event>([](const auto& m) { return m.text == "last words"; });
        observer.wait_for<pc::message_event>([](const auto& m) { return m.text == "last words"; });
        w.leave(leaver);
        std::set<std::string> rooms;
        for (int i = 0; i < 2; ++i) {
            auto l = observer.wait_for<pc::leave_event>(
                [&](const auto& e) { return e.nick == nick; });
            CHECK(l.reason == w.reason);
            CHECK(is_rfc3339_utc_millis(l.time));
            rooms.insert(l.room);
        }
        CHECK(rooms == std::set<std::string>{"lobby", "side"});
        CHECK(observer.silent(200ms));
        CHECK(leaves_of(observer, nick) == 2);
        if (w.reason == "quit") {
            leaver.wait_for<pc::notice_event>([](const auto& n) { return n.code == "goodbye"; });
            CHECK(leaver.conn().wait_closed());
        }
        CHECK(forgotten(f, nick));
        CHECK(f.count_log({"leave: " + nick}) == 1);
        observer.say("/part side");
        observer.wait_for<pc::leave_event>([](const auto& l) { return l.nick == "observer"; });
    }
    CHECK(f.server().counters().members == 1);
}

TEST_CASE("renaming, and member lists") {
    server_fixture f;
    client alice(f.port()), bob(f.port()), carol(f.port());
    alice.login("alice");
    bob.login("bob");
    carol.login("carol");
    alice.expect<pc::join_event>();
    alice.expect<pc::join_event>();
    bob.expect<pc::join_event>();
    // Alice and bob share two rooms; carol moves out of the lobby.
    alice.say("/join rust");
    alice.expect<pc::join_event>();
    alice.expect<pc::members_event>();
    bob.say("/join rust");
    bob.expect<pc::join_event>();
    bob.expect<pc::members_event>();
    alice.expect<pc::join_event>();
    carol.say("/part lobby");
    carol.expect<pc::leave_event>();
    alice.expect<pc::leave_event>();
    bob.expect<pc::leave_event>();

    alice.say("/nick Alicia");
    const auto r = alice.expect<pc::rename_event>();
    CHECK(r.old_nick == "alice");
    CHECK(r.new_nick == "Alicia");
    CHECK(bob.expect<pc::rename_event>() == r); // once, though two rooms are shared
    CHECK(bob.silent());
    CHECK(carol.silent(50ms));
    CHECK(f.count_log({"nick: alice", "is now known as Alicia"}) == 1);

    alice.say("/list");
    auto m = alice.expect<pc::members_event>();
    CHECK(m.room == "rust");
    CHECK(m.members == std::vector<std::string>{"Alicia", "bob"});
    alice.say("/list lobby");
    m = alice.expect<pc::members_event>();
    CHECK(m.members == std::vector<std::string>{"Alicia", "bob"});
    CHECK(m.count == 2);

    alice.say("/nick BOB");
    CHECK(alice.expect_error("nickname_taken").message == "the nickname \"BOB\" is taken");
    alice.say("/nick ALICIA"); // her own name in another case: fine
    CHECK(alice.expect<pc::rename_event>().new_nick == "ALICIA");
    bob.expect<pc::rename_event>();
    alice.say("/nick ALICIA");
    CHECK(alice.expect<pc::notice_event>().code == "info");
    alice.say("/nick *evil");
    alice.expect_error("nickname_invalid");
    alice.say("/nick");
    alice.expect_error("bad_arguments");

    // The old name is free again.
    client again(f.port());
    again.login("alice");
}

TEST_CASE("rooms keep their messages to themselves") {
    pc::server_options options;
    options.max_rooms_per_client = 3;
    server_fixture f(options);
    client alice(f.port()), bob(f.port());
    alice.login("alice");
    bob.login("bob");
    alice.expect<pc::join_event>();

    alice.say("/join #Rust"); // '#' dropped, case folded
    CHECK(alice.expect<pc::join_event>().room == "rust");
    CHECK(alice.expect<pc::members_event>().members == std::vector<std::string>{"alice"});
    alice.say("in rust");
    auto m = alice.expect<pc::message_event>();
    CHECK(m.room == "rust");
    CHECK(bob.silent());

    bob.say("in the lobby");
    CHECK(bob.expect<pc::message_event>().room == "lobby");
    CHECK(alice.expect<pc::message_event>().room == "lobby"); // still a member

    alice.say("/join lobby"); // already in: switches the current room
    CHECK(alice.expect<pc::members_event>().room == "lobby");
    CHECK(bob.silent(50ms));
    alice.say("back in the lobby");
    CHECK(alice.expect<pc::message_event>().room == "lobby");
    CHECK(bob.expect<pc::message_event>().text == "back in the lobby");

    alice.say("/part lobby");
    auto l = alice.expect<pc::leave_event>();
    CHECK(l.reason == "part");
    CHECK(bob.expect<pc::leave_event>() == l);
    alice.say("now in rust again"); // the current room fell back to rust
    CHECK(alice.expect<pc::message_event>().room == "rust");
    CHECK(bob.silent(50ms));
    CHECK(f.count_log({"leave: alice", "left lobby (part)"}) == 1);

    alice.say("/part lobby");
    alice.expect_error("not_in_room");
    alice.say("/part");
    alice.expect<pc::leave_event>();
    alice.say("nobody hears this");
    CHECK(alice.expect_error("not_in_room").message == "you are in no room; /join ROOM first");
    alice.say("/list");
    alice.expect_error("not_in_room");
    alice.say("/list nowhere");
    alice.expect_error("no_such_room");
    alice.say("/join bad]room");
    alice.expect_error("room_invalid");
    for (const char* room : {"a", "b", "c"}) {
        alice.say(std::string("/join ") + room);
        alice.expect<pc::join_event>();
        alice.expect<pc::members_event>();
    }
    alice.say("/join d");
    alice.expect_error("too_many_rooms");
    CHECK(bob.silent(50ms));
}

TEST_CASE("nicknames are checked, and a refused one gets another chance") {
    server_fixture f;
    client alice(f.port());
    alice.login("alice");

    client c(f.port());
    c.welcome_and_send("");
    CHECK(c.expect_error("nickname_invalid").message == "a nickname cannot be empty; choose another");
    const std::pair<std::string, std::string_view> refused[] = {
        {"ALICE", "nickname_taken"},                  // taken, ignoring case
        {"Alice", "nickname_taken"},
        {"\xEF\xBC\xA1lice", "nickname_taken"},        // fullwidth Ａ
        {"al ice", "nickname_invalid"},
        {" alice2", "nickname_invalid"},
        {"bob\x07", "nickname_invalid"},               // control character
        {"bob\xE2\x80\xAE" "dlrow", "nickname_invalid"}, // right-to-left override
        {"b\xE2\x80\x8B" "ob", "nickname_invalid"},      // zero-width space
        {"bob\xFF", "nickname_invalid"},               // not UTF-8
        {"server", "nickname_invalid"},
        {"*server*", "nickname_invalid"},
        {"[lobby]", "nickname_invalid"},
        {std::string(33, 'b'), "nickname_invalid"},
        {"/join x", "nickname_required"},
    };
    for (const auto& [name, code] : refused) {
        c.say(name);
        c.expect_error(code);
    }
    c.say("/help");
    CHECK(c.expect<pc::notice_event>().code == "help");
    c.say("bob");
    CHECK(c.expect<pc::nick_accepted_event>().nick == "bob");
    CHECK(alice.expect<pc::join_event>().nick == "bob");
    CHECK(f.count_log({"error:", "nickname_taken"}) == 3);

    // QUIT before a nickname: goodbye, and nobody hears of it.
    client shy(f.port());
    shy.welcome_and_send("quit");
    CHECK(shy.expect<pc::notice_event>().code == "goodbye");
    CHECK(shy.conn().wait_closed());
    CHECK(alice.silent());
}

TEST_CASE("bad input gets a clear error and the connection stays usable") {
    server_fixture f;
    client alice(f.port()), bob(f.port());
    alice.login("alice");
    bob.login("bob");
    alice.expect<pc::join_event>();

    alice.say(std::string(4097, 'x'));
    CHECK(alice.expect_error("message_too_long").message ==
          "a message of 4097 bytes exceeds the 4096-byte limit; it was not sent");
    alice.say("caf\xC3");
    alice.expect_error("invalid_utf8");
    alice.say("\xFF\xFE");
    alice.expect_error("invalid_utf8");
    alice.say("clear\x1b[2J");
    CHECK(alice.expect_error("invalid_text").message.find("U+001B") != std::string::npos);
    alice.say("two\nlines");
    alice.expect_error("invalid_text");
    alice.say("");
    alice.expect_error("empty_message");
    alice.say("/dance");
    CHECK(alice.expect_error("unknown_command").message ==
          "unknown command /dance; type /help for the commands");
    alice.say("/help");
    auto help = alice.expect<pc::notice_event>();
    CHECK(help.code == "help");
    CHECK(help.text.find("/msg NICK TEXT") != std::string::npos);
    CHECK(bob.silent());

    // Still in the room, still heard; exactly 4096 bytes is allowed.
    alice.say(std::string(4096, 'y'));
    CHECK(bob.expect<pc::message_event>().text.size() == 4096);
    alice.expect<pc::message_event>();
    alice.say("//join is not a command");
    CHECK(bob.expect<pc::message_event>().text == "/join is not a command");
    alice.expect<pc::message_event>();
    CHECK(f.count_log({"error: alice", "invalid_utf8"}) == 2);

    // A frame over the frame limit cannot be skipped: told, then closed.
    alice.conn().send_frame(std::string(pc::default_max_frame_bytes + 1, 'z'));
    CHECK(alice.expect_error("frame_too_large").message.find("65537") != std::string::npos);
    CHECK(alice.conn().wait_closed());
    auto l = bob.expect<pc::leave_event>();
    CHECK(l.nick == "alice");
    CHECK(l.reason == "error");
    CHECK(bob.silent());
}

TEST_CASE("a member that stops reading is disconnected; the others lose nothing") {
    pc::server_options options;
    options.queue = {.max_bytes = 64 * 1024, .max_messages = 1024,
                     .policy = parley::overflow_policy::disconnect};
    options.send_buffer_bytes = 16 * 1024; // so the kernel cannot absorb it all
    server_fixture f(options);
    client alice(f.port()), bob(f.port());
    client slow(f.port(), 4096);
    alice.login("alice");
    bob.login("bob");
    slow.login("slow");
    alice.expect<pc::join_event>();
    alice.expect<pc::join_event>();
    bob.expect<pc::join_event>();
    // From here on, slow reads nothing.

    constexpr int count = 2000;
    const std::string filler(2000, 'f');
    std::atomic<bool> done{false};
    std::size_t most_queued_bytes = 0, most_queued_messages = 0;
    std::thread watch([&] {
        while (!done) {
            for (const auto& c : f.server().clients()) {
                most_queued_bytes = std::max(most_queued_bytes, c.queue.queued_bytes);
                most_queued_messages = std::max(most_queued_messages, c.queue.queued_messages);
            }
            std::this_thread::sleep_for(1ms);
        }
    });
    transcript at_alice, at_bob;
    std::atomic<std::size_t> alice_got{0}, bob_got{0};
    std::thread alice_reader(
        [&] { at_alice = read_messages(alice.conn(), count, 30s, &alice_got, 1); });
    std::thread bob_reader(
        [&] { at_bob = read_messages(bob.conn(), count, 30s, &bob_got, 1); });
    send_paced(alice.conn(), count, filler, {&alice_got, &bob_got});
    alice_reader.join();
    bob_reader.join();
    done = true;
    watch.join();

    for (auto* t : {&at_alice, &at_bob}) {
        REQUIRE_MESSAGE(t->failure.empty(), t->failure);
        REQUIRE(t->messages.size() == count);
        for (int i = 0; i < count; ++i)
            CHECK(t->messages[i].text.starts_with(std::to_string(i) + " "));
        std::string leaves;
        for (const auto& l : t->leaves)
            leaves += l.nick + " left " + l.room + " (" + l.reason + "); ";
        INFO("leaves: " << leaves);
        REQUIRE(t->leaves.size() == 1);
        CHECK(t->leaves[0].nick == "slow");
        CHECK(t->leaves[0].reason == "slow_consumer");
    }
    // Bounded: no queue ever held more than its limit.
    CHECK(most_queued_bytes <= 64 * 1024);
    CHECK(most_queued_messages <= 1024);
    const auto counters = f.server().counters();
    CHECK(counters.slow_disconnects == 1);
    CHECK(counters.members == 2);
    CHECK(server_fixture::eventually([&] { return f.server().clients().size() == 2; }));
    for (const auto& c : f.server().clients())
        CHECK(c.queue.queued_bytes <= 64 * 1024);
    CHECK(server_fixture::eventually(
        [&] { return f.count_log({"slow consumer: slow", "disconnected"}) == 1; }));
    CHECK(slow.conn().wait_closed(10s));
    // Nothing more about slow.
    CHECK(alice.silent(100ms));
}

TEST_CASE("with drop_oldest, a slow member misses messages but stays") {
    pc::server_options options;
    options.queue = {.max_bytes = 32 * 1024, .max_messages = 64,
                     .policy = parley::overflow_policy::drop_oldest};
    options.send_buffer_bytes = 16 * 1024;
    server_fixture f(options);
    client alice(f.port());
    client slow(f.port(), 4096);
    alice.login("alice");
    slow.login("slow");
    alice.expect<pc::join_event>();

    constexpr int count = 1500;
    const std::string filler(1000, 'f');
    transcript at_alice;
    std::atomic<std::size_t> confirmed{0};
    std::thread reader([&] { at_alice = read_messages(alice.conn(), count, 30s, &confirmed); });
    send_paced(alice.conn(), count, filler, {&confirmed});
    reader.join();
    REQUIRE_MESSAGE(at_alice.failure.empty(), at_alice.failure);
    CHECK(at_alice.messages.size() == count);
    CHECK(at_alice.leaves.empty());
    const auto counters = f.server().counters();
    CHECK(counters.dropped > 0);
    CHECK(counters.slow_disconnects == 0);
    for (const auto& c : f.server().clients())
        CHECK(c.queue.queued_bytes <= 32 * 1024);
    CHECK(server_fixture::eventually(
        [&] { return f.count_log({"slow consumer: slow", "dropping"}) == 1; }));

    // Slow reads again: an increasing subsequence, the last one included.
    std::uint64_t last_id = 0;
    std::size_t got = 0;
    for (;;) {
        auto m = slow.wait_for<pc::message_event>([](const auto&) { return true; }, 10s);
        CHECK(m.id > last_id);
        last_id = m.id;
        ++got;
        if (m.text.starts_with(std::to_string(count - 1) + " "))
            break;
    }
    CHECK(got < count);
    slow.say("still here");
    CHECK(alice.wait_for<pc::message_event>([](const auto& m) { return m.from == "slow"; }).text ==
          "still here");
}

TEST_CASE("history is replayed to joiners; joins and leaves are not in it") {
    pc::server_options options;
    options.history = {.max_messages = 3, .max_bytes = 64 * 1024};
    server_fixture f(options);
    client alice(f.port());
    alice.login("alice");
    for (int i = 0; i < 5; ++i) {
        alice.say("old " + std::to_string(i));
        alice.expect<pc::message_event>();
    }
    client bob(f.port());
    bob.welcome_and_send("bob");
    bob.expect<pc::nick_accepted_event>();
    for (int i = 2; i < 5; ++i)
        CHECK(bob.expect<pc::message_event>().text == "old " + std::to_string(i));
    CHECK(bob.expect<pc::join_event>().nick == "bob");
    CHECK(bob.expect<pc::members_event>().count == 2);
}

TEST_CASE("limits on connections and on time to choose a nickname") {
    pc::server_options options;
    options.max_clients = 2;
    options.nickname_timeout = std::chrono::milliseconds(300);
    server_fixture f(options);
    client alice(f.port());
    alice.login("alice");
    client idle(f.port());
    idle.expect<pc::welcome_event>();
    client third(f.port());
    CHECK(third.expect_error("server_full").message == "the server is full; try again later");
    CHECK(third.conn().wait_closed());

    // Idle never sends a nickname.
    CHECK(idle.expect_error("nickname_timeout").message.find("300 ms") != std::string::npos);
    CHECK(idle.conn().wait_closed());
    CHECK(alice.silent());
    CHECK(server_fixture::eventually([&] { return f.server().clients().size() == 1; }));
    client fourth(f.port());
    fourth.login("fourth");
}

TEST_CASE("stop() tells every client and closes every connection") {
    std::optional<server_fixture> f(std::in_place);
    client alice(f->port()), anonymous(f->port());
    alice.login("alice");
    anonymous.expect<pc::welcome_event>();
    f->server().stop();
    for (client* c : {&alice, &anonymous}) {
        auto n = c->wait_for<pc::notice_event>([](const auto&) { return true; });
        CHECK(n.code == "shutdown");
        CHECK(c->conn().wait_closed());
    }
    CHECK(alice.seen_of<pc::leave_event>().empty());
    // No longer listening (the listening sockets close on the executor,
    // shortly after stop() returns).
    CHECK(server_fixture::eventually([&] {
        try {
            connection probe(f->port());
            return false;
        } catch (const std::runtime_error&) {
            return true;
        }
    }));
    f.reset(); // checks that the io_context ran out of work
}

TEST_CASE("start() reports a port in use") {
    asio::io_context ioc;
    pc::server first(ioc, {.port = 0, .line_port = std::nullopt});
    first.start();
    pc::server second(ioc, {.port = first.local_port(), .line_port = std::nullopt});
    std::error_code ec;
    second.start(ec);
    CHECK(ec == asio::error::address_in_use);
    pc::server third(ioc, {.port = first.local_port(), .line_port = std::nullopt});
    try {
        third.start();
        FAIL("start() did not throw");
    } catch (const std::system_error& e) {
        CHECK(std::string(e.what()).find("cannot listen on 127.0.0.1:" +
                                         std::to_string(first.local_port())) != std::string::npos);
    }
    pc::server bad(ioc, {.host = "localhost", .port = 0});
    CHECK_THROWS_WITH_AS(bad.start(), doctest::Contains("invalid address 'localhost'"),
                         std::system_error);
    first.stop();
    ioc.run_for(std::chrono::seconds(2));
    CHECK(ioc.stopped());
}

} // TEST_SUITE

// Resume end to end (docs/PROTOCOL.md §6): a reader reset by SO_LINGER 0 in
// the middle of a stream, 20 times, each time with unread messages in
// flight, comes back with /resume and gets every message once, in order;
// the room never sees it leave.
TEST_CASE("resume: a client reset mid-stream 20 times gets every message once, in order") {
    pc::server_options o;
    o.resume_grace = 30s;
    server_fixture f(o);
    client alice(f.port());
    alice.login("alice");
    auto bob = std::make_unique<client>(f.port());
    bob->login("bob");
    std::string token = bob->seen_of<pc::nick_accepted_event>().at(0).resume_token;
    REQUIRE(token.size() > 40);
    const std::string first_token = token;
    std::vector<std::uint64_t> seqs;
    std::string epoch;
    std::uint64_t sent = 0;
    unsigned rng = 12345;
    const auto take = [&](const pc::message_event& m) {
        seqs.push_back(m.seq);
        CHECK(m.text == "n" + std::to_string(seqs.size()));
        if (epoch.empty())
            epoch = m.epoch;
        CHECK(m.epoch == epoch);
    };
    for (int round = 0; round < 20; ++round) {
        for (int i = 0; i < 50; ++i)
            alice.say("n" + std::to_string(++sent));
        alice.wait_for<pc::message_event>(
            [&](const auto& m) { return m.text == "n" + std::to_string(sent); });
        rng = rng * 1103515245 + 12345;
        const unsigned reading = (rng >> 8) % 40; // of the 50 or more now on their way
        for (unsigned i = 0; i < reading; ++i)
            take(bob->expect<pc::message_event>());
        bob->conn().reset();
        bob = std::make_unique<client>(f.port());
        bob->expect<pc::welcome_event>();
        const std::uint64_t last = seqs.empty() ? 0 : seqs.back();
        bob->say("/resume " + token + " lobby=" + std::to_string(last) + "@" + epoch);
        const auto accepted = bob->expect<pc::nick_accepted_event>();
        CHECK(accepted.nick == "bob");
        CHECK(accepted.resume_token != token);
        token = accepted.resume_token;
        for (;;) { // the missed messages, the members, then resumed
            auto e = bob->next();
            REQUIRE(e.has_value());
            if (auto* m = std::get_if<pc::message_event>(&*e))
                take(*m);
            else if (auto* r = std::get_if<pc::resumed_event>(&*e)) {
                CHECK(r->recovered);
                break;
            }
        }
    }
    alice.say("end");
    bob->wait_for<pc::message_event>([&](const auto& m) {
        if (m.text == "end")
            return true;
        take(m);
        return false;
    });
    REQUIRE(seqs.size() == sent);
    for (std::size_t i = 0; i < seqs.size(); ++i)
        CHECK(seqs[i] == i + 1);
    CHECK(alice.seen_of<pc::leave_event>().empty());
    CHECK(alice.seen_of<pc::join_event>().size() == 2); // her own and bob's first
    // A replayed token is refused; the connection may then choose a nickname.
    client mallory(f.port());
    mallory.expect<pc::welcome_event>();
    mallory.say("/resume " + first_token + " lobby=1");
    mallory.expect_error("resume_failed");
    mallory.say("mallory");
    CHECK(mallory.expect<pc::nick_accepted_event>().nick == "mallory");
}

TEST_CASE("the web port serves /healthz, and /metrics counted at the time of the scrape") {
    pc::server_options options;
    options.web_port = 0;
    server_fixture f(options);
    const auto web = f.server().web_port();
    const auto health = http_get(web, "/healthz");
    REQUIRE(health);
    CHECK(health->rfind("HTTP/1.1 200 ", 0) == 0);
    CHECK(health->size() >= 3);
    CHECK(health->compare(health->size() - 3, 3, "ok\n") == 0);

    const auto deliveries = [&](const std::string& scrape) -> long long {
        const std::string name = "\nparley_chat_deliveries_total ";
        const auto at = scrape.find(name);
        return at == std::string::npos ? -1 : std::stoll(scrape.substr(at + name.size()));
    };
    const auto before = http_get(web, "/metrics");
    REQUIRE(before);
    CHECK(before->find("Content-Type: text/plain; version=0.0.4") != std::string::npos);
    CHECK(before->find("parley_chat_connections{transport=\"framed\"} 0\n") != std::string::npos);
    const auto d0 = deliveries(*before);
    REQUIRE(d0 >= 0);

    client alice(f.port());
    alice.login("alice");
    client bob(f.port());
    bob.login("bob");
    alice.expect<pc::join_event>();
    alice.say("hello bob");
    CHECK(bob.expect<pc::message_event>().text == "hello bob");
    CHECK(alice.expect<pc::message_event>().text == "hello bob");

    const auto after = http_get(web, "/metrics");
    REQUIRE(after);
    CHECK(after->find("parley_chat_connections{transport=\"framed\"} 2\n") != std::string::npos);
    CHECK(after->find("parley_chat_rooms 1\n") != std::string::npos);
    CHECK(deliveries(*after) >= d0 + 2); // the message, to each of the two
}

TEST_SUITE("chat server") {

TEST_CASE("the memory sweep gives idle clients' buffers back, and they chat on") {
    // A sweep every 5 ms: between the rounds both clients are idle for
    // several periods, so their outbound rings are freed and made again,
    // and a heap trim may run (server_options::memory_sweep, trim_heap).
    pc::server_options o;
    o.memory_sweep = 5ms;
    server_fixture f(std::move(o));
    client alice(f.port());
    alice.login("alice");
    client bob(f.port());
    bob.login("bob");
    alice.expect<pc::join_event>();
    for (int round = 0; round < 5; ++round) {
        std::this_thread::sleep_for(30ms);
        alice.say("round " + std::to_string(round));
        CHECK(bob.expect<pc::message_event>().text == "round " + std::to_string(round));
        CHECK(alice.expect<pc::message_event>().text == "round " + std::to_string(round));
        std::this_thread::sleep_for(30ms);
        bob.say("back " + std::to_string(round));
        CHECK(alice.expect<pc::message_event>().text == "back " + std::to_string(round));
        CHECK(bob.expect<pc::message_event>().text == "back " + std::to_string(round));
    }
    CHECK(alice.silent());
    CHECK(bob.silent());
}

} // TEST_SUITE

TEST_SUITE("chat server") {

TEST_CASE("single_threaded: one thread, no strand per connection, the same chat") {
    pc::server_options o;
    o.single_threaded = true;
    server_fixture f(std::move(o), 1);
    client alice(f.port());
    alice.login("alice");
    client bob(f.port());
    bob.login("bob");
    alice.expect<pc::join_event>();
    for (int i = 0; i < 20; ++i) {
        alice.say("a" + std::to_string(i));
        bob.say("b" + std::to_string(i));
    }
    // Each sender's messages in order, to both members.
    for (auto* c : {&alice, &bob}) {
        int next_a = 0, next_b = 0;
        while (next_a < 20 || next_b < 20) {
            const auto m = c->expect<pc::message_event>();
            if (m.from == "alice")
                CHECK(m.text == "a" + std::to_string(next_a++));
            else
                CHECK(m.text == "b" + std::to_string(next_b++));
        }
    }
    alice.say("/msg bob psst");
    CHECK(bob.expect<pc::private_event>().text == "psst");
    // The server's member functions from another thread while it runs.
    CHECK(f.server().clients().size() == 2);
    bob.say("QUIT");
    bob.wait_for<pc::notice_event>([](const auto& n) { return n.code == "goodbye"; });
    CHECK(bob.conn().wait_closed());
    alice.wait_for<pc::leave_event>([](const auto& l) { return l.nick == "bob"; });
    client carol(f.port());
    carol.login("carol");
    carol.conn().reset();
    alice.wait_for<pc::leave_event>([](const auto& l) { return l.nick == "carol"; });
    CHECK(forgotten(f, "carol"));
}

// Heap bytes the whole server (sessions, Asio's per-socket state, the
// core) holds per named idle client: `n` clients log in and stay in the
// lobby, measured by glibc's count once their join storm is written and
// the idle clients' rings are given back. As many came and quit first,
// so that what a storm leaves cached (Asio's and parley's recycled
// handler memory, hash tables' buckets) is there before the count.
// 0 where that count is not available (checked first: a sanitizer's
// allocator reports an empty glibc heap, and 600 logins are not made).
static double server_bytes_per_client(bool single_threaded, std::size_t n) {
#if defined(__GLIBC__)
    if (::mallinfo2().uordblks == 0)
        return 0;
    pc::server_options o;
    o.host = "127.0.0.1";
    o.port = 0;
    o.line_port = std::nullopt;
    o.max_clients = 2 * n + 10;
    o.max_clients_per_address = 0;
    o.flood.messages_per_second = 0;
    o.memory_sweep = 10ms;
    o.single_threaded = single_threaded;
    asio::io_context ioc(1);
    std::optional<pc::server> server;
    server.emplace(ioc, std::move(o));
    server->start();
    std::thread io([&] { ioc.run(); });
    std::vector<std::unique_ptr<connection>> conns;
    const auto settle = [&](std::size_t clients) {
        CHECK(server_fixture::eventually([&] {
            std::size_t named = 0;
            for (const auto& c : server->clients())
                named += !c.rooms.empty();
            return named == clients;
        }));
        // The events written (the kernel's buffers hold them: a few
        // hundred clients), then a few sweeps of the idle clients' rings.
        CHECK(server_fixture::eventually([&] { return server->limit_counters().outbound_bytes == 0; }));
        std::this_thread::sleep_for(100ms);
    };
    const auto log_in = [&](std::size_t count) {
        for (std::size_t i = 0; i < count; ++i) {
            conns.push_back(std::make_unique<connection>(server->local_port()));
            conns.back()->send_frame("u" + std::to_string(conns.size()));
        }
        settle(conns.size());
    };
    log_in(n);
    for (auto& c : conns)
        c->send_frame("QUIT"); // quits are not kept for a resume
    CHECK(server_fixture::eventually([&] { return server->clients().empty(); }));
    conns.clear();
    log_in(1); // the lobby
    const auto before = ::mallinfo2().uordblks;
    log_in(n);
    const auto after = ::mallinfo2().uordblks;
    server->stop();
    CHECK(server_fixture::eventually([&] { return ioc.stopped(); }));
    ioc.stop();
    io.join();
    server.reset();
    return after > before ? static_cast<double>(after - before) / static_cast<double>(n) : 0;
#else
    (void)single_threaded;
    (void)n;
    return 0;
#endif
}

TEST_CASE("chat server: an idle named client costs under 1,650 bytes of heap, single-threaded") {
    const double shared = server_bytes_per_client(true, 300);
    const double stranded = server_bytes_per_client(false, 300);
    if (shared == 0 || stranded == 0)
        return parley::test::skip("no glibc heap count here (another C library or a sanitizer's allocator)");
    MESSAGE("heap per named idle client: " << shared << " B single-threaded, " << stranded
                                           << " B with a strand per connection");
    // Before (49fa193, the same method in a program of its own): about
    // 1,720 B; 1,460-1,520 B since.
    CHECK(shared < 1650);
    // The strand (its state and its shared_ptr's block) is not made.
    CHECK(shared + 64 < stranded);
}

} // TEST_SUITE
