// parley chat transports: the event encoders. A transport is an input
// decoder (parley/chat/transport/readers.hpp) and one of these; the chat
// core knows neither. An event published to a room is encoded once per
// encoding its members use, by the first member that needs it.
//
// A WebSocket that negotiated permessage-deflate (chat_server
// --web-deflate; needs zlib, PARLEY_HAVE_ZLIB) gets the websocket_deflate
// encoding: the server compresses each message alone
// (server_no_context_takeover), so one compressed frame serves every such
// recipient of a broadcast.
#ifndef PARLEY_CHAT_TRANSPORT_ENCODING_HPP
#define PARLEY_CHAT_TRANSPORT_ENCODING_HPP

#include <parley/chat/protocol.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/hub/message.hpp>
#include <parley/websocket/frame_writer.hpp>

#if PARLEY_HAVE_ZLIB
#include <parley/websocket/deflate.hpp>
#endif

#include <array>
#include <cstddef>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace parley::chat::transport {

/// The encodings, as session_base::encoding() numbers them. A new
/// transport adds one here and a case in encode().
enum class encoding : std::size_t {
    framed = 0, ///< JSON events in 4-byte length-prefixed frames (docs/PROTOCOL.md §3)
    line = 1,   ///< readable text lines (docs/PROTOCOL.md §5)
    websocket = 2, ///< JSON events in WebSocket text messages (server frames, unmasked)
    /// The same, compressed (permessage-deflate, no context takeover)
    websocket_deflate = 3,
};
inline constexpr std::size_t encoding_count = 4;

/// Whether `how` is one of the WebSocket encodings.
constexpr bool is_websocket(encoding how) noexcept {
    return how == encoding::websocket || how == encoding::websocket_deflate;
}

/// A compressed WebSocket text message of `json` (valid UTF-8): one
/// frame with RSV1, compressed alone (RFC 7692, no context takeover).
/// Without zlib, the plain frame (never used: nothing negotiates it).
inline message_ptr compressed_websocket_text(std::string_view json) {
#if PARLEY_HAVE_ZLIB
    // One compressor per thread, reset after each message; level 6 with
    // zlib's default memory (about 256 KiB a thread).
    thread_local websocket::deflater deflater(true);
    thread_local std::string compressed;
    compressed.clear();
    deflater.compress(json, compressed);
    std::error_code ec;
    auto m = websocket::make_server_frame({websocket::opcode::text, true, true},
                                          std::as_bytes(std::span(compressed)), ec);
    if (compressed.capacity() > 64 * 1024)
        std::string().swap(compressed);
    return m;
#else
    return websocket::make_server_text_unchecked(json);
#endif
}

/// An event's JSON (to_json) in `how`, framed or WebSocket.
inline message_ptr encode_json(std::string_view json, encoding how) {
    if (how == encoding::websocket) // to_json writes valid UTF-8 only (impl/json_escape.hpp)
        return websocket::make_server_text_unchecked(json);
    if (how == encoding::websocket_deflate)
        return compressed_websocket_text(json);
    static const frame_codec<> codec{max_event_bytes};
    std::error_code ec;
    return make_frame_message(codec, std::as_bytes(std::span(json)), ec);
}

/// `e` in `how`; null if it cannot be encoded (over max_event_bytes).
inline message_ptr encode(const event& e, encoding how) {
    if (how == encoding::line) {
        std::string text = to_line(e);
        text += '\n';
        return make_raw_message(text);
    }
    return encode_json(to_json(e), how);
}

/// What a connection in `how` is sent last before the server closes it:
/// `last` (an event, or null), and for a WebSocket a close frame (1000)
/// after it, in one message.
inline message_ptr last_words(encoding how, const message_ptr& last) {
    if (!is_websocket(how))
        return last;
    // FIN + close, 2 bytes of payload: the code 1000, unmasked.
    static constexpr std::byte close_normal[] = {std::byte{0x88}, std::byte{0x02}, std::byte{0x03},
                                                 std::byte{0xE8}};
    const std::size_t before = last ? last->size() : 0;
    message* m = message::allocate(before + sizeof close_normal, 0, last ? 2 : 1);
    if (last)
        std::memcpy(m->mutable_data(), last->data(), before);
    std::memcpy(m->mutable_data() + before, close_normal, sizeof close_normal);
    return message_ptr::adopt(m);
}

/// One event's encodings, each made on first use.
class lazy_encodings {
public:
    explicit lazy_encodings(const event& e) noexcept : event_(e) {}
    const message_ptr& get(std::size_t index) {
        const std::size_t i = index < encoding_count ? index : 0;
        if (!made_[i]) {
            made_[i] = true;
            const auto how = static_cast<encoding>(i);
            if (how == encoding::line) {
                messages_[i] = encode(event_, how);
            } else {
                // The framed and WebSocket encodings share one JSON text.
                if (json_.empty())
                    json_ = to_json(event_);
                messages_[i] = encode_json(json_, how);
            }
        }
        return messages_[i];
    }

private:
    const event& event_;
    std::string json_;
    std::array<message_ptr, encoding_count> messages_{};
    std::array<bool, encoding_count> made_{};
};

} // namespace parley::chat::transport

#endif
