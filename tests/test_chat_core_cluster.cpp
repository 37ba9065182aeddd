// The chat core with a backplane that numbers stored messages
// (core::options::numbered, parley/chat/core/impl/cluster.hpp): the room's
// seq and epoch come from the backplane, and every instance, the sender's
// included, delivers a message when it comes back numbered. No network.
#include <parley/chat/core/core.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace core = parley::chat::core;
namespace pc = parley::chat;
using namespace std::chrono_literals;

namespace {

struct harness {
    harness() : chat(defaults()) {}
    explicit harness(core::options o) : chat(std::move(o)) {}

    static core::options defaults() {
        core::options o;
        o.prompt = "hello";
        o.server_name = "parley/test";
        o.clustered = true;
        o.shared_history = 10;
        o.numbered = true;
        auto engine = std::make_shared<std::mt19937_64>(7);
        o.random = [engine](unsigned char* p, std::size_t n) {
            for (std::size_t i = 0; i < n; ++i)
                p[i] = static_cast<unsigned char>((*engine)());
        };
        return o;
    }

    core::chat chat;
    core::moment now{std::chrono::steady_clock::time_point(1h),
                     std::chrono::system_clock::time_point(1000h)};
    core::actions out;

    void in(core::conn_id id, std::string_view text) { chat.input(id, text, now, out); }
    void from_backplane(std::string_view payload) { chat.cluster_message("i1", payload, now, out); }

    // Logs `id` in as `nick` and answers its claim and its lobby history
    // read (`history`: the read's payloads).
    void login(core::conn_id id, std::string nick, std::vector<std::string> history = {}) {
        chat.connect(id, {"peer" + std::to_string(id), "10.0.0." + std::to_string(id), false}, now,
                     out);
        in(id, nick);
        chat.nick_claimed(id, actions_of<core::cluster_claim>().back().serial,
                          pc::claim_result::claimed, now, out);
        chat.history_read(actions_of<core::cluster_read_history>().back().serial,
                          std::move(history), now, out);
    }

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

std::string numbered(std::string_view nick, std::string_view text, int seq,
                     std::string_view epoch = "e1") {
    return "N\nlobby\n" + std::string(nick) + "\n" + std::string(text) +
           "\n2024-01-01T00:00:00.000Z\n" + std::to_string(seq) + "\n" + std::string(epoch);
}

std::vector<std::uint64_t> seqs(const std::vector<pc::message_event>& ms) {
    std::vector<std::uint64_t> out;
    for (const auto& m : ms)
        out.push_back(m.seq);
    return out;
}

} // namespace

TEST_CASE("chat core cluster: numbered, a message is delivered when it comes back numbered") {
    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    h.clear();
    h.in(1, "hello");
    // Stored, not delivered yet, not even to its sender.
    const auto stores = h.actions_of<core::cluster_store>();
    REQUIRE(stores.size() == 1);
    CHECK(stores[0].room == "lobby");
    CHECK(stores[0].payload.starts_with("S\nlobby\nalice\nhello\n"));
    CHECK(h.all<pc::message_event>(1).empty());
    CHECK(h.all<pc::message_event>(2).empty());

    h.from_backplane(numbered("alice", "hello", 41));
    h.from_backplane(numbered("zed", "from afar", 42));
    h.from_backplane(numbered("zed", "again", 42)); // a repeat: dropped
    for (core::conn_id id : {1, 2}) {
        const auto got = h.all<pc::message_event>(id);
        CHECK(seqs(got) == std::vector<std::uint64_t>{41, 42});
        CHECK(got.at(0).epoch == "e1");
        CHECK(got.at(0).text == "hello");
    }
    h.clear();
    h.in(1, "/list");
    const auto members = h.all<pc::members_event>(1);
    CHECK(members.at(0).seq == 42);
    CHECK(members.at(0).epoch == "e1");

    // A new epoch (the backplane lost the room's history) starts over.
    h.clear();
    h.from_backplane(numbered("zed", "fresh", 1, "e2"));
    CHECK(seqs(h.all<pc::message_event>(2)) == std::vector<std::uint64_t>{1});
    h.clear();
    h.in(2, "/history lobby");
    const auto page = h.all<pc::history_event>(2);
    REQUIRE(page.size() == 1);
    CHECK(page[0].epoch == "e2");
    CHECK(page[0].messages.size() == 1); // the old epoch's are gone
}

TEST_CASE("chat core cluster: a message the backplane could not store is delivered here, under "
          "a local epoch") {
    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    h.from_backplane(numbered("zed", "shared", 5));
    h.clear();
    h.in(1, "during the outage");
    const auto stores = h.actions_of<core::cluster_store>();
    REQUIRE(stores.size() == 1);
    h.chat.store_failed(stores[0].payload, h.now, h.out);
    h.in(1, "still out");
    h.chat.store_failed(h.actions_of<core::cluster_store>().back().payload, h.now, h.out);
    const auto got = h.all<pc::message_event>(2);
    REQUIRE(got.size() == 2);
    CHECK(got[0].text == "during the outage");
    CHECK(seqs(got) == std::vector<std::uint64_t>{1, 2});
    CHECK(got[0].epoch != "e1");
    CHECK_FALSE(got[0].epoch.empty());
    CHECK(got[1].epoch == got[0].epoch);
    CHECK(h.actions_of<core::log_action>().size() == 1); // once per switch
    // Numbered again: the shared epoch is back (a new epoch to the members).
    h.clear();
    h.from_backplane(numbered("zed", "back", 8));
    CHECK(h.all<pc::message_event>(2).at(0).epoch == "e1");
    CHECK(h.all<pc::message_event>(2).at(0).seq == 8);
    // Garbage is ignored.
    h.clear();
    h.chat.store_failed("N\nlobby", h.now, h.out);
    h.chat.store_failed("S\nnowhere\nalice\nx\nt", h.now, h.out);
    CHECK(h.events(2).empty());
}

TEST_CASE("chat core cluster: a joiner takes the room's position from its history read") {
    harness h;
    h.chat.connect(1, {"peer1", "10.0.0.1", false}, h.now, h.out);
    h.in(1, "alice");
    h.chat.nick_claimed(1, h.actions_of<core::cluster_claim>().back().serial,
                        pc::claim_result::claimed, h.now, h.out);
    const auto read = h.actions_of<core::cluster_read_history>().back().serial;
    h.clear();
    // Before the answer: a message in the history (dropped), one said here
    // after the join would come after the answer.
    h.from_backplane(numbered("zed", "b", 8));
    CHECK(h.events(1).empty());
    h.chat.history_read(read,
                        std::vector<std::string>{numbered("zed", "a", 7), numbered("zed", "b", 8)},
                        h.now, h.out);
    h.from_backplane(numbered("alice", "c", 9));
    const auto got = h.events(1);
    REQUIRE(got.size() == 5);
    CHECK(std::get<pc::message_event>(got[0]).seq == 7);
    CHECK(std::get<pc::message_event>(got[0]).epoch == "e1");
    CHECK(std::get<pc::message_event>(got[1]).seq == 8);
    CHECK(std::holds_alternative<pc::join_event>(got[2]));
    CHECK(std::get<pc::members_event>(got[3]).seq == 8);
    CHECK(std::get<pc::members_event>(got[3]).epoch == "e1");
    CHECK(std::get<pc::message_event>(got[4]).seq == 9);

    // An empty room has no epoch until its first message.
    h.clear();
    h.in(1, "/join side");
    h.chat.history_read(h.actions_of<core::cluster_read_history>().back().serial,
                        std::vector<std::string>{}, h.now, h.out);
    const auto side = h.all<pc::members_event>(1);
    REQUIRE(side.size() == 1);
    CHECK(side[0].seq == 0);
    CHECK(side[0].epoch.empty());
}

TEST_CASE("chat core cluster: a resume on the same server recovers numbered messages") {
    harness h;
    h.login(1, "alice");
    h.login(2, "bob");
    h.from_backplane(numbered("zed", "one", 3));
    const auto token = h.all<pc::nick_accepted_event>(1).at(0).resume_token;
    REQUIRE_FALSE(token.empty());
    h.chat.closed(1, core::departure::error, "reset", h.now, h.out);
    h.from_backplane(numbered("bob", "two", 4));
    h.from_backplane(numbered("zed", "three", 5));
    h.clear();
    h.chat.connect(3, {"peer3", "10.0.0.3", false}, h.now, h.out);
    h.in(3, "/resume " + token + " lobby=3@e1");
    CHECK(seqs(h.all<pc::message_event>(3)) == std::vector<std::uint64_t>{4, 5});
    const auto done = h.all<pc::resumed_event>(3);
    REQUIRE(done.size() == 1);
    CHECK(done[0].recovered);
    CHECK(h.all<pc::leave_event>(2).empty());
}

// --- resume on any instance (impl/cluster_resume.hpp) ---------------------------------

namespace {

core::options cross_options() {
    auto o = harness::defaults();
    o.instance = "me";
    o.resume_grace = 10s; // shorter than the idle limit
    return o;
}

// What the backplane's take script gives for a session parked on `instance`.
pc::taken_ticket parked_elsewhere(std::string instance = "there") {
    return {std::move(instance), 9, "bob", "bob\nlobby\nside", "lobby"};
}

} // namespace

TEST_CASE("chat core cluster: a parked session is given to the backplane, and withdrawn when it "
          "expires") {
    harness h(cross_options());
    h.login(1, "alice");
    const auto token = h.all<pc::nick_accepted_event>(1).at(0).resume_token;
    h.clear();
    h.chat.closed(1, core::departure::error, "reset", h.now, h.out);
    const auto parks = h.actions_of<core::cluster_park>();
    REQUIRE(parks.size() == 1);
    CHECK(parks[0].token == token);
    CHECK(parks[0].key == "alice");
    CHECK(parks[0].record == "alice\nlobby");
    CHECK(parks[0].current == "lobby");
    CHECK(parks[0].grace == h.chat.settings().resume_grace);
    h.clear();
    h.now.steady += h.chat.settings().resume_grace + 1ms;
    h.now.wall += h.chat.settings().resume_grace + 1ms;
    h.chat.tick(h.now, h.out);
    const auto unparks = h.actions_of<core::cluster_unpark>();
    REQUIRE(unparks.size() == 1);
    CHECK(unparks[0].token == token);
}

TEST_CASE("chat core cluster: a token not held here is taken from the backplane; unknown is "
          "refused") {
    harness h(cross_options());
    h.chat.connect(1, {"peer1", "10.0.0.1", false}, h.now, h.out);
    h.clear();
    h.in(1, "/resume 9.abcdef lobby=3@e1");
    const auto takes = h.actions_of<core::cluster_take>();
    REQUIRE(takes.size() == 1);
    CHECK(takes[0].token == "9.abcdef");
    h.in(1, "/list"); // held until the answer
    CHECK(h.events(1).empty());
    h.chat.ticket_taken(1, takes[0].serial, true, std::nullopt, h.now, h.out);
    CHECK(h.all<pc::error_event>(1).at(0).code == "resume_failed");
    // The held input ran after: it needs a nickname first.
    CHECK(h.all<pc::error_event>(1).size() == 2);
    h.clear();
    h.in(1, "/resume 9.abcdef");
    h.chat.ticket_taken(1, h.actions_of<core::cluster_take>().at(0).serial, false, std::nullopt,
                        h.now, h.out);
    const auto errors = h.all<pc::error_event>(1);
    REQUIRE(errors.size() == 1);
    CHECK(errors[0].message.find("cannot be checked now") != std::string::npos);
    CHECK(h.chat.hits().resumes_failed == 2);
}

TEST_CASE("chat core cluster: another instance's session resumes here with the missed messages "
          "by seq") {
    harness h(cross_options());
    h.login(2, "carol"); // a local member of the lobby
    h.chat.cluster_message("there", "J\nlobby\nbob\nt", h.now, h.out); // bob, on "there"
    h.chat.cluster_message("there", "J\nside\nbob\nt", h.now, h.out);
    h.from_backplane(numbered("zed", "old", 3));
    h.chat.connect(1, {"peer1", "10.0.0.1", false}, h.now, h.out);
    h.in(1, "/resume 9.abcdef lobby=3@e1 side=0");
    const auto take = h.actions_of<core::cluster_take>().at(0).serial;
    h.clear();
    h.chat.ticket_taken(1, take, true, parked_elsewhere(), h.now, h.out);
    const auto accepted = h.all<pc::nick_accepted_event>(1);
    REQUIRE(accepted.size() == 1);
    CHECK(accepted[0].nick == "bob");
    CHECK_FALSE(accepted[0].resume_token.empty());
    const auto reads = h.actions_of<core::cluster_read_history>();
    REQUIRE(reads.size() == 2);
    CHECK(reads[0].room == "lobby");
    CHECK(reads[1].room == "side");
    // Before the lobby's answer: a message in it (so in the read: dropped),
    // and a private message (held). After it: a live one.
    h.from_backplane(numbered("zed", "missed 2", 5));
    h.chat.cluster_message("there", "P\nzed\nbob\npsst\nt", h.now, h.out);
    CHECK(h.all<pc::message_event>(1).empty());
    h.chat.history_read(reads[0].serial,
                        std::vector<std::string>{numbered("zed", "old", 3),
                                                 numbered("zed", "missed 1", 4),
                                                 numbered("zed", "missed 2", 5)},
                        h.now, h.out);
    h.from_backplane(numbered("zed", "live", 6));
    CHECK(h.all<pc::resumed_event>(1).empty()); // side not read yet
    h.chat.history_read(reads[1].serial, std::vector<std::string>{}, h.now, h.out);
    const auto got = h.events(1);
    std::vector<std::string> kinds;
    for (const auto& e : got)
        kinds.push_back(std::visit([](const auto& v) { return std::string(v.type); }, e));
    CHECK(kinds == std::vector<std::string>{"nick_accepted", "message", "message", "members",
                                            "members", "resumed", "private", "message"});
    const auto ms = h.all<pc::message_event>(1);
    CHECK(seqs(ms) == std::vector<std::uint64_t>{4, 5, 6});
    CHECK(ms[0].id < ms[1].id);
    CHECK(ms[1].id < ms[2].id);
    const auto done = h.all<pc::resumed_event>(1).at(0);
    CHECK(done.recovered);
    REQUIRE(done.rooms.size() == 2);
    CHECK(done.rooms[0].from == 3);
    CHECK(done.rooms[0].seq == 5);
    CHECK(done.rooms[0].epoch == "e1");
    CHECK(done.rooms[1].recovered); // empty room, position 0
    // No join or leave for the others; bob is a member here now.
    CHECK(h.all<pc::join_event>(2).empty());
    CHECK(h.all<pc::leave_event>(2).empty());
    h.clear();
    h.in(1, "hello");
    CHECK(h.actions_of<core::cluster_store>().at(0).payload.starts_with("S\nlobby\nbob\nhello"));
}

TEST_CASE("chat core cluster: a gap older than the shared history is not recovered") {
    harness h(cross_options());
    h.chat.connect(1, {"peer1", "10.0.0.1", false}, h.now, h.out);
    h.in(1, "/resume 9.abcdef lobby=1@e1 side=2@old");
    h.chat.ticket_taken(1, h.actions_of<core::cluster_take>().at(0).serial, true,
                        parked_elsewhere(), h.now, h.out);
    const auto reads = h.actions_of<core::cluster_read_history>();
    REQUIRE(reads.size() == 2);
    h.chat.history_read(reads[0].serial,
                        std::vector<std::string>{numbered("zed", "a", 4), numbered("zed", "b", 5)},
                        h.now, h.out);
    h.chat.history_read(reads[1].serial, std::nullopt, h.now, h.out); // not read
    const auto done = h.all<pc::resumed_event>(1).at(0);
    CHECK_FALSE(done.recovered);
    CHECK_FALSE(done.rooms.at(0).recovered);
    CHECK_FALSE(done.rooms.at(1).recovered);
    CHECK(seqs(h.all<pc::message_event>(1)) == std::vector<std::uint64_t>{4, 5}); // what is kept
}

TEST_CASE("chat core cluster: a session taken by another instance ends here without a leave") {
    harness h(cross_options());
    h.login(1, "alice");
    h.login(2, "bob");
    const auto serial_of = [](const std::string& token) {
        return token.substr(0, token.find('.'));
    };
    const auto token = h.all<pc::nick_accepted_event>(1).at(0).resume_token;
    h.chat.closed(1, core::departure::error, "reset", h.now, h.out);
    h.clear();
    // A T payload for another instance's serial changes nothing here.
    h.chat.cluster_message("there", "T\nelsewhere\n" + serial_of(token) + "\nalice", h.now, h.out);
    h.chat.cluster_message("there", "T\nme\n" + serial_of(token) + "\nalice", h.now, h.out);
    h.now.steady += h.chat.settings().resume_grace + 1ms;
    h.chat.tick(h.now, h.out);
    CHECK(h.all<pc::leave_event>(2).empty());
    CHECK(h.actions_of<core::cluster_unpark>().empty());
    CHECK(h.chat.hits().graces_expired == 0);
    h.clear();
    h.in(2, "/list");
    const auto m = h.all<pc::members_event>(2).at(0);
    CHECK(m.count == 2); // alice, now on instance "there"
    // Its token is no longer good here.
    h.chat.connect(3, {"peer3", "10.0.0.3", false}, h.now, h.out);
    h.in(3, "/resume " + token);
    h.chat.ticket_taken(3, h.actions_of<core::cluster_take>().at(0).serial, true, std::nullopt,
                        h.now, h.out);
    CHECK(h.all<pc::error_event>(3).at(0).code == "resume_failed");
}

TEST_CASE("chat core cluster: a session parked here is taken from the backplane too, then "
          "resumed here") {
    harness h(cross_options());
    h.login(1, "alice");
    h.login(2, "bob");
    const auto token = h.all<pc::nick_accepted_event>(1).at(0).resume_token;
    h.chat.closed(1, core::departure::error, "reset", h.now, h.out);
    h.from_backplane(numbered("bob", "while away", 1));
    h.clear();
    h.chat.connect(3, {"peer3", "10.0.0.3", false}, h.now, h.out);
    h.in(3, "/resume " + token + " lobby=0");
    const auto takes = h.actions_of<core::cluster_take>();
    REQUIRE(takes.size() == 1);
    CHECK(h.all<pc::nick_accepted_event>(3).empty());
    pc::taken_ticket t{"me", std::stoull(token.substr(0, token.find('.'))), "alice",
                       "alice\nlobby", "lobby"};
    h.chat.ticket_taken(3, takes[0].serial, true, t, h.now, h.out);
    CHECK(h.all<pc::nick_accepted_event>(3).at(0).nick == "alice");
    CHECK(seqs(h.all<pc::message_event>(3)) == std::vector<std::uint64_t>{1});
    CHECK(h.all<pc::resumed_event>(3).at(0).recovered);
    CHECK(h.all<pc::leave_event>(2).empty());
}

TEST_CASE("chat core cluster: with the backplane unreachable, a session parked here resumes here") {
    harness h(cross_options());
    h.login(1, "alice");
    const auto token = h.all<pc::nick_accepted_event>(1).at(0).resume_token;
    h.chat.closed(1, core::departure::error, "reset", h.now, h.out);
    h.clear();
    h.chat.connect(3, {"peer3", "10.0.0.3", false}, h.now, h.out);
    h.in(3, "/resume " + token);
    h.chat.ticket_taken(3, h.actions_of<core::cluster_take>().at(0).serial, false, std::nullopt,
                        h.now, h.out);
    CHECK(h.all<pc::nick_accepted_event>(3).at(0).nick == "alice");
    CHECK(h.all<pc::resumed_event>(3).size() == 1);
}
