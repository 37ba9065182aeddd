// parley chat transports: the event encoders. A transport is an input
// decoder (parley/chat/transport/readers.hpp) and one of these; the chat
// core knows neither. An event published to a room is encoded once per
// encoding its members use, by the first member that needs it.
#ifndef PARLEY_CHAT_TRANSPORT_ENCODING_HPP
#define PARLEY_CHAT_TRANSPORT_ENCODING_HPP

#include <parley/chat/protocol.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/hub/message.hpp>
#include <parley/websocket/frame_writer.hpp>

#include <array>
#include <cstddef>
#include <span>
#include <string>
#include <system_error>

namespace parley::chat::transport {

/// The encodings, as session_base::encoding() numbers them. A new
/// transport adds one here and a case in encode().
enum class encoding : std::size_t {
    framed = 0, ///< JSON events in 4-byte length-prefixed frames (docs/PROTOCOL.md §3)
    line = 1,   ///< readable text lines (docs/PROTOCOL.md §5)
    websocket = 2, ///< JSON events in WebSocket text messages (server frames, unmasked)
};
inline constexpr std::size_t encoding_count = 3;

/// `e` in `how`; null if it cannot be encoded (over max_event_bytes).
inline message_ptr encode(const event& e, encoding how) {
    if (how == encoding::line) {
        std::string text = to_line(e);
        text += '\n';
        return make_raw_message(text);
    }
    const std::string payload = to_json(e);
    std::error_code ec;
    if (how == encoding::websocket)
        return websocket::make_server_text(payload, ec);
    static const frame_codec<> codec{max_event_bytes};
    return make_frame_message(codec, std::as_bytes(std::span(payload)), ec);
}

/// One event's encodings, each made on first use.
class lazy_encodings {
public:
    explicit lazy_encodings(const event& e) noexcept : event_(e) {}
    const message_ptr& get(std::size_t index) {
        const std::size_t i = index < encoding_count ? index : 0;
        if (!made_[i]) {
            made_[i] = true;
            messages_[i] = encode(event_, static_cast<encoding>(i));
        }
        return messages_[i];
    }

private:
    const event& event_;
    std::array<message_ptr, encoding_count> messages_{};
    std::array<bool, encoding_count> made_{};
};

} // namespace parley::chat::transport

#endif
