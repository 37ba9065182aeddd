// parley: a WebSocket (RFC 6455) over any Asio byte stream: a TCP socket,
// or a tls::stream for wss://.
//
// @code
// // A server, on an accepted socket:
// parley::websocket::stream<asio::ip::tcp::socket> ws(std::move(socket));
// co_await ws.async_accept({}, asio::use_awaitable);      // 101, or an HTTP error
// std::string text;
// co_await ws.async_read(text, asio::use_awaitable);      // one whole message
// co_await ws.async_write(ws.got_text() ? message_type::text : message_type::binary,
//                         asio::buffer(text), asio::use_awaitable);
// co_await ws.async_close(close_code::normal, "bye", asio::use_awaitable);
//
// // A client:
// parley::websocket::stream<asio::ip::tcp::socket> ws(ioc);
// ws.next_layer().connect(endpoint);
// co_await ws.async_handshake("127.0.0.1:8080", "/ws", asio::use_awaitable);
// @endcode
//
// The protocol itself is in the sans-I/O pieces this stream drives:
// handshake.hpp (the opening handshake), message_reader.hpp (every rule on
// received frames), frame_writer.hpp (frames to send); the stream only
// moves bytes and answers pings and closes.
//
// permessage-deflate (RFC 7692) is negotiated when server_options::deflate
// or client_options::deflate enables it (off by default) and parley is
// built with zlib (PARLEY_HAVE_ZLIB, defined by the parley::deflate target
// and meson's parley_deflate_dep); without zlib a server declines every
// offer and a client offers none. Once negotiated, every data message
// written is compressed (RSV1 on its first frame), and compressed messages
// read are inflated, never past stream_options::max_message_size (1009).
#ifndef PARLEY_WEBSOCKET_STREAM_HPP
#define PARLEY_WEBSOCKET_STREAM_HPP

#include <parley/error.hpp>
#include <parley/http/error.hpp>
#include <parley/http/request_parser.hpp>
#include <parley/hub/message.hpp>
#include <parley/websocket/close.hpp>
#include <parley/websocket/detail/stream_deflate.hpp>
#include <parley/websocket/error.hpp>
#include <parley/websocket/frame.hpp>
#include <parley/websocket/frame_writer.hpp>
#include <parley/websocket/handshake.hpp>
#include <parley/websocket/message_reader.hpp>

#include <asio/async_result.hpp>
#include <asio/buffer.hpp>
#include <asio/steady_timer.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>
#include <vector>

namespace parley::websocket {

/// The kind of a data message.
enum class message_type : unsigned char { text, binary };

/// Limits and deadlines of a stream; set them before the handshake.
struct stream_options {
    /// The largest message accepted by a read (1009 beyond it); for a
    /// compressed message, both its compressed and its inflated size.
    std::uint64_t max_message_size = 1024 * 1024;
    /// Writes send a message in frames of at most this many payload bytes
    /// (after compression); zero: one frame per message.
    std::size_t max_frame_size = 0;
    /// The opening handshake must be done within this (zero: no limit);
    /// else it fails with parley::error::timed_out.
    std::chrono::milliseconds handshake_timeout{10'000};
    /// After a close frame is sent, how long to wait for the peer's, and
    /// then for the peer to end the connection, before dropping it.
    std::chrono::milliseconds close_timeout{5'000};
    /// Size of each read from the next layer.
    std::size_t read_chunk = 16 * 1024;
};

/// What the peer's close frame said (a copy: it outlives the read).
struct peer_close_info {
    /// close_code::no_status for a close without a code; abnormal (1006)
    /// when no close frame came.
    close_code code = close_code::abnormal;
    std::string reason;
};

/// Completion signatures.
using handshake_signature = void(std::error_code);
using read_signature = void(std::error_code, std::size_t);
using write_signature = void(std::error_code, std::size_t);
using close_signature = void(std::error_code);
using ping_signature = void(std::error_code);

namespace detail {
template <class Stream>
struct accept_op;
template <class Stream>
struct client_handshake_op;
template <class Stream, class Sink>
struct read_op;
template <class Stream>
struct write_op;
template <class Stream>
struct control_op;
template <class Stream>
struct teardown_op;
} // namespace detail

/// A WebSocket connection over `NextLayer`, which models Asio's
/// AsyncReadStream and AsyncWriteStream and has a `lowest_layer()` socket
/// (`asio::ip::tcp::socket`, `parley::tls::stream`, or a reference to
/// either: `stream<tcp::socket&>` wraps a socket owned elsewhere).
///
/// Reads hand out whole messages; pings are answered (the pong echoes the
/// payload) and the peer's close is answered by the read in progress, which
/// then completes with error::closed (see peer_close()).
///
/// @par Thread safety and outstanding operations
/// Like an Asio socket: distinct objects are safe, a shared object is not
/// (use a strand). At most one read, and at most one write (async_write or
/// async_ping), may be outstanding at a time, as with Asio's streams: the
/// caller serializes its writes. The stream itself may write a pong or a
/// close while a caller's write is outstanding: such control frames wait for
/// the caller's frame to be written whole, never interleave with it. After
/// async_close() is started, start no more reads.
///
/// Every operation's handler is invoked as if by asio::post (never from
/// within the initiating function); the stream must outlive the operations.
/// With a lazy token (`deferred`), launch an operation before starting the
/// next one.
template <class NextLayer>
class stream {
public:
    using next_layer_type = std::remove_reference_t<NextLayer>;
    using executor_type = typename next_layer_type::executor_type;

    /// Constructs the next layer from `args` (an executor, an io_context, a
    /// socket to move from, a socket and a TLS context, ...).
    template <class... Args>
        requires(std::is_constructible_v<NextLayer, Args...> &&
                 !(sizeof...(Args) == 1 && (std::is_same_v<std::remove_cvref_t<Args>, stream> || ...)))
    explicit stream(Args&&... args)
        : next_layer_(std::forward<Args>(args)...), write_waiters_(next_layer_.get_executor()),
          close_waiter_(next_layer_.get_executor()) {
        write_waiters_.expires_at(asio::steady_timer::time_point::max());
    }

    /// Movable while no operation is outstanding.
    stream(stream&&) = default;
    stream& operator=(stream&&) = default;

    executor_type get_executor() noexcept { return next_layer_.get_executor(); }
    next_layer_type& next_layer() noexcept { return next_layer_; }
    const next_layer_type& next_layer() const noexcept { return next_layer_; }

    /// Limits and deadlines; set before the handshake.
    const stream_options& options() const noexcept { return options_; }
    void options(const stream_options& o) { options_ = o; }

    /// Whether the handshake succeeded and no close was sent or received.
    bool is_open() const noexcept { return open_ && !close_sent_ && !close_received_; }
    /// Which end this is (meaningful after the handshake).
    role side() const noexcept { return side_; }
    /// The subprotocol agreed in the handshake, empty for none.
    const std::string& subprotocol() const noexcept { return subprotocol_; }
    /// Whether the last message read was text (else binary).
    bool got_text() const noexcept { return got_text_; }
    /// What the peer's close frame said, once a read or close saw it.
    const peer_close_info& peer_close() const noexcept { return peer_close_; }
    /// The permessage-deflate parameters negotiated in the handshake, if
    /// any (then data messages are compressed both ways).
    const std::optional<deflate_params>& deflate() const noexcept { return deflate_params_; }
    /// Pongs received so far (answers to async_ping, or unsolicited).
    std::uint64_t pongs_received() const noexcept { return pongs_; }

    /// @name Opening handshake
    /// @{

    /// Server: reads the upgrade request (bounded: http::head_limits),
    /// checks it against `options` (origin allow-list, subprotocols) and
    /// writes the 101, or the HTTP error answer (400, 403, 405, 426, 431,
    /// 505) after which the connection is closed and the operation fails
    /// with that parley::http::error.
    /// @code
    /// void handler(std::error_code ec);
    /// @endcode
    /// Fails with parley::error::timed_out after options().handshake_timeout.
    template <asio::completion_token_for<handshake_signature> Token>
    auto async_accept(const server_options& options, Token&& token);

    /// Server: the same for a request an HTTP server already read (an HTTP
    /// server routing `GET /` and `GET /ws` on one port hands the
    /// connection over). `already_read` holds the bytes read after the
    /// request head: they are the first WebSocket bytes (copied here).
    template <asio::completion_token_for<handshake_signature> Token>
    auto async_accept(const http::request_parser& request, asio::const_buffer already_read,
                      const server_options& options, Token&& token);

    /// Client: sends the upgrade request for `target` on `host` (the Host
    /// field, "name" or "name:port") with a fresh random key, and checks
    /// the answer (101, Sec-WebSocket-Accept, subprotocol, extensions).
    /// A refusal fails with a parley::http::error (not_switching_protocols
    /// for another status than 101, ...).
    template <asio::completion_token_for<handshake_signature> Token>
    auto async_handshake(std::string_view host, std::string_view target, Token&& token);
    template <asio::completion_token_for<handshake_signature> Token>
    auto async_handshake(client_options options, Token&& token);

    /// @}
    /// @name Messages
    /// @{

    /// Reads one whole message into `out` (replacing its contents); text is
    /// checked as UTF-8 as it arrives. got_text() tells its type.
    /// @code
    /// void handler(std::error_code ec, std::size_t message_size);
    /// @endcode
    /// Pings and pongs arriving meanwhile are answered or counted. Errors:
    /// error::closed once the peer's close frame came (answered; see
    /// peer_close()) or after a close this side sent; a parley.websocket
    /// error for a peer breaking the protocol (then a close with the code
    /// close_code_for() gives has been sent: 1002, 1007, 1009);
    /// error::no_close_frame or error::truncated when the connection ended
    /// without a close. After any error the connection is closed.
    template <asio::completion_token_for<read_signature> Token>
    auto async_read(std::string& out, Token&& token);

    /// The same, appending the message to a DynamicBuffer (v2), such as
    /// asio::dynamic_buffer(vector).
    template <class DynamicBuffer, asio::completion_token_for<read_signature> Token>
        requires asio::is_dynamic_buffer_v2<DynamicBuffer>::value
    auto async_read(DynamicBuffer buffer, Token&& token);

    /// Writes `data` as one message of type `type`: one frame, or frames of
    /// options().max_frame_size; compressed if permessage-deflate was
    /// negotiated; a client's masked with a fresh key per frame (copying
    /// the payload). `data` must stay valid until the handler is called.
    /// @code
    /// void handler(std::error_code ec, std::size_t bytes);
    /// @endcode
    /// Errors: error::invalid_utf8_to_send for text that is not UTF-8
    /// (nothing written), error::closed after a close was sent or received,
    /// error::not_open before the handshake.
    template <asio::completion_token_for<write_signature> Token>
    auto async_write(message_type type, asio::const_buffer data, Token&& token);

    /// Sends a ping with `payload` (at most 125 bytes, copied); the pong
    /// is counted by the read in progress (pongs_received()). Counts as a
    /// write: not while an async_write is outstanding.
    template <asio::completion_token_for<ping_signature> Token>
    auto async_ping(asio::const_buffer payload, Token&& token);

    /// Starts the closing handshake: sends a close frame with `code` and
    /// `reason` (at most 123 bytes of UTF-8), waits for the peer's close
    /// (seen by the read in progress, or read here if none is) for at most
    /// options().close_timeout, then ends the connection.
    /// @code
    /// void handler(std::error_code ec);
    /// @endcode
    /// Errors: parley::error::timed_out when the peer did not answer in
    /// time (the connection is dropped all the same), the errors of
    /// write_close_payload() for a code or reason that cannot be sent.
    /// Completes without error if the connection is already closed.
    template <asio::completion_token_for<close_signature> Token>
    auto async_close(close_code code, std::string_view reason, Token&& token);

    /// @}
    /// @name Blocking
    /// For a program that blocks (a thread per connection, a test, a
    /// script): each runs its async_ counterpart and then the stream's
    /// io_context on the calling thread until it completes, with the same
    /// results, deadlines and errors. The executor must be an io_context's
    /// that no other thread runs meanwhile, and the calling thread must not
    /// be running it (never call these from a handler). Handlers of other
    /// operations queued on that io_context run meanwhile too. The overloads
    /// without `ec` throw std::system_error.
    /// @{
    void accept(const server_options& options, std::error_code& ec);
    void accept(const server_options& options = {});
    void handshake(client_options options, std::error_code& ec);
    void handshake(std::string_view host, std::string_view target);
    std::size_t read(std::string& out, std::error_code& ec);
    std::size_t read(std::string& out);
    std::size_t write(message_type type, asio::const_buffer data, std::error_code& ec);
    std::size_t write(message_type type, asio::const_buffer data);
    void close(close_code code, std::string_view reason, std::error_code& ec);
    void close(close_code code = close_code::normal, std::string_view reason = {});
    /// @}

private:
    template <class> friend struct detail::accept_op;
    template <class> friend struct detail::client_handshake_op;
    template <class, class> friend struct detail::read_op;
    template <class> friend struct detail::write_op;
    template <class> friend struct detail::control_op;
    template <class> friend struct detail::teardown_op;

    // Prepares reading after a successful handshake (pending_ bytes at the
    // start of rbuf_ came after the head).
    void opened(role side, const std::optional<deflate_params>& deflate);
    // Forgets a previous connection's state before a handshake.
    void reset_for_handshake() noexcept {
        open_ = close_sent_ = close_received_ = torn_down_ = reading_ = writing_ = false;
        pending_ = 0;
        subprotocol_.clear();
        deflate_params_.reset();
        deflate_.reset();
    }
    // The frame writer for control frames and a client's data frames.
    frame_writer<>& writer() noexcept { return writer_; }
    std::span<std::byte> read_space() noexcept { return {rbuf_.data(), rbuf_.size()}; }
    // Releases the write lock and wakes operations waiting for it.
    void release_write() noexcept {
        writing_ = false;
        write_waiters_.cancel();
    }

    NextLayer next_layer_;
    stream_options options_{};
    role side_ = role::server;
    bool open_ = false;
    bool close_sent_ = false;     // a close frame is sent or queued: no more data
    bool close_received_ = false; // the peer's close frame came
    bool torn_down_ = false;      // the connection is being ended
    bool reading_ = false;        // a read (async_read) is outstanding
    bool writing_ = false;        // a frame is being written (the write lock)
    bool got_text_ = false;
    std::uint64_t pongs_ = 0;
    std::string subprotocol_;
    peer_close_info peer_close_;
    message_reader reader_;
    std::optional<deflate_params> deflate_params_;
    std::unique_ptr<detail::deflate_state> deflate_; // when negotiated
    frame_writer<> writer_{role::server};
    std::vector<std::byte> rbuf_;
    std::size_t pending_ = 0; // bytes at the start of rbuf_ not yet fed to reader_
    header_buffer wheader_{}; // the header of a server's data frame being written
    std::string handshake_out_;
    asio::steady_timer write_waiters_; // waits of operations wanting the write lock
    asio::steady_timer close_waiter_;  // async_close waiting for the read to see the close
};

} // namespace parley::websocket

#include <parley/websocket/impl/stream.hpp>
#include <parley/websocket/impl/stream_blocking.hpp>

#endif
