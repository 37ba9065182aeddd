// parley: an asynchronous framed TCP client for applications: connects
// with retries, queues what it is given to send, hands out what arrives,
// reconnects if asked to, and closes without losing what was queued.
//
// @code
// parley::client_options options;
// options.reconnect = true;
// parley::async_client client(ioc.get_executor(), options);
// client.on_frame([](parley::frame_view payload) { std::cout << parley::as_string_view(payload); });
// client.on_event([](const parley::client_event& e) { std::clog << e.describe() << '\n'; });
// co_await client.async_connect("localhost", 9999, asio::use_awaitable);
// client.send("hello");                       // queued; returns at once
// co_await client.async_close(asio::use_awaitable);   // "hello" is sent first
// @endcode
#ifndef PARLEY_CLIENT_ASYNC_CLIENT_HPP
#define PARLEY_CLIENT_ASYNC_CLIENT_HPP

#include <parley/net/connect.hpp>
#include <parley/error.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/stream/framed_stream.hpp>
#include <parley/hub/outbound_queue.hpp>

#include <asio/any_io_executor.hpp>
#include <asio/async_result.hpp>
#include <asio/basic_stream_socket.hpp>
#include <asio/execution_context.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace parley {

/// Where an async_client is in its life.
enum class client_state : unsigned char {
    idle,         ///< not connected yet (or closed and ready to connect again)
    connecting,   ///< async_connect() is trying
    connected,    ///< frames flow both ways; send() accepts frames
    reconnecting, ///< the connection was lost; trying to connect again
    closing,      ///< close() is sending what was queued, then waiting for the peer to close
    closed,       ///< finished: close(), abort(), or a failure not retried
};

/// The name of a state ("connected").
std::string_view to_string(client_state state) noexcept;

/// Something that happened to an async_client, as reported to on_event().
struct client_event {
    enum class kind : unsigned char {
        /// A step of connecting or reconnecting: `progress` says which.
        connect_progress,
        /// Connected to `endpoint`. send() works from here on; a protocol
        /// that starts with a handshake sends it from this event.
        connected,
        /// The connection to `endpoint` was lost with `error` (for
        /// example asio::error::eof when the server closed it).
        /// `unsent` frames queued for it were never written and are
        /// dropped. If `reconnecting`, the client tries to connect again
        /// after `next_delay`; otherwise a `closed` event follows.
        disconnected,
        /// The client stopped for good: after close() (`error` clear when
        /// everything queued was written, error::timed_out when the
        /// deadline came first), after abort() (operation_aborted), when
        /// connecting failed for good (the last attempt's error) or after
        /// a `disconnected` event without reconnection. `unsent` frames
        /// were dropped.
        closed,
    };

    kind what = kind::connected;
    connect_event progress;            ///< connect_progress
    asio::ip::tcp::endpoint endpoint;  ///< connected, disconnected
    std::error_code error;             ///< disconnected, closed
    std::size_t unsent = 0;            ///< disconnected, closed
    bool reconnecting = false;         ///< disconnected
    std::chrono::milliseconds next_delay{0}; ///< disconnected, when reconnecting

    /// One line for a log or a terminal, e.g. "connection to 127.0.0.1:9999
    /// lost: End of file; reconnecting in 95 ms".
    std::string describe() const;
};

/// Options of an async_client.
struct client_options {
    /// How to connect and reconnect (timeouts, attempts, backoff). Its
    /// on_state is not used: steps arrive as connect_progress events.
    connect_options connect{};
    /// Connect again when an established connection is lost (not after
    /// close() or abort()). Each reconnection waits first, with the same
    /// backoff as failed attempts, growing while connections keep dying
    /// young, so a server that accepts and drops at once is not hammered.
    bool reconnect = false;
    /// Bounds of the outbound queue. With overflow_policy::disconnect (the
    /// default) a send that does not fit is refused with error::queue_full;
    /// with drop_oldest the oldest frames not yet being written make room.
    queue_limits queue{};
    /// Largest frame payload sent or accepted; a larger incoming frame ends
    /// the connection with error::frame_too_large.
    std::uint64_t max_payload = default_frame_format.max_payload;
    /// Deadline of close() and of async_close() without a timeout.
    std::chrono::milliseconds close_timeout{5000};
    /// Turn Nagle's algorithm off, so a small frame leaves at once.
    bool no_delay = true;
};

/// How an async_client secures a connection once TCP is connected: not at
/// all (this one), or with TLS (parley::tls::client_transport in
/// parley/net/tls.hpp). A transport names its stream type and turns a
/// connected socket into it.
template <class Executor>
struct tcp_transport {
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, Executor>;
    using stream_type = socket_type;

    /// Calls `done(ec, stream)` with the connected stream; `host` is the
    /// name connected to. Called on the client's executor.
    template <class Handler>
    void async_secure(socket_type socket, const std::string& /*host*/, Handler&& done) {
        std::forward<Handler>(done)(std::error_code(), std::move(socket));
    }

    /// Ends the sending side; calls `done()` when that is written.
    template <class Handler>
    void async_shutdown_send(stream_type& stream, Handler&& done) {
        std::error_code ignored;
        stream.shutdown(asio::socket_base::shutdown_send, ignored);
        std::forward<Handler>(done)();
    }

    static socket_type& socket(stream_type& stream) noexcept { return stream; }

    /// Stops an async_secure() under way (nothing to stop here).
    void cancel() noexcept {}

    /// A sentence for a failure of async_secure(), for the user.
    std::string describe(std::error_code ec) const { return ec.message(); }
};

namespace detail {
template <class Executor, class Transport>
class client_impl;
}

/// A client of a framed TCP server (or TLS, with
/// parley::tls::async_client from parley/net/tls.hpp).
///
/// Frames sent are queued (bounded) and written in order by gathered
/// writes; frames received go to the on_frame() handler. The connection's
/// life is reported to the on_event() handler.
///
/// @par Threading
/// The client's state lives on its executor (give it a strand if its
/// io_context runs on several threads). async_connect(), async_close(),
/// close() and abort() may be called from any thread: they move to the
/// executor first. Everything else (send(), on_frame(), on_event(),
/// state(), the queue sizes, destruction) must be called on the
/// executor, as from within the client's handlers, or while its
/// io_context is not running. Handlers are called on the executor;
/// completion handlers are never called from within the initiating call.
///
/// @par Lifetime
/// The client may be destroyed at any time, also from within one of its
/// handlers: the connection is aborted, nothing queued is sent, and none
/// of its on_frame()/on_event() handlers is called afterwards; pending
/// async_connect() and async_close() operations complete with
/// asio::error::operation_aborted.
template <class Executor = asio::any_io_executor, class Transport = tcp_transport<Executor>>
class basic_async_client {
public:
    using executor_type = Executor;
    using transport_type = Transport;
    using socket_type = asio::basic_stream_socket<asio::ip::tcp, Executor>;
    using frame_handler = std::function<void(frame_view)>;
    using event_handler = std::function<void(const client_event&)>;

    explicit basic_async_client(const executor_type& ex, client_options options = {},
                                Transport transport = {});

    template <class ExecutionContext>
        requires std::is_convertible_v<ExecutionContext&, asio::execution_context&>
    explicit basic_async_client(ExecutionContext& context, client_options options = {},
                                Transport transport = {})
        : basic_async_client(executor_type(context.get_executor()), std::move(options),
                             std::move(transport)) {}

    basic_async_client(basic_async_client&&) noexcept = default;
    basic_async_client& operator=(basic_async_client&& other) noexcept;
    ~basic_async_client();

    executor_type get_executor() const noexcept;

    /// Called with each frame received, in order. The view is valid during
    /// the call only. May call send(), close(), abort().
    void on_frame(frame_handler handler);

    /// Called at every change of state (see client_event).
    void on_event(event_handler handler);

    /// Connects to `host`:`port` with the retries of options.connect, then
    /// starts reading. Allowed when idle or closed; otherwise completes
    /// with asio::error::already_started (connecting) or already_connected.
    ///
    /// @code
    /// void handler(std::error_code ec, asio::ip::tcp::endpoint connected_to);
    /// @endcode
    /// On failure `ec` is the last attempt's error (see parley::async_connect)
    /// and a `closed` event was reported. The handler is never invoked from
    /// within this function. Per-operation cancellation (terminal) stops
    /// the connecting, as close() does; the connection, once made, is not
    /// affected.
    template <asio::completion_token_for<connect_signature> Token>
    auto async_connect(std::string_view host, std::uint16_t port, Token&& token);

    /// Queues `payload` as one frame and returns at once; it is written
    /// after every frame queued before it. The payload is copied.
    ///
    /// Returns false, and sets `ec`, when the frame was not queued:
    /// asio::error::not_connected (not connected, or reconnecting: a frame
    /// belongs to one connection), error::session_closed (closing or
    /// closed), error::frame_too_large (over max_payload), error::queue_full
    /// (the queue is at its limits).
    bool send(std::span<const std::byte> payload, std::error_code& ec);
    bool send(std::string_view payload, std::error_code& ec);
    bool send(std::span<const std::byte> payload);
    bool send(std::string_view payload);

    /// Closes gracefully: no more sends; every frame already queued is
    /// written; then the sending side is shut down so that the peer reads
    /// end of stream, and frames keep being delivered until the peer closes
    /// its side too, or until the deadline (options.close_timeout, or
    /// `timeout`), when the connection is closed regardless.
    ///
    /// @code
    /// void handler(std::error_code ec);
    /// @endcode
    /// `ec` is clear when everything queued was written before the
    /// deadline, error::timed_out when it was not, and operation_aborted
    /// if abort() was called meanwhile. When connecting or reconnecting,
    /// closing stops that, and completes with success. The handler is never
    /// invoked from within this function. Per-operation cancellation
    /// (terminal) of a close aborts the connection at once.
    template <asio::completion_token_for<void(std::error_code)> Token>
    auto async_close(Token&& token);
    template <asio::completion_token_for<void(std::error_code)> Token>
    auto async_close(std::chrono::milliseconds timeout, Token&& token);

    /// async_close() without waiting for it: the result arrives as the
    /// `closed` event.
    void close();

    /// Closes now: stops connecting, drops whatever is queued (reported as
    /// `unsent` in the `closed` event), closes the socket.
    void abort();

    client_state state() const noexcept;
    bool is_connected() const noexcept { return state() == client_state::connected; }

    /// Frames and bytes (frame headers included) queued and not yet written.
    std::size_t queued_frames() const noexcept;
    std::size_t queued_bytes() const noexcept;

    /// The server's address while connected (or closing).
    std::optional<asio::ip::tcp::endpoint> remote_endpoint() const;

    /// A sentence for an error the client reported: for a TLS client
    /// whose handshake failed, why ("certificate rejected: self-signed
    /// certificate"); otherwise ec.message().
    std::string describe(std::error_code ec) const;

private:
    std::shared_ptr<detail::client_impl<Executor, Transport>> impl_;
};

/// The client most programs use.
using async_client = basic_async_client<>;

} // namespace parley

#include <parley/client/impl/async_client.hpp>

#endif
