// Tests for include/parley/chat/history/record.hpp. Included first: the
// header must stand on its own.
#include <parley/chat/history/record.hpp>

#include <doctest/doctest.h>

using parley::chat::history::may_follow;
using parley::chat::history::record;
using parley::chat::history::room_state;

namespace {

record rec(std::uint64_t seq, std::string epoch = "e1", std::string room = "lobby") {
    record r;
    r.room = std::move(room);
    r.seq = seq;
    r.epoch = std::move(epoch);
    return r;
}

} // namespace

TEST_CASE("history record: within one epoch only the next seq may follow") {
    const room_state st{"lobby", "e1", 41};
    CHECK(may_follow(st, rec(42)));
    CHECK_FALSE(may_follow(st, rec(41))); // a duplicate
    CHECK_FALSE(may_follow(st, rec(43))); // a gap
    CHECK_FALSE(may_follow(st, rec(1)));  // a restart without a new epoch
}

TEST_CASE("history record: a new epoch or a new room starts anywhere from 1") {
    CHECK(may_follow(room_state{"lobby", "e1", 41}, rec(1, "e2")));
    CHECK(may_follow(room_state{"lobby", "e1", 41}, rec(7, "e2")));
    CHECK(may_follow(room_state{}, rec(1)));
}

TEST_CASE("history record: seq 0, an empty room or an empty epoch never follow") {
    CHECK_FALSE(may_follow(room_state{}, rec(0)));
    CHECK_FALSE(may_follow(room_state{"lobby", "e1", 0}, rec(0)));
    CHECK_FALSE(may_follow(room_state{}, rec(1, "")));
    CHECK_FALSE(may_follow(room_state{}, rec(1, "e1", "")));
}
