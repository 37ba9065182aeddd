// One of two translation units that include every public header: a
// function defined in a header without `inline` (or a variable without
// `inline`) is then defined twice and the link fails; a `static` where
// `inline` was meant gives each unit its own copy, which the address
// comparisons below catch (fmt's ranges-odr-test does the same).
#include <parley/parley.hpp>

// The umbrella holds the core only; name every public header too, the
// clients and the chat server included, so this test covers them whatever
// the umbrella holds.
#include <parley/net/accept_backoff.hpp>
#include <parley/client/async_client.hpp>
#include <parley/client/blocking_client.hpp>
#include <parley/chat/backplane.hpp>
#include <parley/chat/json.hpp>
#include <parley/chat/nickname.hpp>
#include <parley/chat/protocol.hpp>
#include <parley/chat/server.hpp>
#include <parley/net/connect.hpp>
#include <parley/codec/utf8_validator.hpp>
#include <parley/constant_time.hpp>
#include <parley/error.hpp>
#include <parley/codec/frame_batch.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/stream/framed_stream.hpp>
#include <parley/hub/hub.hpp>
#include <parley/hub/input_decoder.hpp>
#include <parley/codec/line_codec.hpp>
#include <parley/hub/message.hpp>
#include <parley/hub/outbound_budget.hpp>
#include <parley/hub/outbound_queue.hpp>
#include <parley/hub/session.hpp>
#include <parley/hub/session_base.hpp>
#include <parley/net/socket.hpp>
#include <parley/codec/utf8.hpp>
#include <parley/version.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/error.hpp>
#include <parley/websocket/frame.hpp>
#include <parley/websocket/frame_writer.hpp>
#include <parley/websocket/message_reader.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/http/response.hpp>
#include <parley/http/response_parser.hpp>
#include <parley/websocket/handshake.hpp>
#include <parley/websocket/permessage_deflate.hpp>
#include <parley/websocket/stream.hpp>
#ifdef PARLEY_HAVE_HIREDIS // the Redis backplane needs hiredis
#include <parley/chat/redis_backplane.hpp>
#include <parley/redis/redis_connection.hpp>
#endif
#if PARLEY_HAVE_ZLIB // permessage-deflate's compressor needs zlib
#include <parley/websocket/deflate.hpp>
#endif
#ifdef PARLEY_HAVE_SQLITE // the history store needs SQLite
#include <parley/chat/history/sqlite_store.hpp>
#endif
#if PARLEY_HAVE_TLS // the TLS headers need OpenSSL, as the TLS tests do
#include <parley/chat/tls.hpp>
#include <parley/net/tls.hpp>
#endif

#include <doctest/doctest.h>

#include <asio/ip/tcp.hpp>

#include <string>
#include <string_view>
#include <system_error>

// What a translation unit sees of the header-defined objects that must
// exist once per program. Declared identically in test_odr_a.cpp and
// test_odr_b.cpp.
struct parley_odr_addresses {
    const std::error_category* category;
    const parley::frame_format* default_format;
    std::string description;
};

parley_odr_addresses parley_odr_a();
parley_odr_addresses parley_odr_b();

parley_odr_addresses parley_odr_a() {
    // Instantiate a little of everything, so template code is compiled here
    // as well as in test_odr_b.cpp.
    parley::frame_decoder<> frames;
    parley::line_decoder lines;
    std::error_code ec;
    frames.feed(std::string_view("\0\0\0\x01" "a", 5));
    auto frame = frames.next(ec);
    lines.feed(std::string_view("hi\n"));
    auto line = lines.next(ec);
    asio::io_context io;
    parley::framed_stream<asio::ip::tcp::socket> stream(io);
    return {&parley::error_category(), &parley::default_frame_format,
            std::string(PARLEY_VERSION) + (frame ? "f" : "") + (line ? "l" : "") +
                (parley::is_valid_utf8("\xE8\xBF\x9E") ? "u" : "") +
                std::to_string(stream.read_chunk_size())};
}

TEST_CASE("odr: every public header links into two translation units") {
    const parley_odr_addresses a = parley_odr_a();
    const parley_odr_addresses b = parley_odr_b();
    CHECK(a.description == b.description);
    CHECK(a.description == PARLEY_VERSION "flu32768");
    // One error category and one default format for the whole program.
    CHECK(a.category == b.category);
    CHECK(a.default_format == b.default_format);
}
