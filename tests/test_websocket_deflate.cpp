// Tests for include/parley/websocket/deflate.hpp: round trips with and
// without context takeover, RFC 7692's examples, one compressed broadcast
// for many inflaters, the inflated-size limit against a zip bomb, and
// corrupt data. Skipped (reported as such) when built without zlib.
#if PARLEY_HAVE_ZLIB
#include <parley/websocket/deflate.hpp>

#include <doctest/doctest.h>

#include <zlib.h>

#include <cstddef>
#include <ostream> // doctest prints std::error_code through it
#include <random>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

namespace ws = parley::websocket;

std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (const char c : bytes) {
        const auto b = static_cast<unsigned char>(c);
        out += digits[b >> 4];
        out += digits[b & 15];
    }
    return out;
}

std::string inflate_all(ws::inflater& in, std::string_view compressed, std::error_code& ec) {
    std::string out;
    in.feed(compressed, out, ec);
    if (!ec)
        in.finish(out, ec);
    return out;
}

// `size` zero bytes as one permessage-deflate message, compressed in a
// streaming way (the whole message never exists).
std::string compressed_zeros(std::size_t size) {
    z_stream s{};
    REQUIRE(deflateInit2(&s, 9, Z_DEFLATED, -15, 9, Z_DEFAULT_STRATEGY) == Z_OK);
    const std::string zeros(1 << 20, '\0');
    std::string out;
    std::vector<Bytef> buffer(1 << 16);
    for (std::size_t done = 0; done < size;) {
        const std::size_t n = std::min(zeros.size(), size - done);
        done += n;
        s.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(zeros.data()));
        s.avail_in = static_cast<uInt>(n);
        do {
            s.next_out = buffer.data();
            s.avail_out = static_cast<uInt>(buffer.size());
            deflate(&s, done == size ? Z_SYNC_FLUSH : Z_NO_FLUSH);
            out.append(reinterpret_cast<const char*>(buffer.data()), buffer.size() - s.avail_out);
        } while (s.avail_out == 0);
    }
    deflateEnd(&s);
    REQUIRE(out.size() > 4);
    CHECK(out.substr(out.size() - 4) == std::string("\x00\x00\xff\xff", 4));
    out.resize(out.size() - 4);
    return out;
}

} // namespace

TEST_CASE("permessage-deflate codec: RFC 7692's examples") {
    // 7.2.3.1: "Hello" compressed; 7.2.3.2: again, with the context taken over.
    ws::deflater d(false);
    const std::string first = d.compress("Hello");
    CHECK(hex(first) == "f248cdc9c90700");
    CHECK(hex(d.compress("Hello")) == "f200110000");
    ws::inflater i(1024, false);
    std::error_code ec;
    CHECK(inflate_all(i, first, ec) == "Hello");
    CHECK_FALSE(ec);
    CHECK(inflate_all(i, std::string("\xf2\x00\x11\x00\x00", 5), ec) == "Hello");
    CHECK_FALSE(ec);
    // 7.2.3.3: an uncompressed (stored) block; 7.2.3.4: a block with BFINAL.
    ws::inflater j(1024, false);
    CHECK(inflate_all(j, std::string("\x00\x05\x00\xfa\xff" "Hello" "\x00", 11), ec) == "Hello");
    CHECK_FALSE(ec);
    CHECK(inflate_all(j, std::string("\xf3\x48\xcd\xc9\xc9\x07\x00", 7), ec) == "Hello");
    CHECK_FALSE(ec);
    CHECK(inflate_all(j, first, ec) == "Hello"); // the next message after a final block
    CHECK_FALSE(ec);
    // 7.2.3.6: an empty message.
    CHECK(hex(ws::deflater().compress("")) == "00");
    // Also right after another message with the context kept, where zlib
    // itself writes nothing.
    CHECK(hex(d.compress("")) == "00");
    CHECK(inflate_all(j, std::string(1, '\0'), ec).empty());
    CHECK_FALSE(ec);
}

TEST_CASE("permessage-deflate codec: round trips, any split of the compressed bytes") {
    std::mt19937 random(7);
    std::vector<std::string> messages = {"", "a", "Hello, Hello, Hello, Hello", std::string(100000, 'x'),
                                         "\xE8\xBF\x9E\xE6\x8E\xA5\xE6\x88\x90\xE5\x8A\x9F"};
    std::string noise(50000, '\0');
    for (char& c : noise)
        c = static_cast<char>(random());
    messages.push_back(noise);
    for (const bool takeover : {false, true}) {
        ws::deflater d(!takeover);
        ws::inflater in(1 << 20, !takeover);
        for (int round = 0; round < 2; ++round)
            for (const std::string& m : messages) {
                const std::string c = d.compress(m);
                CHECK((c.size() < 4 || c.substr(c.size() - 4) != std::string("\x00\x00\xff\xff", 4)));
                // Fed in frame-sized pieces.
                std::string out;
                std::error_code ec;
                const std::size_t piece = 1 + random() % 300;
                for (std::size_t at = 0; at < c.size() && !ec; at += piece)
                    in.feed(std::string_view(c).substr(at, piece), out, ec);
                if (!ec)
                    in.finish(out, ec);
                CHECK_FALSE(ec);
                CHECK_MESSAGE((out == m), "message of ", m.size(), " bytes, takeover ", takeover, ", round ", round);
            }
    }
    // Compressible text shrinks; noise may grow a little, and the caller may
    // then send it uncompressed.
    CHECK(ws::deflater().compress(std::string(100000, 'x')).size() < 1000);
}

TEST_CASE("permessage-deflate codec: one compressed broadcast serves every recipient") {
    ws::deflater broadcaster; // server_no_context_takeover: each message alone
    const std::string a = broadcaster.compress("{\"type\":\"message\",\"text\":\"hi all\"}");
    const std::string b = broadcaster.compress("{\"type\":\"message\",\"text\":\"hi all\"}");
    CHECK(a == b); // no context: the same message gives the same bytes
    // Recipients with their own inflaters, some keeping context, all read it.
    for (const bool client_nct : {false, true}) {
        ws::inflater recipient(4096, client_nct);
        for (int i = 0; i < 3; ++i) {
            std::error_code ec;
            CHECK(inflate_all(recipient, a, ec) == "{\"type\":\"message\",\"text\":\"hi all\"}");
            CHECK_FALSE(ec);
        }
    }
}

TEST_CASE("permessage-deflate codec: a zip bomb stops at the limit") {
    const std::size_t limit = 1 << 20; // 1 MiB
    const std::string bomb = compressed_zeros(std::size_t{256} << 20); // 256 MiB of zeros
    CHECK(bomb.size() < 300 * 1024); // about 1,000 to 1
    ws::inflater in(limit);
    std::string out;
    std::error_code ec;
    std::size_t fed = 0;
    // Fed as 4 KiB frames: it stops at the frame that passes the limit.
    while (!ec && fed < bomb.size()) {
        in.feed(std::string_view(bomb).substr(fed, 4096), out, ec);
        fed += 4096;
    }
    CHECK(ec == ws::deflate_error::message_too_big);
    CHECK(ws::deflate_close_code(ws::deflate_error::message_too_big) == 1009);
    CHECK(out.size() == limit);        // never more than the limit appended
    CHECK(out.capacity() <= 2 * limit); // nor held
    CHECK(fed < 8 * 4096);             // and stopped early, not at the end of the input
    // Whole, in one feed: the same.
    ws::inflater whole(limit);
    std::string all;
    whole.feed(bomb, all, ec);
    CHECK(ec == ws::deflate_error::message_too_big);
    CHECK(all.size() == limit);
    CHECK(ec.message() == "compressed message inflates past the message size limit");
}

TEST_CASE("permessage-deflate codec: the limit, exactly and one byte over") {
    const std::size_t limit = 100000;
    ws::deflater d;
    std::error_code ec;
    ws::inflater exact(limit);
    CHECK(inflate_all(exact, d.compress(std::string(limit, 'z')), ec).size() == limit);
    CHECK_FALSE(ec);
    ws::inflater over(limit);
    const std::string out = inflate_all(over, d.compress(std::string(limit + 1, 'z')), ec);
    CHECK(ec == ws::deflate_error::message_too_big);
    CHECK(out.size() == limit);
    // The limit counts per message: two messages of the limit each are fine.
    ws::inflater twice(limit);
    for (int i = 0; i < 2; ++i) {
        CHECK(inflate_all(twice, d.compress(std::string(limit, 'q')), ec).size() == limit);
        CHECK_FALSE(ec);
    }
}

TEST_CASE("permessage-deflate codec: corrupt data is refused") {
    std::error_code ec;
    ws::inflater reserved(1024);
    inflate_all(reserved, std::string("\xff\xff\xff\xff", 4), ec); // block type 3 is reserved
    CHECK(ec == ws::deflate_error::corrupt_data);
    CHECK(ws::deflate_close_code(ws::deflate_error::corrupt_data) == 1007);
    ws::inflater stored(1024);
    inflate_all(stored, std::string("\x00\x05\x00\x00\x00" "Hello", 10), ec); // LEN and NLEN disagree
    CHECK(ec == ws::deflate_error::corrupt_data);
    ws::inflater trailing(1024);
    inflate_all(trailing, std::string("\xf3\x48\xcd\xc9\xc9\x07\x00" "junk", 11), ec); // after a final block
    CHECK(ec == ws::deflate_error::corrupt_data);
    CHECK(std::string(ec.category().name()) == "parley.websocket.deflate");
    CHECK_THROWS_AS(ws::deflater(true, 8), std::invalid_argument);
}

#else
#include "support/skip.hpp"

#include <doctest/doctest.h>

TEST_CASE("permessage-deflate codec: skipped, parley was built without zlib (Debian: apt-get install zlib1g-dev)") {
    parley::test::skip("zlib was not found at configure time (Debian: apt-get install zlib1g-dev)");
}
#endif
