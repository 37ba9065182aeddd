// parley chat transports: WebSocket input, the decoder a session's read
// loop runs for a browser (session::read_with). Each text message is one
// input, handed to the sink in batches like the framed and line inputs
// (parley/chat/transport/readers.hpp); pings are answered here; a close, a
// protocol error or a binary message ends the connection with a close frame
// that says why. On a connection that negotiated permessage-deflate (with
// client_no_context_takeover, as the chat's web port asks), compressed
// messages are inflated, never past the message size limit, by an inflater
// each thread shares: an idle connection holds no zlib state.
#ifndef PARLEY_CHAT_TRANSPORT_WEBSOCKET_INPUT_HPP
#define PARLEY_CHAT_TRANSPORT_WEBSOCKET_INPUT_HPP

#include <parley/chat/transport/readers.hpp>
#include <parley/codec/utf8.hpp>
#include <parley/hub/input_decoder.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/frame_writer.hpp>
#include <parley/websocket/message_reader.hpp>
#include <parley/websocket/permessage_deflate.hpp>

#if PARLEY_HAVE_ZLIB
#include <parley/websocket/deflate.hpp>
#endif

#include <asio/error.hpp>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace parley::chat::transport {

/// A server close frame: the last message of a WebSocket connection. The
/// reason is cut to what a close frame holds, at a character boundary.
inline message_ptr websocket_close_frame(websocket::close_code code, std::string_view reason = {}) {
    reason = reason.substr(0, websocket::max_close_reason);
    while (!reason.empty() && !is_valid_utf8(reason))
        reason.remove_suffix(1);
    websocket::close_payload_buffer payload;
    std::error_code ec;
    const std::size_t n = websocket::write_close_payload(code, reason, payload, ec);
    return websocket::make_server_frame({websocket::opcode::close}, std::span(payload).first(n), ec);
}

/// Text messages from a browser (or any WebSocket client) as chat inputs.
template <class Sink>
class websocket_input {
public:
    /// `max_message`: the largest text message taken (the framed port's
    /// max_frame_bytes); a larger one is answered as a frame_too_large
    /// input error and a 1009 close, as is a compressed one inflating
    /// past it. `compressed`: permessage-deflate was negotiated (with
    /// client_no_context_takeover).
    websocket_input(std::shared_ptr<Sink> sink, core::conn_id id, std::uint64_t max_message,
                    bool compressed = false)
        : sink_(std::move(sink)), id_(id),
          reader_({.side = websocket::role::server, .max_message_size = max_message, .compression = compressed}) {}

    template <class Session>
    decode_result decode(Session& s, input_view bytes) {
        reader_.feed(bytes); // unmasked in place; every byte is consumed
        input_batch batch;
        std::error_code ec;
        while (auto ev = reader_.next(ec)) {
            switch (ev.kind) {
            case websocket::event_kind::text:
                if (!ev.compressed) {
                    batch.inputs.push_back({std::string(ev.text()), std::nullopt});
                    break;
                }
                if (auto text = inflate(ev.text(), ec)) {
                    batch.inputs.push_back({std::move(*text), std::nullopt});
                    break;
                }
                if (ec == websocket::error::message_too_big)
                    return too_big(std::move(batch), bytes.size());
                return end(s, std::move(batch), websocket::close_code::invalid_payload, ec.message());
            case websocket::event_kind::binary:
                return end(s, std::move(batch), websocket::close_code::unsupported_data,
                           "chat inputs are text messages");
            case websocket::event_kind::ping: {
                std::error_code wec;
                if (auto pong = writer_.pong(ev.payload, wec))
                    s.send(pong);
                break;
            }
            case websocket::event_kind::pong:
            case websocket::event_kind::none:
                break;
            case websocket::event_kind::close:
                // The peer leaves: its last inputs, then the answer to its
                // close (RFC 6455 5.5.1: the same code) ends the connection.
                detail::hand_last(s, *sink_, id_, std::move(batch));
                s.close(websocket_close_frame(ev.code == websocket::close_code::no_status
                                                  ? websocket::close_code::normal
                                                  : ev.code));
                return {bytes.size(), read_action::stop};
            }
        }
        if (ec) {
            if (ec == websocket::error::message_too_big)
                return too_big(std::move(batch), bytes.size());
            return end(s, std::move(batch), reader_.close_code_to_send(), ec.message());
        }
        if (batch.inputs.empty())
            return {bytes.size(), read_action::more};
        detail::hand_over(s, *sink_, id_, std::move(batch));
        return {bytes.size(), read_action::hold};
    }

    template <class Session>
    void finish(Session& s, input_view, std::error_code ec) {
        if (ec != asio::error::eof)
            return; // the session closes with `ec`
        // A FIN without a close frame (1006 for the peer's side): as a
        // framed client that closes its socket.
        detail::hand_last(s, *sink_, id_, {});
    }

private:
    // A compressed text message inflated, or nothing with `ec` set:
    // error::message_too_big past the limit, deflate_error::corrupt_data,
    // error::invalid_utf8.
    std::optional<std::string> inflate(std::string_view compressed, std::error_code& ec) {
        std::string text;
#if PARLEY_HAVE_ZLIB
        // One inflater per thread, reset after each message (the port asks
        // for no client context takeover, and a message is inflated whole,
        // in this call): no zlib state per connection, and no inflater
        // (about 40 KiB) made and freed per message. An error leaves it
        // unusable: the next message gets a new one.
        thread_local std::optional<websocket::inflater> in;
        const auto max = static_cast<std::size_t>(
            std::min<std::uint64_t>(reader_.options().max_message_size, SIZE_MAX));
        if (!in || in->max_message_size() != max)
            in.emplace(max, true);
        in->feed(compressed, text, ec);
        if (!ec)
            in->finish(text, ec);
        if (ec)
            in.reset();
#else
        (void)compressed;
        ec = websocket::deflate_error::corrupt_data;
#endif
        if (ec == websocket::deflate_error::message_too_big)
            ec = websocket::error::message_too_big;
        else if (!ec && !is_valid_utf8(text))
            ec = websocket::error::invalid_utf8;
        if (ec)
            return std::nullopt;
        return text;
    }

    // As a framed client's oversize frame: the core says why (an error
    // event) and closes, with a close frame 1000.
    decode_result too_big(input_batch batch, std::size_t used) {
        batch.inputs.push_back({"a message larger than " + std::to_string(reader_.options().max_message_size) +
                                    " bytes was refused",
                                errc::frame_too_large});
        sink_->on_batch(id_, std::move(batch), [] {});
        return {used, read_action::stop};
    }

    // A protocol error: the inputs before it count, then the connection
    // ends with a close frame naming the error.
    template <class Session>
    decode_result end(Session& s, input_batch batch, websocket::close_code code, std::string_view why) {
        if (!batch.inputs.empty())
            sink_->on_batch(id_, std::move(batch), [] {});
        s.close(websocket_close_frame(code, why));
        return {0, read_action::stop};
    }

    std::shared_ptr<Sink> sink_;
    core::conn_id id_;
    websocket::message_reader reader_;
    websocket::frame_writer<> writer_{websocket::role::server};
};

} // namespace parley::chat::transport

#endif
