// The chat core with a history store behind it (options::stored;
// parley/chat/core/core.hpp, impl/storage.hpp), without a network: the
// store_append and store_read actions, restore(), stored_read(), and the
// store refusing or failing.
#include <parley/chat/core/core.hpp>

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
    explicit harness(bool stored = true, std::size_t replay = 3, std::size_t kept = 10)
        : chat(options(stored, replay, kept)) {}
    explicit harness(core::options o) : chat(std::move(o)) {}

    static core::options options(bool stored, std::size_t replay, std::size_t kept) {
        core::options o;
        o.prompt = "hello";
        o.server_name = "parley/test";
        auto engine = std::make_shared<std::mt19937_64>(7);
        o.random = [engine](unsigned char* p, std::size_t n) {
            for (std::size_t i = 0; i < n; ++i)
                p[i] = static_cast<unsigned char>((*engine)());
        };
        o.history_messages = replay;
        o.history_bytes = 64 * 1024;
        o.resume_messages = kept;
        o.history_page = 20;
        o.stored = stored;
        o.messages_per_second = 0; // no flood control
        return o;
    }

    core::chat chat;
    core::moment now{std::chrono::steady_clock::time_point(1h),
                     std::chrono::system_clock::time_point(1000h)};
    core::actions out;

    void in(core::conn_id id, std::string_view text) { chat.input(id, text, now, out); }
    void login(core::conn_id id, std::string nick) {
        chat.connect(id, {"peer" + std::to_string(id), "", false}, now, out);
        in(id, nick);
    }
    void quit(core::conn_id id) { in(id, "/quit"); chat.closed(id, core::departure::closed, "", now, out); }

    template <class A>
    std::vector<A> actions_of() const {
        std::vector<A> got;
        for (const auto& a : out)
            if (auto* x = std::get_if<A>(&a))
                got.push_back(*x);
        return got;
    }
    template <class T>
    std::vector<T> all(core::conn_id id) const {
        std::vector<T> got;
        for (const auto& a : out) {
            const pc::event* ev = nullptr;
            if (auto* s = std::get_if<core::send_action>(&a); s && s->to == id)
                ev = &s->ev;
            if (auto* p = std::get_if<core::publish_action>(&a);
                p && std::find(p->to->begin(), p->to->end(), id) != p->to->end())
                ev = &p->ev;
            if (ev)
                if (auto* t = std::get_if<T>(ev))
                    got.push_back(*t);
        }
        return got;
    }
    bool logged(std::string_view part) const {
        return std::any_of(out.begin(), out.end(), [&](const core::action& a) {
            auto* l = std::get_if<core::log_action>(&a);
            return l && l->line.find(part) != std::string::npos;
        });
    }
};

std::vector<std::uint64_t> seqs(const std::vector<pc::message_event>& ms) {
    std::vector<std::uint64_t> s;
    for (const auto& m : ms)
        s.push_back(m.seq);
    return s;
}

pc::message_event stored_message(std::uint64_t seq, std::string epoch, std::uint64_t id) {
    return {id, "lobby", "old", "m" + std::to_string(seq), "2026-12-07T01:00:00.000Z", seq,
            std::move(epoch)};
}

} // namespace

TEST_CASE("chat core storage: every room message is also a store_append, in seq order") {
    harness h;
    h.login(1, "alice");
    h.in(1, "hello");
    h.in(1, "/msg alice to myself"); // a private message is not stored
    h.in(1, "again");
    const auto appends = h.actions_of<core::store_append>();
    REQUIRE(appends.size() == 2);
    CHECK(appends[0].message.text == "hello");
    CHECK(appends[0].message.seq == 1);
    CHECK(appends[1].message.seq == 2);
    CHECK(appends[0].message.epoch == appends[1].message.epoch);
    CHECK(!appends[0].message.epoch.empty());
    CHECK(appends[0].unix_ms == 1000LL * 3600 * 1000);
    CHECK(h.chat.storing());

    harness plain(false);
    plain.login(1, "alice");
    plain.in(1, "hello");
    CHECK(plain.actions_of<core::store_append>().empty());
    CHECK_FALSE(plain.chat.storing());
}

TEST_CASE("chat core storage: restored rooms continue their seq in their epoch, ids above the stored") {
    harness h;
    std::vector<pc::message_event> tail;
    for (std::uint64_t s = 36; s <= 40; ++s)
        tail.push_back(stored_message(s, "e0", 500 + s));
    h.chat.restore({{"lobby", "e0", 40, tail}, {"quiet", "e1", 7, {}}}, h.out);
    CHECK(h.logged("2 room(s) restored"));
    h.out.clear();
    h.login(1, "alice");
    // The join replay: the last 3 of the stored tail, then the room's position.
    const auto replay = h.all<pc::message_event>(1);
    CHECK(seqs(replay) == std::vector<std::uint64_t>{38, 39, 40});
    CHECK(replay[0].epoch == "e0");
    const auto members = h.all<pc::members_event>(1);
    REQUIRE(members.size() == 1);
    CHECK(members[0].seq == 40);
    CHECK(members[0].epoch == "e0");
    h.out.clear();
    h.in(1, "new");
    const auto m = h.all<pc::message_event>(1);
    REQUIRE(m.size() == 1);
    CHECK(m[0].seq == 41);
    CHECK(m[0].epoch == "e0");
    CHECK(m[0].id > 540);
    h.out.clear();
    h.in(1, "/join quiet");
    CHECK(h.all<pc::members_event>(1).at(0).seq == 7);
    CHECK(h.all<pc::members_event>(1).at(0).epoch == "e1");
}

TEST_CASE("chat core storage: a room with a store outlives its members; without, it starts over") {
    for (bool stored : {true, false}) {
        INFO("stored " << stored);
        harness h(stored);
        h.login(1, "alice");
        for (int i = 0; i < 5; ++i)
            h.in(1, "m" + std::to_string(i));
        const std::string epoch = h.all<pc::message_event>(1).back().epoch;
        h.quit(1);
        h.out.clear();
        h.login(2, "bob");
        const auto members = h.all<pc::members_event>(2).at(0);
        const auto replay = h.all<pc::message_event>(2);
        if (stored) {
            CHECK(members.seq == 5);
            CHECK(members.epoch == epoch);
            CHECK(seqs(replay) == std::vector<std::uint64_t>{3, 4, 5});
        } else {
            CHECK(members.seq == 0);
            CHECK(members.epoch != epoch);
            CHECK(replay.empty());
        }
        // /history of a room with no member: only a store keeps it.
        h.in(2, "/part lobby");
        h.out.clear();
        h.in(2, "/history lobby limit=2");
        if (stored) {
            const auto page = h.all<pc::history_event>(2);
            REQUIRE(page.size() == 1);
            CHECK(seqs(page[0].messages) == std::vector<std::uint64_t>{4, 5});
            CHECK(page[0].more);
        } else {
            CHECK(h.all<pc::error_event>(2).at(0).code == "no_such_room");
        }
    }
}

TEST_CASE("chat core storage: /history beyond what memory keeps reads the store") {
    harness h(true, 3, 10);
    h.login(1, "alice");
    for (int i = 1; i <= 30; ++i)
        h.in(1, "m" + std::to_string(i));
    const std::string epoch = h.all<pc::message_event>(1).back().epoch;
    h.out.clear();
    // Memory holds 21..30: a page of 5 before 28 needs none of the store.
    h.in(1, "/history lobby before=28 limit=5");
    CHECK(h.actions_of<core::store_read>().empty());
    CHECK(seqs(h.all<pc::history_event>(1).at(0).messages) ==
          std::vector<std::uint64_t>{23, 24, 25, 26, 27});
    h.out.clear();
    // 8 before 25: memory has 21..24 only.
    h.in(1, "/history lobby before=25 limit=8");
    CHECK(h.all<pc::history_event>(1).empty());
    auto reads = h.actions_of<core::store_read>();
    REQUIRE(reads.size() == 1);
    CHECK(reads[0].room == "lobby");
    CHECK(reads[0].before == 25);
    CHECK(reads[0].limit == 8);
    h.out.clear();
    core::stored_page page{epoch, 1, {}};
    for (std::uint64_t s = 17; s <= 24; ++s)
        page.messages.push_back(stored_message(s, epoch, s));
    h.chat.stored_read(reads[0].serial, page, h.out);
    auto answer = h.all<pc::history_event>(1);
    REQUIRE(answer.size() == 1);
    CHECK(answer[0].epoch == epoch);
    CHECK(seqs(answer[0].messages).front() == 17);
    CHECK(answer[0].messages.size() == 8);
    CHECK(answer[0].more); // the store holds from 1
    h.out.clear();
    h.chat.stored_read(reads[0].serial, page, h.out); // answered once only
    CHECK(h.out.empty());
    // A failed read is answered from memory.
    h.in(1, "/history lobby before=25 limit=8");
    reads = h.actions_of<core::store_read>();
    REQUIRE(reads.size() == 1);
    h.out.clear();
    h.chat.stored_read(reads[0].serial, std::nullopt, h.out);
    answer = h.all<pc::history_event>(1);
    REQUIRE(answer.size() == 1);
    CHECK(seqs(answer[0].messages) == std::vector<std::uint64_t>{21, 22, 23, 24});
    // The asker gone meanwhile: nothing.
    h.out.clear();
    h.in(1, "/history lobby limit=20");
    reads = h.actions_of<core::store_read>();
    REQUIRE(reads.size() == 1);
    h.chat.closed(1, core::departure::error, "reset", h.now, h.out);
    h.out.clear();
    h.chat.stored_read(reads[0].serial, page, h.out);
    CHECK(h.all<pc::history_event>(1).empty());
    // A room whose whole history is in memory never asks the store.
    harness fresh(true, 3, 10);
    fresh.login(1, "alice");
    fresh.in(1, "one");
    fresh.in(1, "/history lobby limit=20");
    CHECK(fresh.actions_of<core::store_read>().empty());
    CHECK(fresh.all<pc::history_event>(1).at(0).messages.size() == 1);
}

TEST_CASE("chat core storage: a refused message restarts its room's epoch") {
    harness h;
    h.login(1, "alice");
    h.in(1, "/join other");
    h.in(1, "o1");
    h.in(1, "/join lobby");
    h.in(1, "a");
    h.in(1, "b");
    const auto before = h.all<pc::message_event>(1);
    h.out.clear();
    h.chat.store_refused("lobby", h.now, h.out);
    CHECK(h.logged("starts a new epoch"));
    h.in(1, "c");
    h.in(1, "/join other");
    h.in(1, "o2");
    const auto after = h.all<pc::message_event>(1);
    REQUIRE(after.size() == 2);
    CHECK(after[0].seq == 1);
    CHECK(after[0].epoch != before.back().epoch);
    CHECK(after[1].seq == 2); // the other room goes on
    CHECK(after[1].epoch == before.front().epoch);
    CHECK(h.chat.hits().history_epochs_restarted == 1);
}

TEST_CASE("chat core storage: a failed store leaves history in memory, every room in a new epoch") {
    harness h(true, 3, 10);
    h.login(1, "alice");
    for (int i = 1; i <= 30; ++i)
        h.in(1, "m" + std::to_string(i));
    h.in(1, "/join other");
    h.in(1, "/part other"); // a dormant room
    const std::string epoch = h.all<pc::message_event>(1).back().epoch;
    h.out.clear();
    h.chat.store_lost("disk full", h.now, h.out);
    CHECK(h.logged("the store failed (disk full)"));
    CHECK_FALSE(h.chat.storing());
    h.out.clear();
    h.chat.store_lost("again", h.now, h.out); // said once
    CHECK(h.out.empty());
    h.in(1, "after");
    CHECK(h.actions_of<core::store_append>().empty());
    const auto m = h.all<pc::message_event>(1).at(0);
    CHECK(m.seq == 1);
    CHECK(m.epoch != epoch);
    h.out.clear();
    h.in(1, "/history lobby limit=20");
    CHECK(h.actions_of<core::store_read>().empty());
    CHECK(h.all<pc::history_event>(1).at(0).messages.size() == 1);
    h.out.clear();
    h.in(1, "/history other");
    CHECK(h.all<pc::error_event>(1).at(0).code == "no_such_room");
    // Rooms end with their members again.
    h.quit(1);
    h.out.clear();
    h.login(2, "bob");
    CHECK(h.all<pc::members_event>(2).at(0).seq == 0);
}

namespace {

// A resume against a store the test plays: every store_append is kept in
// `archive`, and each resume read is answered from it as the store would.
struct resume_bench : harness {
    explicit resume_bench(std::size_t page = 4, std::size_t bound = 50,
                          std::size_t page_bytes = 256 * 1024)
        : harness(with(page, bound, page_bytes)) {}
    // The harness's options, with the resume's store bounds.
    static core::options with(std::size_t page, std::size_t bound, std::size_t page_bytes) {
        auto o = harness::options(true, 3, 10);
        o.resume_store_page = page;
        o.resume_store_messages = bound;
        o.resume_store_page_bytes = page_bytes;
        return o;
    }
    std::vector<pc::message_event> archive;

    void collect() {
        for (const auto& a : out)
            if (auto* s = std::get_if<core::store_append>(&a))
                archive.push_back(s->message);
    }
    std::string token(core::conn_id id) const {
        const auto accepted = all<pc::nick_accepted_event>(id);
        return accepted.empty() ? std::string() : accepted.back().resume_token;
    }
    // The store's answer to `r`: the archive's messages after r.after.
    core::stored_page page_for(const core::store_read& r) const {
        core::stored_page p{archive.empty() ? "" : archive.back().epoch, 1, {}};
        for (const auto& m : archive)
            if (m.room == r.room && m.seq > r.after && p.messages.size() < r.limit)
                p.messages.push_back(m);
        return p;
    }
    // Answers every resume read until none is asked; returns how many.
    int serve() {
        int reads = 0;
        for (;;) {
            collect();
            std::optional<core::store_read> pending;
            for (const auto& a : out)
                if (auto* r = std::get_if<core::store_read>(&a); r && r->for_client != 0)
                    pending = *r;
            if (!pending)
                return reads;
            ++reads;
            // Keep what was sent so far; drop the read just answered.
            std::erase_if(out, [&](const core::action& a) {
                auto* r = std::get_if<core::store_read>(&a);
                return r && r->serial == pending->serial;
            });
            chat.stored_read(pending->serial, page_for(*pending), now, out);
        }
    }
};

} // namespace

TEST_CASE("chat core storage: a resume reads the gap memory lost from the store, once, in order") {
    resume_bench h(4, 50);
    h.login(1, "alice");
    h.login(2, "bob");
    for (int i = 1; i <= 3; ++i)
        h.in(1, "m" + std::to_string(i));
    const std::string token = h.token(2);
    const std::string epoch = h.all<pc::message_event>(2).back().epoch;
    h.chat.closed(2, core::departure::error, "reset", h.now, h.out); // parked
    for (int i = 4; i <= 30; ++i)
        h.in(1, "m" + std::to_string(i));
    h.collect();
    h.out.clear();
    h.chat.connect(3, {"peer3", "", false}, h.now, h.out);
    h.in(3, "/resume " + token + " lobby=3@" + epoch);
    // Memory holds 21..30: the store is asked for what follows 3, a page.
    auto reads = h.actions_of<core::store_read>();
    REQUIRE(reads.size() == 1);
    CHECK(reads[0].after == 3);
    CHECK(reads[0].limit == 4);
    CHECK(reads[0].for_client == 3);
    CHECK(h.all<pc::message_event>(3).empty());
    CHECK(h.all<pc::resumed_event>(3).empty());
    // Meanwhile the room talks (not to bob yet) and bob says something (held).
    h.in(1, "m31");
    h.in(3, "back");
    CHECK(h.all<pc::message_event>(3).empty());
    const int served = h.serve();
    CHECK(served == 5); // after 3, 7, 11, 15, 19; memory from 24 (it holds 22..31)
    auto got = h.all<pc::message_event>(3);
    std::vector<std::uint64_t> want;
    for (std::uint64_t s = 4; s <= 31; ++s)
        want.push_back(s);
    want.push_back(32); // its own "back", replayed after the resume
    CHECK(seqs(got) == want);
    CHECK(got.back().text == "back");
    const auto done = h.all<pc::resumed_event>(3);
    REQUIRE(done.size() == 1);
    CHECK(done[0].recovered);
    REQUIRE(done[0].rooms.size() == 1);
    CHECK(done[0].rooms[0].from == 3);
    CHECK(done[0].rooms[0].seq == 31);
    CHECK(h.chat.hits().resume_store_reads == 5);
    CHECK(h.chat.hits().resume_store_messages == 20);
    // bob is a member again: the next message reaches him, once.
    h.out.clear();
    h.in(1, "m33");
    CHECK(seqs(h.all<pc::message_event>(3)) == std::vector<std::uint64_t>{33});
}

TEST_CASE("chat core storage: a resume beyond the bound, a failed read, a close while reading") {
    SUBCASE("a gap over resume_store_messages: memory only, not recovered") {
        resume_bench h(4, 20);
        h.login(1, "alice");
        h.login(2, "bob");
        const std::string token = h.token(2);
        h.chat.closed(2, core::departure::error, "reset", h.now, h.out);
        for (int i = 1; i <= 30; ++i)
            h.in(1, "m" + std::to_string(i));
        h.out.clear();
        h.chat.connect(3, {"peer3", "", false}, h.now, h.out);
        h.in(3, "/resume " + token + " lobby=0");
        CHECK(h.actions_of<core::store_read>().empty());
        CHECK(seqs(h.all<pc::message_event>(3)).front() == 21);
        CHECK_FALSE(h.all<pc::resumed_event>(3).at(0).recovered);
    }
    SUBCASE("a read that fails: memory from there, not recovered") {
        resume_bench h(4, 50);
        h.login(1, "alice");
        h.login(2, "bob");
        const std::string token = h.token(2);
        h.chat.closed(2, core::departure::error, "reset", h.now, h.out);
        for (int i = 1; i <= 30; ++i)
            h.in(1, "m" + std::to_string(i));
        h.out.clear();
        h.chat.connect(3, {"peer3", "", false}, h.now, h.out);
        h.in(3, "/resume " + token + " lobby=0");
        const auto reads = h.actions_of<core::store_read>();
        REQUIRE(reads.size() == 1);
        h.chat.stored_read(reads[0].serial, std::nullopt, h.now, h.out);
        CHECK(seqs(h.all<pc::message_event>(3)).front() == 21);
        CHECK(h.all<pc::message_event>(3).size() == 10);
        CHECK_FALSE(h.all<pc::resumed_event>(3).at(0).recovered);
    }
    SUBCASE("the connection lost while the store is read: parked again, the late answer ignored") {
        resume_bench h(4, 50);
        h.login(1, "alice");
        h.login(2, "bob");
        const std::string token = h.token(2);
        h.chat.closed(2, core::departure::error, "reset", h.now, h.out);
        for (int i = 1; i <= 30; ++i)
            h.in(1, "m" + std::to_string(i));
        h.collect();
        h.out.clear();
        h.chat.connect(3, {"peer3", "", false}, h.now, h.out);
        h.in(3, "/resume " + token + " lobby=0");
        const std::string token2 = h.token(3);
        const auto reads = h.actions_of<core::store_read>();
        REQUIRE(reads.size() == 1);
        h.chat.closed(3, core::departure::error, "reset", h.now, h.out);
        CHECK(h.all<pc::leave_event>(1).empty()); // parked, no leave
        h.out.clear();
        h.chat.stored_read(reads[0].serial, h.page_for(reads[0]), h.now, h.out);
        CHECK(h.out.empty());
        // And resumed again from the new token: the whole gap, from the store.
        h.chat.connect(4, {"peer4", "", false}, h.now, h.out);
        h.in(4, "/resume " + token2 + " lobby=0");
        h.serve();
        CHECK(h.all<pc::message_event>(4).size() == 30);
        CHECK(h.all<pc::resumed_event>(4).at(0).recovered);
    }
    SUBCASE("one answer gives at most resume_store_page_bytes; the rest is read again") {
        resume_bench h(8, 50, 400); // two 100-byte messages an answer (history_size 198)
        h.login(1, "alice");
        h.login(2, "bob");
        const std::string token = h.token(2);
        h.chat.closed(2, core::departure::error, "reset", h.now, h.out);
        for (int i = 1; i <= 30; ++i)
            h.in(1, std::string(100, 'x'));
        h.collect();
        h.out.clear();
        h.chat.connect(3, {"peer3", "", false}, h.now, h.out);
        h.in(3, "/resume " + token + " lobby=0");
        // Each answer of 8 gives 2 (the bytes), the next read starts after them.
        CHECK(h.serve() == 10); // 1..20 two at a time; memory has 21..30
        CHECK(h.all<pc::message_event>(3).size() == 30);
        CHECK(h.all<pc::resumed_event>(3).at(0).recovered);
    }
}
