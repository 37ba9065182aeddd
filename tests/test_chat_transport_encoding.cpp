// The chat transports' event encoders (parley/chat/transport/encoding.hpp).
#include <parley/chat/transport/encoding.hpp>

#include <doctest/doctest.h>

#if PARLEY_HAVE_ZLIB
#include <parley/websocket/deflate.hpp>
#endif

#include <string>

namespace pc = parley::chat;
namespace tr = parley::chat::transport;

namespace {
std::string bytes_of(const parley::message_ptr& m) {
    return std::string(reinterpret_cast<const char*>(m->data()), m->size());
}
} // namespace

TEST_CASE("transport encoding: framed is a JSON frame, line is a text line") {
    const pc::event e = pc::join_event{"lobby", "alice", "2024-05-01T12:34:56.789Z"};
    const std::string json = pc::to_json(e);
    const std::string framed = bytes_of(tr::encode(e, tr::encoding::framed));
    REQUIRE(framed.size() == json.size() + 4);
    CHECK(static_cast<unsigned char>(framed[3]) == json.size());
    CHECK(framed.substr(4) == json);
    CHECK(bytes_of(tr::encode(e, tr::encoding::line)) == "* alice joined lobby\n");
}

TEST_CASE("transport encoding: lazy encodings encode each form once, on first use") {
    const pc::event e = pc::notice_event{"info", "hi"};
    tr::lazy_encodings enc(e);
    const auto& a = enc.get(1);
    const auto& b = enc.get(1);
    CHECK(a.get() == b.get());
    CHECK(enc.get(0).get() != a.get());
    CHECK(enc.get(7).get() == enc.get(0).get()); // an unknown encoding falls back to framed
}

TEST_CASE("transport encoding: last words are the event, and for a WebSocket a close frame after it") {
    const pc::event e = pc::notice_event{"goodbye", "bye"};
    const auto framed = tr::encode(e, tr::encoding::framed);
    CHECK(tr::last_words(tr::encoding::framed, framed).get() == framed.get());
    CHECK_FALSE(tr::last_words(tr::encoding::line, parley::message_ptr{}));
    const auto ws = tr::encode(e, tr::encoding::websocket);
    const std::string both = bytes_of(tr::last_words(tr::encoding::websocket, ws));
    CHECK(both == bytes_of(ws) + std::string("\x88\x02\x03\xe8", 4));
    CHECK(tr::last_words(tr::encoding::websocket, ws)->frame_count() == 2);
    CHECK(bytes_of(tr::last_words(tr::encoding::websocket, parley::message_ptr{})) == std::string("\x88\x02\x03\xe8", 4));
}

TEST_CASE("transport encoding: websocket is the JSON in one unmasked text frame") {
    const pc::event e = pc::join_event{"lobby", "alice", "2024-05-01T12:34:56.789Z"};
    const std::string json = pc::to_json(e);
    const std::string frame = bytes_of(tr::encode(e, tr::encoding::websocket));
    REQUIRE(json.size() < 126);
    REQUIRE(frame.size() == json.size() + 2);
    CHECK(static_cast<unsigned char>(frame[0]) == 0x81); // FIN, text
    CHECK(static_cast<unsigned char>(frame[1]) == json.size()); // no mask bit, 7-bit length
    CHECK(frame.substr(2) == json);
    // Longer events take the 16-bit length form.
    const pc::event long_one = pc::notice_event{"info", std::string(300, 'x')};
    const std::string big = bytes_of(tr::encode(long_one, tr::encoding::websocket));
    CHECK(static_cast<unsigned char>(big[1]) == 126);
    CHECK(big.substr(4) == pc::to_json(long_one));
}

#if PARLEY_HAVE_ZLIB
TEST_CASE("websocket deflate: the compressed WebSocket encoding is one RSV1 frame, made once for all") {
    pc::message_event m;
    m.id = 7;
    m.room = "lobby";
    m.from = "alice";
    m.text = std::string(300, 'a') + " hello";
    m.time = "2024-05-01T12:34:56.789Z";
    const pc::event e = m;
    tr::lazy_encodings enc(e);
    const auto& plain = enc.get(static_cast<std::size_t>(tr::encoding::websocket));
    const auto& z = enc.get(static_cast<std::size_t>(tr::encoding::websocket_deflate));
    CHECK(enc.get(static_cast<std::size_t>(tr::encoding::websocket_deflate)).get() == z.get()); // shared
    const std::string frame = bytes_of(z);
    REQUIRE(frame.size() > 2);
    CHECK(static_cast<unsigned char>(frame[0]) == 0xC1); // FIN, RSV1, text
    const std::size_t len = static_cast<unsigned char>(frame[1]);
    REQUIRE(len < 126); // 300 a's compress well
    CHECK(frame.size() == 2 + len);
    CHECK(frame.size() < bytes_of(plain).size());
    // Every recipient inflates it alone (no context takeover), as often as it
    // is sent: the same bytes inflate to the same JSON.
    for (int i = 0; i < 2; ++i) {
        parley::websocket::inflater in(1 << 20, true);
        std::string json;
        std::error_code ec;
        in.feed(frame.substr(2), json, ec);
        REQUIRE_FALSE(ec);
        in.finish(json, ec);
        REQUIRE_FALSE(ec);
        CHECK(json == pc::to_json(e));
    }
    // Its last words: the compressed event, then an uncompressed close.
    const std::string last = bytes_of(tr::last_words(tr::encoding::websocket_deflate, z));
    CHECK(last == frame + std::string("\x88\x02\x03\xe8", 4));
}
#endif
