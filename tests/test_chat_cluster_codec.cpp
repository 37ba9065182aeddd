// The payloads between chat servers (parley/chat/cluster/codec.hpp).
#include <parley/chat/cluster/codec.hpp>

#include <doctest/doctest.h>

namespace cl = parley::chat::cluster;

TEST_CASE("cluster codec: every kind round-trips") {
    const std::vector<cl::payload> all{
        cl::message_payload{"lobby", "alice", "hello there", "2024-05-01T12:34:56.789Z"},
        cl::stored_payload{"lobby", "alice", "kept", "2024-05-01T12:34:56.789Z"},
        cl::numbered_payload{"lobby", "alice", "kept", "t", "42", "9f2c61d0a4b7e3"},
        cl::join_payload{"side", "bob", "t"},
        cl::leave_payload{"side", "bob", "quit", "t"},
        cl::rename_payload{"bob", "robert", "t"},
        cl::private_payload{"alice", "bob", "psst", "t"},
        cl::quit_payload{"bob"},
        cl::taken_payload{"0123456789abcdef", "12", "bob"},
    };
    for (const auto& p : all) {
        const std::string text = cl::encode(p);
        INFO(text);
        auto back = cl::decode(text);
        REQUIRE(back);
        CHECK(*back == p);
    }
    CHECK(cl::encode(cl::join_payload{"side", "bob", "t"}) == "J\nside\nbob\nt");
}

TEST_CASE("cluster codec: wrong field counts, unknown kinds and bad fields are refused") {
    CHECK_FALSE(cl::decode(""));
    CHECK_FALSE(cl::decode("M"));
    CHECK_FALSE(cl::decode("M\nlobby\nalice\ntext"));            // a field short
    CHECK_FALSE(cl::decode("J\nlobby\nalice\nt\nextra"));        // a field over
    CHECK_FALSE(cl::decode("Z\nlobby"));                         // unknown kind
    CHECK_FALSE(cl::decode("MM\nlobby\nalice\ntext\nt"));        // kind of two letters
    CHECK_FALSE(cl::decode("J\n#Lobby\nalice\nt"));              // room not canonical
    CHECK_FALSE(cl::decode("J\nlobby\nal ice\nt"));              // bad nickname
    CHECK_FALSE(cl::decode("M\nlobby\nalice\n\nt"));             // empty text
    CHECK_FALSE(cl::decode("M\nlobby\nalice\nhi\n" + std::string(65, 't'))); // time too long
    CHECK_FALSE(cl::decode("M\nlobby\nalice\n\xff\nt"));         // not UTF-8
    CHECK_FALSE(cl::decode("Q\nalice\n"));                       // empty trailing field
}

TEST_CASE("cluster codec: a numbered message's seq and epoch are checked") {
    const std::string head = "N\nlobby\nalice\nhi\nt\n";
    CHECK(cl::encode(cl::numbered_payload{"lobby", "alice", "hi", "t", "7", "ab-1"}) ==
          head + "7\nab-1");
    CHECK(cl::decode(head + "9223372036854775807\nabc"));
    CHECK_FALSE(cl::decode(head + "0\nabc"));                    // seq starts at 1
    CHECK_FALSE(cl::decode(head + "07\nabc"));                   // not canonical
    CHECK_FALSE(cl::decode(head + "-7\nabc"));
    CHECK_FALSE(cl::decode(head + "9223372036854775808\nabc"));  // over 2^63-1
    CHECK_FALSE(cl::decode(head + "12345678901234567890\nabc"));
    CHECK_FALSE(cl::decode(head + "7\n"));                        // no epoch
    CHECK_FALSE(cl::decode(head + "7\nABC"));                     // epoch: lower case
    CHECK_FALSE(cl::decode(head + "7\n" + std::string(33, 'a'))); // epoch too long
    CHECK_FALSE(cl::decode(head + "7"));                           // a field short
    CHECK_FALSE(cl::decode(head + "7\nabc\nx"));                  // a field over
    CHECK(cl::decode("T\n0123456789abcdef\n12\nbob"));
    CHECK_FALSE(cl::decode("T\n0123456789ABCDEF\n12\nbob"));     // instance: lower case
    CHECK_FALSE(cl::decode("T\n0123456789abcdef\n012\nbob"));
    CHECK_FALSE(cl::decode("T\n0123456789abcdef\n12\nb b"));
}

TEST_CASE("cluster codec: presence values") {
    CHECK(cl::encode_presence("alice", {"lobby", "side"}) == "alice\nlobby\nside");
    auto p = cl::decode_presence("alice\nlobby\nside");
    REQUIRE(p);
    CHECK(p->nick == "alice");
    CHECK(p->rooms == std::vector<std::string>{"lobby", "side"});
    CHECK(cl::decode_presence("alice")->rooms.empty());
    CHECK_FALSE(cl::decode_presence(""));
    CHECK_FALSE(cl::decode_presence("alice\nLobby"));
    std::string many = "alice";
    for (int i = 0; i < 100; ++i)
        many += "\nroom" + std::to_string(i);
    CHECK(cl::decode_presence(many)->rooms.size() == cl::max_presence_rooms + 1);
}
