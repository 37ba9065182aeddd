// The chat core's room offsets, resume tokens, grace period, resume and
// /history paging (parley/chat/core/core.hpp, impl/resume.hpp), without a
// network.
#include <parley/chat/core/core.hpp>

#include "support/chat_core_heap.hpp"
#include "support/skip.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

namespace core = parley::chat::core;
namespace pc = parley::chat;
using namespace std::chrono_literals;

namespace {

struct harness {
    harness() : harness(defaults(true)) {}
    explicit harness(core::options o) : chat(std::move(o)) {}

    // Deterministic "random" bytes: the tests need tokens, not secrecy.
    static core::options defaults(bool random = true) {
        core::options o;
        o.prompt = "hello";
        o.server_name = "parley/test";
        if (random) {
            auto engine = std::make_shared<std::mt19937_64>(42);
            o.random = [engine](unsigned char* p, std::size_t n) {
                for (std::size_t i = 0; i < n; ++i)
                    p[i] = static_cast<unsigned char>((*engine)());
            };
        }
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
    void connect(core::conn_id id) {
        chat.connect(id, {"peer" + std::to_string(id), "10.0.0." + std::to_string(id % 200), false},
                     now, out);
    }
    void in(core::conn_id id, std::string_view text) { chat.input(id, text, now, out); }
    void login(core::conn_id id, std::string nick) {
        connect(id);
        in(id, nick);
    }
    void lost(core::conn_id id, core::departure d = core::departure::error) {
        chat.closed(id, d, "reset", now, out);
    }
    void tick() { chat.tick(now, out); }

    std::vector<pc::event> events(core::conn_id id) const {
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
    std::vector<T> all(core::conn_id id) const {
        std::vector<T> got;
        for (auto& e : events(id))
            if (auto* t = std::get_if<T>(&e))
                got.push_back(*t);
        return got;
    }
    std::vector<std::string> errors(core::conn_id id) const {
        std::vector<std::string> codes;
        for (auto& e : all<pc::error_event>(id))
            codes.push_back(e.code);
        return codes;
    }
    std::string token(core::conn_id id) const {
        auto accepted = all<pc::nick_accepted_event>(id);
        return accepted.empty() ? std::string() : accepted.back().resume_token;
    }
    bool closed(core::conn_id id) const {
        return std::any_of(out.begin(), out.end(), [&](const core::action& a) {
            auto* c = std::get_if<core::close_action>(&a);
            return c && c->id == id;
        });
    }
    void clear() { out.clear(); }
};

std::vector<std::uint64_t> seqs(const std::vector<pc::message_event>& ms) {
    std::vector<std::uint64_t> s;
    for (const auto& m : ms)
        s.push_back(m.seq);
    return s;
}


} // namespace

TEST_CASE("chat core resume: message seq is gapless per room, with the room's epoch") {
    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    h.in(1, "/join other");
    h.clear();
    h.in(1, "/join lobby");
    for (int i = 0; i < 5; ++i) {
        h.in(1, "m" + std::to_string(i));
        h.in(1, "/join other");
        h.in(1, "o" + std::to_string(i));
        h.in(1, "/join lobby");
        h.in(1, "/msg bob psst"); // private messages take no seq
    }
    const auto lobby = h.all<pc::message_event>(2);
    REQUIRE(lobby.size() == 5);
    CHECK(seqs(lobby) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    CHECK(lobby[0].epoch.size() == 14);
    CHECK(std::all_of(lobby.begin(), lobby.end(), [&](auto& m) { return m.epoch == lobby[0].epoch; }));
    std::vector<pc::message_event> other;
    for (auto& m : h.all<pc::message_event>(1))
        if (m.room == "other")
            other.push_back(m);
    CHECK(seqs(other) == std::vector<std::uint64_t>{1, 2, 3, 4, 5});
    CHECK(other[0].epoch != lobby[0].epoch);
    // A join's members event tells the room's position.
    h.clear();
    h.login(3, "carol");
    const auto members = h.all<pc::members_event>(3);
    REQUIRE(members.size() == 1);
    CHECK(members[0].seq == 5);
    CHECK(members[0].epoch == lobby[0].epoch);
    // Emptied and made again: a new epoch, seq from 1.
    h.in(1, "/part other");
    h.in(1, "/join other");
    h.clear();
    h.in(1, "again");
    const auto fresh = h.all<pc::message_event>(1);
    REQUIRE(fresh.size() == 1);
    CHECK(fresh[0].seq == 1);
    CHECK(fresh[0].epoch != other[0].epoch);
    CHECK(pc::to_json(fresh[0]).find("\"seq\":1,\"epoch\":\"") != std::string::npos);
}

TEST_CASE("chat core resume: tokens are given only with a random source, and are long") {
    harness without(harness::defaults(false));
    without.login(1, "alice");
    CHECK(without.token(1).empty());
    CHECK(pc::to_json(without.all<pc::nick_accepted_event>(1).at(0)).find("resume_token") ==
          std::string::npos);
    // Without tokens a disconnect is announced at once, as before.
    without.login(2, "bob");
    without.clear();
    without.lost(1);
    CHECK(without.all<pc::leave_event>(2).size() == 1);

    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    const std::string a = h.token(1), b = h.token(2);
    REQUIRE(a.find('.') != std::string::npos);
    CHECK(a.size() - a.find('.') - 1 == 48); // 192 bits in hex
    CHECK(a != b);
}

TEST_CASE("chat core resume: a lost client is away for the grace period, then leaves once") {
    auto o = harness::defaults();
    o.resume_grace = 2000ms;
    harness h(o);
    h.login(1, "alice");
    h.in(1, "/join other");
    h.login(2, "bob");
    h.in(2, "/join other");
    h.clear();
    h.lost(1, core::departure::slow_consumer);
    CHECK(h.all<pc::leave_event>(2).empty());
    // The nickname stays taken, the member stays listed.
    h.login(3, "Alice");
    CHECK(h.errors(3) == std::vector<std::string>{"nickname_taken"});
    h.clear();
    h.in(2, "/list lobby");
    REQUIRE(h.all<pc::members_event>(2).size() == 1);
    CHECK(h.all<pc::members_event>(2)[0].count == 2);
    REQUIRE(h.chat.next_wakeup());
    CHECK(*h.chat.next_wakeup() <= h.now.steady + 2000ms);
    h.advance(1999ms);
    h.tick();
    CHECK(h.all<pc::leave_event>(2).empty());
    h.advance(1ms);
    h.tick();
    const auto leaves = h.all<pc::leave_event>(2);
    REQUIRE(leaves.size() == 2); // one per room
    CHECK(leaves[0].reason == "slow_consumer");
    CHECK(leaves[0].nick == "alice");
    h.clear();
    h.advance(10s);
    h.tick();
    CHECK(h.all<pc::leave_event>(2).empty());
    // The name is free again; the token is dead.
    h.in(3, "alice");
    CHECK(h.all<pc::nick_accepted_event>(3).size() == 1);
}

TEST_CASE("chat core resume: exactly the missed messages, then members and resumed") {
    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    h.in(2, "/join side");
    h.in(1, "/join side");
    h.in(1, "/join lobby");
    h.in(1, "one");
    h.in(1, "two");
    const std::string token = h.token(2);
    h.clear();
    h.lost(2);
    h.in(1, "three");
    h.in(1, "four");
    h.in(1, "/join side");
    h.in(1, "s1");
    CHECK(h.all<pc::leave_event>(1).empty());
    h.clear();
    h.connect(3);
    h.in(3, "/resume " + token + " lobby=2 side=0");
    const auto got = h.events(3);
    // welcome, nick_accepted, three, four, members lobby, s1, members side, resumed
    REQUIRE(got.size() == 8);
    CHECK(std::get<pc::nick_accepted_event>(got[1]).nick == "bob");
    CHECK(std::get<pc::message_event>(got[2]).text == "three");
    CHECK(std::get<pc::message_event>(got[3]).text == "four");
    CHECK(std::get<pc::members_event>(got[4]).room == "lobby");
    CHECK(std::get<pc::message_event>(got[5]).text == "s1");
    const auto done = std::get<pc::resumed_event>(got[7]);
    CHECK(done.recovered);
    CHECK(done.nick == "bob");
    REQUIRE(done.rooms.size() == 2);
    CHECK(done.rooms[0].from == 2);
    CHECK(done.rooms[0].seq == 4);
    const std::string again = h.token(3);
    // alice saw neither a leave nor a join; bob is live again.
    CHECK(h.all<pc::leave_event>(1).empty());
    CHECK(h.all<pc::join_event>(1).empty());
    h.clear();
    h.in(1, "/join lobby");
    h.in(1, "five");
    CHECK(h.all<pc::message_event>(3).size() == 1);
    // The token was single use; a new one was given.
    CHECK(again != token);
    CHECK(again.size() == token.size());
    h.connect(4);
    h.clear();
    h.in(4, "/resume " + token + " lobby=5");
    CHECK(h.errors(4) == std::vector<std::string>{"resume_failed"});
    h.in(4, "dave"); // may choose a nickname as usual
    CHECK(h.all<pc::nick_accepted_event>(4).size() == 1);
}

TEST_CASE("chat core resume: forged, expired and misplaced tokens are refused") {
    auto o = harness::defaults();
    o.resume_grace = 1000ms;
    harness h(o);
    h.login(1, "alice");
    const std::string token = h.token(1);
    h.lost(1);
    const auto dot = token.find('.');
    std::string first = token, last = token, other = token;
    first[dot + 1] = first[dot + 1] == 'a' ? 'b' : 'a';
    last.back() = last.back() == 'a' ? 'b' : 'a';
    other[0] = '9';
    for (const auto& bad : {first, last, other, token.substr(0, dot), token + "0",
                            std::string("x.y"), std::string(".")}) {
        h.clear();
        h.connect(2);
        h.in(2, "/resume " + bad);
        CHECK(h.errors(2) == std::vector<std::string>{"resume_failed"});
        h.lost(2);
    }
    h.clear();
    h.connect(3);
    h.in(3, "/resume " + token + " lobby=x");
    CHECK(h.errors(3) == std::vector<std::string>{"bad_arguments"});
    h.clear();
    h.in(3, "/resume");
    CHECK(h.errors(3) == std::vector<std::string>{"bad_arguments"});
    h.clear();
    h.in(3, "bob");
    h.in(3, "/resume " + token);
    CHECK(h.errors(3) == std::vector<std::string>{"bad_arguments"}); // not a first input
    // Expired.
    h.advance(1000ms);
    h.tick();
    h.connect(4);
    h.clear();
    h.in(4, "/resume " + token);
    CHECK(h.errors(4) == std::vector<std::string>{"resume_failed"});
    CHECK(h.chat.hits().resumes_failed == 8);
    CHECK(h.chat.hits().graces_expired == 1);
}

TEST_CASE("chat core resume: a gap the history no longer holds, or another epoch, is not recovered") {
    auto o = harness::defaults();
    o.resume_messages = 3;
    harness h(o);
    h.login(1, "alice");
    h.login(2, "bob");
    const std::string token = h.token(2);
    h.lost(2);
    for (int i = 1; i <= 6; ++i)
        h.in(1, "m" + std::to_string(i));
    h.clear();
    h.connect(3);
    h.in(3, "/resume " + token + " lobby=1");
    CHECK(seqs(h.all<pc::message_event>(3)) == std::vector<std::uint64_t>{4, 5, 6});
    auto done = h.all<pc::resumed_event>(3);
    REQUIRE(done.size() == 1);
    CHECK_FALSE(done[0].recovered);
    CHECK_FALSE(done[0].rooms[0].recovered);
    CHECK(pc::to_line(done[0]).find("may be missing") != std::string::npos);

    const std::string epoch = done[0].rooms[0].epoch;
    const std::string token2 = h.token(3);
    h.lost(3);
    h.clear();
    h.connect(4);
    h.in(4, "/resume " + token2 + " lobby=6@" + epoch + "x");
    CHECK(h.all<pc::message_event>(4).empty());
    done = h.all<pc::resumed_event>(4);
    REQUIRE(done.size() == 1);
    CHECK_FALSE(done[0].recovered);
    // With the right epoch and nothing missed: recovered, nothing sent.
    const std::string token3 = h.token(4);
    h.lost(4);
    h.clear();
    h.connect(5);
    h.in(5, "/resume " + token3 + " lobby=6@" + epoch);
    CHECK(h.all<pc::message_event>(5).empty());
    CHECK(h.all<pc::resumed_event>(5).at(0).recovered);
    // A room without a position: not recovered.
    const std::string token4 = h.token(5);
    h.lost(5);
    h.clear();
    h.connect(6);
    h.in(6, "/resume " + token4);
    CHECK_FALSE(h.all<pc::resumed_event>(6).at(0).recovered);
}

TEST_CASE("chat core resume: a resume takes over a connection not yet known to be lost") {
    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    const std::string token = h.token(2);
    h.in(1, "one");
    h.clear();
    h.connect(3);
    h.in(3, "/resume " + token + " lobby=1");
    CHECK(h.closed(2));
    CHECK(h.all<pc::resumed_event>(3).at(0).recovered);
    h.clear();
    h.lost(2); // the old connection's end, later: nothing announced
    CHECK(h.all<pc::leave_event>(1).empty());
    h.in(1, "two");
    CHECK(h.all<pc::message_event>(3).size() == 1);
    CHECK(h.all<pc::message_event>(2).empty());
}

TEST_CASE("chat core resume: quit, part and shutdown are not deferred") {
    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    const std::string token = h.token(2);
    h.clear();
    h.in(2, "/quit");
    h.lost(2, core::departure::closed);
    CHECK(h.all<pc::leave_event>(1).size() == 1);
    h.connect(3);
    h.clear();
    h.in(3, "/resume " + token);
    INFO(pc::to_json(h.events(3).at(0)));
    CHECK(h.errors(3) == std::vector<std::string>{"resume_failed"});
    // A peer's FIN is a lost connection like any: deferred.
    h.login(4, "carol");
    h.clear();
    h.chat.peer_finished(4, h.now, h.out);
    CHECK(h.all<pc::leave_event>(1).empty());
}

TEST_CASE("chat core resume: /history pages back through a room") {
    auto o = harness::defaults();
    o.history_page = 4;
    harness h(o);
    h.login(1, "alice");
    for (int i = 1; i <= 10; ++i)
        h.in(1, "m" + std::to_string(i));
    h.clear();
    h.in(1, "/history lobby");
    auto page = h.all<pc::history_event>(1);
    REQUIRE(page.size() == 1);
    CHECK(seqs(page[0].messages) == std::vector<std::uint64_t>{9, 10}); // default: half the cap
    CHECK(page[0].more);
    h.clear();
    h.in(1, "/history lobby before=9 limit=50");
    page = h.all<pc::history_event>(1);
    CHECK(seqs(page.at(0).messages) == std::vector<std::uint64_t>{5, 6, 7, 8});
    CHECK(page[0].more);
    h.clear();
    h.in(1, "/history LOBBY before=3 limit=4");
    page = h.all<pc::history_event>(1);
    CHECK(seqs(page.at(0).messages) == std::vector<std::uint64_t>{1, 2});
    CHECK_FALSE(page[0].more);
    CHECK(pc::to_line(page[0]).find("\n1 ") != std::string::npos);
    // JSON round trip.
    std::string error;
    auto back = pc::parse_event(pc::to_json(page[0]), error);
    REQUIRE(back);
    CHECK(std::get<pc::history_event>(*back) == page[0]);
    h.clear();
    h.in(1, "/history nowhere");
    h.in(1, "/history");
    h.in(1, "/history lobby before=0");
    h.in(1, "/history lobby since=3");
    CHECK(h.errors(1) ==
          std::vector<std::string>{"no_such_room", "bad_arguments", "bad_arguments", "bad_arguments"});
}

TEST_CASE("chat core resume: the join replay keeps its own bound beside the resume window") {
    auto o = harness::defaults();
    o.history_messages = 2;
    o.history_bytes = 64 * 1024;
    harness h(o);
    h.login(1, "alice");
    for (int i = 1; i <= 5; ++i)
        h.in(1, "m" + std::to_string(i));
    h.clear();
    h.login(2, "bob");
    CHECK(seqs(h.all<pc::message_event>(2)) == std::vector<std::uint64_t>{4, 5});
    h.clear();
    h.in(2, "/history lobby limit=10");
    CHECK(h.all<pc::history_event>(2).at(0).messages.size() == 5);
}

// A client losing its connection at 1,000 random points of a stream, some
// of what was sent to it lost with the connection, resuming each time:
// every message once, in order.
TEST_CASE("chat core resume: 1,000 random disconnections lose and repeat nothing") {
    auto o = harness::defaults();
    o.messages_per_second = 0; // no flood control: 7,000 messages at one instant
    harness h(o);
    std::mt19937 rng(7);
    h.login(1, "alice");
    h.login(2, "bob");
    core::conn_id bob = 2, next = 3;
    std::uint64_t last_seen = 0, sent = 0;
    std::vector<std::uint64_t> received;
    std::vector<std::string> texts;
    std::string token = h.token(bob);
    h.clear();
    for (int round = 0; round < 1000; ++round) {
        const int burst = static_cast<int>(rng() % 12);
        for (int i = 0; i < burst; ++i)
            h.in(1, "t" + std::to_string(++sent));
        // The connection drops: a random prefix of what was queued to bob
        // reached it.
        auto got = h.all<pc::message_event>(bob);
        const std::size_t reached = got.empty() ? 0 : rng() % (got.size() + 1);
        for (std::size_t i = 0; i < reached; ++i) {
            received.push_back(got[i].seq);
            texts.push_back(got[i].text);
            last_seen = got[i].seq;
        }
        REQUIRE(!token.empty());
        const bool known_lost = rng() % 2 == 0; // else: a takeover
        if (known_lost)
            h.lost(bob);
        h.clear();
        for (int i = 0, more = static_cast<int>(rng() % 5); i < more; ++i)
            h.in(1, "t" + std::to_string(++sent));
        const core::conn_id old = bob;
        bob = next++;
        h.connect(bob);
        h.in(bob, "/resume " + token + " lobby=" + std::to_string(last_seen));
        REQUIRE(h.all<pc::resumed_event>(bob).size() == 1);
        CHECK(h.token(bob) != token);
        token = h.token(bob);
        CHECK(h.all<pc::resumed_event>(bob)[0].recovered);
        if (!known_lost)
            h.lost(old);
        CHECK(h.all<pc::leave_event>(1).empty());
        // What the resume sent is kept in `out` for the next round.
        h.out.erase(std::remove_if(h.out.begin(), h.out.end(),
                                   [&](const core::action& a) {
                                       auto* s = std::get_if<core::send_action>(&a);
                                       return !s || s->to != bob ||
                                              !std::holds_alternative<pc::message_event>(s->ev);
                                   }),
                    h.out.end());
    }
    for (auto& m : h.all<pc::message_event>(bob)) {
        received.push_back(m.seq);
        texts.push_back(m.text);
    }
    REQUIRE(received.size() == sent);
    for (std::uint64_t i = 0; i < sent; ++i) {
        CHECK(received[i] == i + 1);
        CHECK(texts[i] == "t" + std::to_string(i + 1));
    }
    CHECK(h.chat.hits().resumes == 1000);
}

TEST_CASE("chat core resume: lost clients waiting are bounded by max_clients") {
    auto o = harness::defaults();
    o.max_clients = 3;
    harness h(o);
    h.login(1, "watcher");
    h.login(2, "a");
    h.lost(2);
    h.login(3, "b");
    h.lost(3);
    h.login(4, "c");
    h.lost(4); // a third waiting one
    h.clear();
    h.login(5, "d");
    h.lost(5); // over the bound: its leave is announced at once
    const auto leaves = h.all<pc::leave_event>(1);
    REQUIRE(leaves.size() == 1);
    CHECK(leaves[0].nick == "d");
}

TEST_CASE("chat core resume: a live client's ticket is its secret and connection only") {
    // What a parked client keeps (nickname, rooms, cause, deadline) is
    // allocated when it is parked; a live client's ticket holds its
    // secret in place. It was about 340 bytes per client (a 248-byte
    // ticket and a heap block for its secret).
    const double without = parley::test::core_bytes_per_client(harness::defaults(false), 2000);
    const double with = parley::test::core_bytes_per_client(harness::defaults(true), 2000);
    if (without == 0 || with == 0) {
        parley::test::skip("no glibc heap count here (another C library or a sanitizer's allocator)");
        return;
    }
    MESSAGE("resume ticket heap per live client: " << with - without << " bytes");
    CHECK(with - without < 160);
}
