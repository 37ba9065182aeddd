// The second of two translation units that include every public header;
// test_odr_a.cpp explains why and holds the test case.
#include <parley/parley.hpp>

// Every public header by name, as in test_odr_a.cpp, but by the flat paths
// of earlier releases (<parley/hub.hpp> for <parley/hub/hub.hpp>): this unit
// also proves that each of those forwarding headers still works.
#include <parley/accept_backoff.hpp>
#include <parley/async_client.hpp>
#include <parley/blocking_client.hpp>
#include <parley/chat/backplane.hpp>
#include <parley/chat/json.hpp>
#include <parley/chat/nickname.hpp>
#include <parley/chat/protocol.hpp>
#include <parley/chat/server.hpp>
#include <parley/codec/utf8_validator.hpp>
#include <parley/connect.hpp>
#include <parley/constant_time.hpp>
#include <parley/error.hpp>
#include <parley/frame_batch.hpp>
#include <parley/frame_codec.hpp>
#include <parley/framed_stream.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/http/response.hpp>
#include <parley/http/response_parser.hpp>
#include <parley/hub.hpp>
#include <parley/line_codec.hpp>
#include <parley/message.hpp>
#include <parley/outbound_budget.hpp>
#include <parley/outbound_queue.hpp>
#include <parley/session.hpp>
#include <parley/session_base.hpp>
#include <parley/socket.hpp>
#include <parley/utf8.hpp>
#include <parley/version.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/error.hpp>
#include <parley/websocket/frame.hpp>
#include <parley/websocket/frame_writer.hpp>
#include <parley/websocket/message_reader.hpp>
#include <parley/websocket/handshake.hpp>
#include <parley/websocket/permessage_deflate.hpp>
#include <parley/websocket/stream.hpp>
#ifdef PARLEY_HAVE_HIREDIS // the Redis backplane needs hiredis
#include <parley/chat/redis_backplane.hpp>
#include <parley/redis_connection.hpp>
#endif
#if PARLEY_HAVE_ZLIB // permessage-deflate's compressor needs zlib
#include <parley/websocket/deflate.hpp>
#endif
#ifdef PARLEY_HAVE_SQLITE // the history store needs SQLite
#include <parley/chat/history/sqlite_store.hpp>
#endif
#if PARLEY_HAVE_TLS // the TLS headers need OpenSSL, as the TLS tests do
#include <parley/chat/tls.hpp>
#include <parley/tls.hpp>
#endif

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

parley_odr_addresses parley_odr_b() {
    // Instantiate a little of everything, so template code is compiled here
    // as well as in test_odr_a.cpp.
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

