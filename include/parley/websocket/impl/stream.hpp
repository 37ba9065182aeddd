// parley: websocket::stream's member functions; the composed operations
// are in stream_handshake.hpp and stream_io.hpp beside this file.
#ifndef PARLEY_WEBSOCKET_IMPL_STREAM_HPP
#define PARLEY_WEBSOCKET_IMPL_STREAM_HPP

#include <parley/websocket/impl/stream_handshake.hpp>
#include <parley/websocket/impl/stream_io.hpp>

#include <asio/compose.hpp>

#include <algorithm>
#include <cstring>
#include <memory>

namespace parley::websocket {

template <class NextLayer>
void stream<NextLayer>::opened(role side, const std::optional<deflate_params>& deflate) {
    side_ = side;
    open_ = true;
    close_sent_ = close_received_ = torn_down_ = reading_ = writing_ = false;
    peer_close_ = {};
    deflate_params_ = deflate;
    deflate_.reset();
    if (deflate)
        deflate_ = std::make_unique<detail::deflate_state>(*deflate, side, options_.max_message_size);
    reader_ = message_reader(
        {.side = side, .max_message_size = options_.max_message_size, .compression = deflate.has_value()});
    writer_ = frame_writer<>(side);
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_accept(const server_options& options, Token&& token) {
    server_options o = options;
    o.deflate.enabled = o.deflate.enabled && detail::have_deflate; // see stream.hpp's file comment
    reset_for_handshake();
    return asio::async_compose<Token, handshake_signature>(detail::accept_op<stream>{*this, std::move(o)},
                                                           token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_accept(const http::request_parser& request, asio::const_buffer already_read,
                                     const server_options& options, Token&& token) {
    server_options o = options;
    o.deflate.enabled = o.deflate.enabled && detail::have_deflate;
    reset_for_handshake();
    detail::accept_op<stream> op{*this, o, true};
    if (!request.done()) {
        op.result = http::error::bad_request_line;
        handshake_out_ = http::error_response(op.result);
    } else {
        auto hs = accept_upgrade(request, o);
        op.result = hs.error;
        handshake_out_ = std::move(hs.response);
        op.subprotocol = std::move(hs.subprotocol);
        op.deflate = hs.deflate;
    }
    rbuf_.resize(std::max<std::size_t>({options_.read_chunk, already_read.size(), 1024}));
    std::memcpy(rbuf_.data(), already_read.data(), already_read.size());
    pending_ = already_read.size();
    return asio::async_compose<Token, handshake_signature>(std::move(op), token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_handshake(std::string_view host, std::string_view target, Token&& token) {
    client_options o;
    o.host = std::string(host);
    o.target = std::string(target);
    return async_handshake(std::move(o), std::forward<Token>(token));
}

template <class NextLayer>
template <asio::completion_token_for<handshake_signature> Token>
auto stream<NextLayer>::async_handshake(client_options options, Token&& token) {
    options.deflate.enabled = options.deflate.enabled && detail::have_deflate;
    reset_for_handshake();
    auto hs = std::make_unique<client_handshake>(std::move(options));
    return asio::async_compose<Token, handshake_signature>(
        detail::client_handshake_op<stream>{*this, std::move(hs)}, token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<read_signature> Token>
auto stream<NextLayer>::async_read(std::string& out, Token&& token) {
    return asio::async_compose<Token, read_signature>(
        detail::read_op<stream, detail::string_sink>{*this, detail::string_sink{&out}}, token, next_layer_);
}

template <class NextLayer>
template <class DynamicBuffer, asio::completion_token_for<read_signature> Token>
    requires asio::is_dynamic_buffer_v2<DynamicBuffer>::value
auto stream<NextLayer>::async_read(DynamicBuffer buffer, Token&& token) {
    using sink = detail::dynamic_sink<DynamicBuffer>;
    return asio::async_compose<Token, read_signature>(
        detail::read_op<stream, sink>{*this, sink{std::move(buffer)}}, token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<write_signature> Token>
auto stream<NextLayer>::async_write(message_type type, asio::const_buffer data, Token&& token) {
    return asio::async_compose<Token, write_signature>(detail::write_op<stream>{*this, type, data}, token,
                                                       next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<ping_signature> Token>
auto stream<NextLayer>::async_ping(asio::const_buffer payload, Token&& token) {
    std::error_code ec;
    message_ptr frame;
    if (open_)
        frame = writer_.ping({static_cast<const std::byte*>(payload.data()), payload.size()}, ec);
    else
        ec = close_sent_ || close_received_ ? error::closed : error::not_open;
    detail::control_op<stream> op{*this, std::move(frame), false, ec};
    return asio::async_compose<Token, ping_signature>(std::move(op), token, next_layer_);
}

template <class NextLayer>
template <asio::completion_token_for<close_signature> Token>
auto stream<NextLayer>::async_close(close_code code, std::string_view reason, Token&& token) {
    std::error_code ec;
    message_ptr frame;
    if (open_ && !close_sent_)
        frame = writer_.close(code, reason, ec);
    detail::control_op<stream> op{*this, std::move(frame), true, ec};
    return asio::async_compose<Token, close_signature>(std::move(op), token, next_layer_);
}

} // namespace parley::websocket

#endif
