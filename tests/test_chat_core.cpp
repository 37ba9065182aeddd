// The chat core (parley/chat/core/core.hpp) without a network: inputs in,
// actions out, time passed in.
#include <parley/chat/core/core.hpp>

#include "support/chat_core_heap.hpp"
#include "support/skip.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

namespace core = parley::chat::core;
namespace pc = parley::chat;
using namespace std::chrono_literals;

namespace {

// A chat core and a clock, with the events each connection was given.
struct harness {
    explicit harness(core::options o = defaults()) : chat(std::move(o)) {}

    static core::options defaults() {
        core::options o;
        o.prompt = "hello";
        o.server_name = "parley/test";
        return o;
    }

    core::chat chat;
    core::moment now{std::chrono::steady_clock::time_point(1h),
                     std::chrono::system_clock::time_point(1000h)};
    core::actions out;

    void advance(std::chrono::milliseconds d) {
        now.steady += d;
        now.wall += d;
    }
    void connect(core::conn_id id, bool interactive = false) {
        chat.connect(id, {"peer" + std::to_string(id), "10.0.0." + std::to_string(id), interactive},
                     now, out);
    }
    void in(core::conn_id id, std::string_view text) { chat.input(id, text, now, out); }
    void login(core::conn_id id, std::string nick) {
        connect(id);
        in(id, nick);
    }
    void tick() { chat.tick(now, out); }

    // The events `id` was given (sent or published to it), in order; the
    // actions are consumed.
    std::vector<pc::event> events(core::conn_id id) {
        std::vector<pc::event> got;
        for (const auto& a : out) {
            if (auto* s = std::get_if<core::send_action>(&a); s && s->to == id)
                got.push_back(s->ev);
            if (auto* p = std::get_if<core::publish_action>(&a);
                p && std::find(p->to->begin(), p->to->end(), id) != p->to->end())
                got.push_back(p->ev);
        }
        return got;
    }
    template <class T>
    std::vector<T> all(core::conn_id id) {
        std::vector<T> got;
        for (auto& e : events(id))
            if (auto* t = std::get_if<T>(&e))
                got.push_back(*t);
        return got;
    }
    std::vector<std::string> errors(core::conn_id id) {
        std::vector<std::string> codes;
        for (auto& e : all<pc::error_event>(id))
            codes.push_back(e.code);
        return codes;
    }
    bool closed(core::conn_id id) const {
        return std::any_of(out.begin(), out.end(), [&](const core::action& a) {
            auto* c = std::get_if<core::close_action>(&a);
            return c && c->id == id;
        });
    }
    template <class T>
    std::vector<T> actions_of() const {
        std::vector<T> got;
        for (const auto& a : out)
            if (auto* t = std::get_if<T>(&a))
                got.push_back(*t);
        return got;
    }
    void clear() { out.clear(); }
};


} // namespace

TEST_CASE("chat core: welcome, nickname, the default room and a message to it") {
    harness h;
    h.connect(1);
    auto first = h.events(1);
    REQUIRE(first.size() == 1);
    CHECK(std::get<pc::welcome_event>(first[0]).prompt == "hello");
    h.in(1, "alice");
    h.login(2, "bob");
    h.clear();
    h.in(2, "hi all");
    const auto at_alice = h.all<pc::message_event>(1);
    REQUIRE(at_alice.size() == 1);
    CHECK(at_alice[0].from == "bob");
    CHECK(at_alice[0].room == "lobby");
    CHECK(at_alice[0].text == "hi all");
    CHECK(at_alice[0].time == pc::format_time(h.now.wall));
    CHECK(h.all<pc::message_event>(2).size() == 1); // the sender too
    // One publish, to the room's one member list: no copy per recipient.
    CHECK(h.actions_of<core::publish_action>().size() == 1);
    CHECK(h.chat.room_count() == 1);
    CHECK(h.chat.member_count() == 2);
    const auto clients = h.chat.clients();
    REQUIRE(clients.size() == 2);
    CHECK(clients[1].nick == "bob");
    CHECK(clients[1].rooms == std::vector<std::string>{"lobby"});
    CHECK(clients[1].current_room == "lobby");
}

TEST_CASE("chat core: nicknames are unique ignoring case; a rename reaches room mates once") {
    harness h;
    h.login(1, "alice");
    h.connect(2);
    h.clear();
    h.in(2, "ALICE");
    CHECK(h.errors(2) == std::vector<std::string>{"nickname_taken"});
    h.in(2, "bob");
    h.in(2, "/join side");
    h.in(1, "/join side");
    h.clear();
    h.in(2, "/nick robert");
    const auto renames = h.all<pc::rename_event>(1);
    REQUIRE(renames.size() == 1); // two rooms shared, told once
    CHECK(renames[0].old_nick == "bob");
    CHECK(renames[0].new_nick == "robert");
}

TEST_CASE("chat core: extra arguments are bad_arguments (/nick x y, /help me)") {
    harness h;
    h.connect(1);
    h.clear();
    h.in(1, "/help me");
    CHECK(h.errors(1) == std::vector<std::string>{"bad_arguments"});
    h.in(1, "alice");
    h.clear();
    h.in(1, "/nick x y");
    h.in(1, "/help me");
    CHECK(h.errors(1) == std::vector<std::string>{"bad_arguments", "bad_arguments"});
    CHECK(h.all<pc::notice_event>(1).empty());
    h.clear();
    h.in(1, "/help");
    CHECK(h.all<pc::notice_event>(1).size() == 1);
}

TEST_CASE("chat core: with an access token, /pong and /help work before /auth") {
    auto o = harness::defaults();
    o.access_token = "s3cret";
    harness h(o);
    h.connect(1);
    h.clear();
    h.in(1, "/pong");
    CHECK(h.out.empty()); // a sign of life, not access_required
    h.in(1, "alice");
    CHECK(h.errors(1) == std::vector<std::string>{"access_required"});
    h.clear();
    h.in(1, "/auth s3cret");
    CHECK(h.all<pc::notice_event>(1).at(0).text == "access granted; choose a nickname");
    h.in(1, "alice");
    CHECK(h.all<pc::nick_accepted_event>(1).size() == 1);

    h.connect(2);
    h.clear();
    h.in(2, "/auth wrong");
    CHECK(h.errors(2) == std::vector<std::string>{"access_denied"});
    CHECK(h.closed(2));
    CHECK(h.chat.hits().access_denied == 1);
}

TEST_CASE("chat core: pings, the idle deadline and the nickname deadline come from tick()") {
    auto o = harness::defaults();
    o.ping_interval = 45s;
    o.idle_timeout = 120s;
    o.nickname_timeout = 60s;
    harness h(o);
    h.login(1, "alice");
    h.login(2, "bob");
    h.connect(3); // never chooses a nickname
    REQUIRE(h.chat.next_wakeup());
    h.clear();
    h.advance(45s);
    h.tick();
    CHECK(h.all<pc::ping_event>(1).size() == 1);
    CHECK(h.all<pc::ping_event>(2).size() == 1);
    h.in(2, "/pong"); // bob answers; alice does not
    h.clear();
    h.advance(15s);
    h.tick();
    CHECK(h.errors(3) == std::vector<std::string>{"nickname_timeout"});
    CHECK(h.closed(3));
    h.clear();
    h.advance(60s); // 120 s after alice's last input
    h.tick();
    CHECK(h.errors(1) == std::vector<std::string>{"idle_timeout"});
    CHECK(h.closed(1));
    const auto leaves = h.all<pc::leave_event>(2);
    REQUIRE(leaves.size() == 1);
    CHECK(leaves[0].reason == "timeout");
    CHECK(h.errors(2).empty());
    CHECK(h.chat.hits().pings_sent == 4); // 3 without a nickname too, bob twice
    CHECK(h.chat.hits().idle_timeouts == 1);
    CHECK(h.chat.hits().nickname_timeouts == 1);
}

TEST_CASE("chat core: interactive clients are not pinged and have their own idle deadline") {
    auto o = harness::defaults();
    o.ping_interval = 45s;
    o.idle_timeout = 120s;
    o.line_idle_timeout = 600s;
    harness h(o);
    h.connect(1, true);
    h.in(1, "alice");
    h.clear();
    h.advance(300s);
    h.tick();
    CHECK(h.out.empty());
    h.advance(300s);
    h.tick();
    CHECK(h.errors(1) == std::vector<std::string>{"idle_timeout"});
}

TEST_CASE("chat core: flood control warns once, then disconnects a flooder") {
    auto o = harness::defaults();
    o.messages_per_second = 1;
    o.burst_messages = 3;
    o.max_dropped = 5;
    harness h(o);
    h.login(1, "alice"); // the nickname takes a token
    h.clear();
    for (int i = 0; i < 2; ++i)
        h.in(1, "m" + std::to_string(i));
    CHECK(h.errors(1).empty());
    h.in(1, "too fast");
    CHECK(h.errors(1) == std::vector<std::string>{"rate_limited"});
    h.advance(1s); // one token back
    h.clear();
    h.in(1, "allowed");
    CHECK(h.all<pc::message_event>(1).size() == 1);
    for (int i = 0; i < 5; ++i)
        h.in(1, "flood");
    CHECK(h.errors(1) == std::vector<std::string>{"flooding"});
    CHECK(h.closed(1));
    CHECK(h.chat.hits().flood_disconnects == 1);
}

TEST_CASE("chat core: leave reasons follow how a connection ended") {
    harness h;
    h.login(1, "watcher");
    h.login(2, "quitter");
    h.login(3, "finisher");
    h.login(4, "resetter");
    h.login(5, "slow");
    h.clear();
    h.in(2, "/quit");
    h.chat.peer_finished(3, h.now, h.out);
    h.chat.closed(4, core::departure::error, "Connection reset by peer", h.now, h.out);
    h.chat.closed(5, core::departure::slow_consumer, "", h.now, h.out);
    std::vector<std::string> reasons;
    for (const auto& l : h.all<pc::leave_event>(1))
        reasons.push_back(l.nick + ":" + l.reason);
    CHECK(reasons == std::vector<std::string>{"quitter:quit", "finisher:disconnected",
                                              "resetter:error", "slow:slow_consumer"});
    // Closing after the leave was announced announces nothing more.
    h.clear();
    h.chat.closed(3, core::departure::error, "", h.now, h.out);
    CHECK(h.all<pc::leave_event>(1).empty());
    CHECK(h.chat.connections() == 2); // 2 is told goodbye, not yet closed
}

TEST_CASE("chat core: /part, /list and room names ('##rust' is the room '#rust')") {
    harness h;
    h.login(1, "alice");
    h.clear();
    h.in(1, "/join ##rust");
    h.in(1, "/part #rust");
    CHECK(h.errors(1) == std::vector<std::string>{"not_in_room"});
    h.clear();
    h.in(1, "/part ##rust");
    CHECK(h.all<pc::leave_event>(1).at(0).room == "#rust");
    h.clear();
    h.in(1, "/list nowhere");
    CHECK(h.errors(1) == std::vector<std::string>{"no_such_room"});
    h.clear();
    h.in(1, "/list");
    CHECK(h.all<pc::members_event>(1).at(0).members == std::vector<std::string>{"alice"});
}

TEST_CASE("chat core: room history is replayed to a joiner before its join") {
    auto o = harness::defaults();
    o.history_messages = 2;
    o.history_bytes = 64 * 1024;
    harness h(o);
    h.login(1, "alice");
    for (int i = 0; i < 3; ++i)
        h.in(1, "old " + std::to_string(i));
    h.clear();
    h.login(2, "bob");
    const auto got = h.events(2);
    REQUIRE(got.size() == 6);
    CHECK(std::get<pc::message_event>(got[2]).text == "old 1");
    CHECK(std::get<pc::message_event>(got[3]).text == "old 2");
    CHECK(std::holds_alternative<pc::join_event>(got[4]));
    CHECK(std::get<pc::members_event>(got[5]).count == 2);
}

TEST_CASE("chat core: private messages, and limits on clients per server and address") {
    auto o = harness::defaults();
    o.max_clients = 3;
    o.max_clients_per_address = 1;
    harness h(o);
    h.login(1, "alice");
    h.login(2, "bob");
    h.clear();
    h.in(1, "/msg BOB psst");
    CHECK(h.all<pc::private_event>(2).at(0).text == "psst");
    CHECK(h.all<pc::private_event>(1).size() == 1); // the sender's copy
    h.in(1, "/msg nobody psst");
    CHECK(h.errors(1) == std::vector<std::string>{"no_such_nick"});
    h.clear();
    h.chat.connect(3, {"peer3", "10.0.0.1", false}, h.now, h.out); // alice's address
    CHECK(h.errors(3) == std::vector<std::string>{"too_many_connections"});
    h.connect(4);
    h.clear();
    h.connect(5);
    CHECK(h.errors(5) == std::vector<std::string>{"server_full"});
    CHECK(h.closed(5));
}

TEST_CASE("chat core: clustered, a nickname is claimed first and inputs wait for the answer") {
    auto o = harness::defaults();
    o.clustered = true;
    harness h(o);
    h.connect(1);
    h.clear();
    h.in(1, "alice");
    h.in(1, "early words");
    const auto claims = h.actions_of<core::cluster_claim>();
    REQUIRE(claims.size() == 1);
    CHECK(claims[0].key == "alice");
    CHECK(h.all<pc::nick_accepted_event>(1).empty());
    h.clear();
    h.chat.nick_claimed(1, claims[0].serial, pc::claim_result::claimed, h.now, h.out);
    CHECK(h.all<pc::nick_accepted_event>(1).size() == 1);
    CHECK(h.all<pc::message_event>(1).at(0).text == "early words");
    const auto sent = h.actions_of<core::cluster_publish>();
    REQUIRE(sent.size() == 2);
    CHECK(sent[0].payload.starts_with("J\nlobby\nalice\n"));
    CHECK(sent[1].payload.starts_with("M\nlobby\nalice\nearly words\n"));

    // A claim answered after its connection closed is released.
    h.connect(2);
    h.in(2, "bob");
    const auto serial = h.actions_of<core::cluster_claim>().at(0).serial;
    h.chat.closed(2, core::departure::closed, "", h.now, h.out);
    h.clear();
    h.chat.nick_claimed(2, serial, pc::claim_result::claimed, h.now, h.out);
    const auto released = h.actions_of<core::cluster_release>();
    REQUIRE(released.size() == 1);
    CHECK(released[0].key == "bob");
}

TEST_CASE("chat core: payloads from other instances reach local members; bad ones are logged once") {
    auto o = harness::defaults();
    o.clustered = true;
    harness h(o);
    h.connect(1);
    h.in(1, "alice");
    h.chat.nick_claimed(1, h.actions_of<core::cluster_claim>().at(0).serial,
                        pc::claim_result::claimed, h.now, h.out);
    h.clear();
    h.chat.cluster_message("other", "J\nlobby\nzed\n2024-01-01T00:00:00.000Z", h.now, h.out);
    h.chat.cluster_message("other", "M\nlobby\nzed\nhi from afar\n2024-01-01T00:00:00.000Z", h.now,
                           h.out);
    h.chat.cluster_message("other", "M\nlobby\nzed", h.now, h.out);
    h.chat.cluster_message("other", "X\n\n\n\n\n\n", h.now, h.out);
    CHECK(h.all<pc::join_event>(1).at(0).nick == "zed");
    CHECK(h.all<pc::message_event>(1).at(0).text == "hi from afar");
    CHECK(h.actions_of<core::log_action>().size() == 1);
    h.clear();
    h.in(1, "/list");
    CHECK(h.all<pc::members_event>(1).at(0).count == 2);
}

TEST_CASE("chat core: with shared history, a joiner gets history, join, members, then what was held") {
    auto o = harness::defaults();
    o.clustered = true;
    o.shared_history = 10;
    harness h(o);
    h.connect(1);
    h.in(1, "alice");
    h.chat.nick_claimed(1, h.actions_of<core::cluster_claim>().at(0).serial,
                        pc::claim_result::claimed, h.now, h.out);
    const auto reads = h.actions_of<core::cluster_read_history>();
    REQUIRE(reads.size() == 1);
    h.clear();
    // Before the answer: a stored message (in the history, dropped) and a
    // private message (held).
    h.chat.cluster_message("other", "S\nlobby\nzed\nin history\n2024-01-01T00:00:00.000Z", h.now,
                           h.out);
    h.chat.cluster_message("other", "P\nzed\nalice\npsst\n2024-01-01T00:00:00.000Z", h.now, h.out);
    CHECK(h.events(1).empty());
    h.chat.history_read(reads[0].serial,
                        std::vector<std::string>{"S\nlobby\nzed\nin history\n2024-01-01T00:00:00.000Z"},
                        h.now, h.out);
    const auto got = h.events(1);
    REQUIRE(got.size() == 4);
    CHECK(std::get<pc::message_event>(got[0]).text == "in history");
    CHECK(std::holds_alternative<pc::join_event>(got[1]));
    CHECK(std::holds_alternative<pc::members_event>(got[2]));
    CHECK(std::get<pc::private_event>(got[3]).text == "psst");
    CHECK(std::get<pc::private_event>(got[3]).id > std::get<pc::message_event>(got[0]).id);
}

TEST_CASE("chat core: stop() says goodbye to everyone and refuses newcomers") {
    harness h;
    h.login(1, "alice");
    h.connect(2);
    h.clear();
    h.chat.stop(500ms, h.now, h.out);
    CHECK(h.all<pc::notice_event>(1).at(0).code == "shutdown");
    CHECK(h.all<pc::notice_event>(2).at(0).code == "shutdown");
    const auto closes = h.actions_of<core::close_action>();
    REQUIRE(closes.size() == 2);
    CHECK(closes[0].flush == 500ms);
    h.clear();
    h.connect(3);
    CHECK(h.events(3).empty());
    CHECK(h.closed(3));
}

TEST_CASE("chat core: an idle named client costs the core little heap") {
    // The client record (rare parts behind a pointer allocated on first
    // use, flags packed), its nickname entry, its wake-up and its place in
    // the lobby. It was about 620 bytes (a 392-byte record).
    auto o = harness::defaults();
    const double bytes = parley::test::core_bytes_per_client(o, 2000);
    if (bytes == 0) {
        parley::test::skip("no glibc heap count here (another C library or a sanitizer's allocator)");
        return;
    }
    MESSAGE("core heap per named client: " << bytes << " bytes");
    CHECK(bytes < 560); // about 494 with this layout
}
