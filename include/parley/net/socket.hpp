// parley: blocking TCP sockets with timeouts, for programs that want the
// shape of Python's socket module without its pitfalls.
//
// @code
// parley::tcp_listener server("localhost", 10000);
// for (;;) {
//     parley::tcp_socket con = server.accept();
//     con.send_frame("连上了");
//     std::cout << con.recv_frame() << '\n';
// }                                     // each connection closed by RAII
//
// auto client = parley::tcp_socket::connect("localhost", 10000, 5s);
// @endcode
//
// Every operation comes in two forms, as in Asio: one that reports failure
// through a `std::error_code&` argument, and one that throws
// `std::system_error` whose what() says what was being done, with whom, and
// why it failed. Errors parley adds (timeouts, oversized or truncated
// frames) are `parley::error` values; errors from the operating system keep
// the codes Asio uses (asio::error::connection_refused, connection_reset,
// eof, ...).
//
// Timeouts are real: Asio's synchronous socket calls ignore SO_RCVTIMEO (on
// EAGAIN they poll with no limit), so these sockets are non-blocking
// underneath and every wait is a poll() bounded by what is left of the
// call's timeout.
#ifndef PARLEY_NET_SOCKET_HPP
#define PARLEY_NET_SOCKET_HPP

#include <parley/error.hpp>
#include <parley/codec/frame_codec.hpp>
#include <parley/detail/blocking_io.hpp>
#include <parley/detail/read_buffer.hpp>

#include <asio/buffer.hpp>
#include <asio/ip/tcp.hpp>
#include <asio/socket_base.hpp>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <ranges>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace parley {

/// A timeout meaning "wait as long as it takes", the default for every
/// blocking call.
inline constexpr std::chrono::nanoseconds no_timeout = std::chrono::nanoseconds::max();

/// Which direction(s) tcp_socket::shutdown() closes.
enum class shutdown_type {
    send,    ///< No more sends; the peer reads end of stream.
    receive, ///< No more receives.
    both,
};

namespace detail {
template <class T>
concept byte_like = sizeof(T) == 1 && (std::same_as<T, char> || std::same_as<T, signed char> ||
                                       std::same_as<T, unsigned char> ||
                                       std::same_as<T, char8_t> || std::same_as<T, std::byte>);
} // namespace detail

/// A view of bytes to send, built implicitly from text or binary data: a
/// string literal, `std::string`, `std::string_view`, or any contiguous
/// range of `char`, `unsigned char` or `std::byte` (`std::vector<std::byte>`,
/// `std::span<const std::byte>`, `std::array<unsigned char, N>`...), or an
/// `asio::const_buffer`. Nothing is copied; the data must outlive the call.
class byte_view {
public:
    constexpr byte_view() noexcept = default;

    /// A NUL-terminated string, without its terminator.
    byte_view(const char* text) noexcept : byte_view(std::string_view(text)) {}

    // Arrays are excluded so that a string literal goes through the
    // constructor above and does not send its terminating NUL.
    template <std::ranges::contiguous_range Range>
        requires std::ranges::sized_range<Range> &&
                 (!std::is_array_v<std::remove_cvref_t<Range>>) &&
                 detail::byte_like<std::ranges::range_value_t<Range>>
    byte_view(const Range& range) noexcept
        : data_(reinterpret_cast<const std::byte*>(std::ranges::data(range))),
          size_(std::ranges::size(range)) {}

    byte_view(asio::const_buffer buffer) noexcept
        : data_(static_cast<const std::byte*>(buffer.data())), size_(buffer.size()) {}

    const std::byte* data() const noexcept { return data_; }
    std::size_t size() const noexcept { return size_; }
    bool empty() const noexcept { return size_ == 0; }

private:
    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
};

/// A connected TCP socket whose calls block, each bounded by a timeout.
///
/// Sends and receives raw bytes (send(), recv()) or parley frames
/// (send_frame(), recv_frame(): a 4-byte big-endian length, then the
/// payload; at most 1 MiB unless set_max_payload() says otherwise).
///
/// Received bytes are read in chunks of up to 32 KiB and kept in the socket:
/// several frames that arrive together cost one system call, and bytes past
/// the end of a frame wait for the next recv_frame() or recv(). Memory for a
/// large frame grows as its bytes arrive, never ahead of them: a peer that
/// announces a 1 MiB frame and sends ten bytes costs ten bytes, and a length
/// over the limit is rejected as soon as its 4 bytes are in.
///
/// Nagle's algorithm is off (TCP_NODELAY) by default: a chat message should
/// leave when it is sent, not 40 ms later.
///
/// @par Timeouts
/// set_timeout() applies to every later blocking call; the overloads taking
/// a timeout override it for one call. A timeout bounds the whole call,
/// however many system calls it makes; expiry reports error::timed_out
/// ("operation timed out"). A receive that times out loses nothing: bytes
/// already received stay buffered for the next call. A send that times out
/// may have sent part of its data (the `std::error_code` overload of send()
/// returns how much); after a partial send_frame() the stream is no longer
/// framed and should be closed.
///
/// @par Thread safety
/// As for an Asio socket: distinct objects are safe, a shared one is not,
/// with one exception: shutdown(shutdown_type::both) may be called from
/// another thread to wake a thread blocked in a receive (it then sees end
/// of stream). close() from another thread does not wake it.
class tcp_socket {
public:
    using protocol_type = asio::ip::tcp;
    using endpoint_type = asio::ip::tcp::endpoint;
    using native_handle_type = asio::ip::tcp::socket::native_handle_type;
    using codec_type = frame_codec<>;

    /// Size of each read from the operating system.
    static constexpr std::size_t read_chunk = 32 * 1024;

    /// A socket that is not connected; assign a connected one to it.
    tcp_socket();

    /// Adopts a connected Asio socket, from any execution context: puts it
    /// in non-blocking mode and turns TCP_NODELAY on. The socket must only
    /// be used through this object afterwards.
    /// @throws std::system_error if the socket cannot be configured.
    explicit tcp_socket(asio::ip::tcp::socket&& socket);

    tcp_socket(tcp_socket&&) noexcept = default;
    /// Closes this socket, then takes over `other`'s connection and
    /// buffered bytes.
    tcp_socket& operator=(tcp_socket&&) noexcept = default;
    tcp_socket(const tcp_socket&) = delete;
    tcp_socket& operator=(const tcp_socket&) = delete;

    /// Closes the connection (without lingering: unsent data is still
    /// delivered by the operating system in the background).
    ~tcp_socket() = default;

    /// @name Connecting
    /// @{

    /// Resolves `host` ("localhost", "example.org", "127.0.0.1", "::1"; ""
    /// is this machine's loopback) and tries each address in turn until one
    /// accepts, all within `timeout`.
    /// When several addresses remain, each attempt gets an equal share of
    /// the time left, so one unreachable address cannot use up the whole
    /// timeout. Name resolution itself is not bounded by the timeout.
    ///
    /// Errors: the resolver's (asio::error::host_not_found...),
    /// error::timed_out, or else the last attempt's error
    /// (asio::error::connection_refused...). The throwing overloads name
    /// every address tried and why each failed.
    static tcp_socket connect(std::string_view host, std::uint16_t port,
                              std::chrono::nanoseconds timeout = no_timeout);
    static tcp_socket connect(std::string_view host, std::uint16_t port,
                              std::chrono::nanoseconds timeout, std::error_code& ec);
    static tcp_socket connect(std::string_view host, std::uint16_t port, std::error_code& ec);

    /// Connects to one endpoint, within `timeout`.
    static tcp_socket connect(const endpoint_type& peer,
                              std::chrono::nanoseconds timeout = no_timeout);
    static tcp_socket connect(const endpoint_type& peer, std::chrono::nanoseconds timeout,
                              std::error_code& ec);
    static tcp_socket connect(const endpoint_type& peer, std::error_code& ec);

    /// @}
    /// @name Raw bytes
    /// @{

    /// Sends all of `data`, waiting for room in the socket buffer as needed.
    /// Returns the number of bytes sent: all of them, unless an error
    /// occurred (then, in the `std::error_code` overloads, how many left
    /// before it).
    std::size_t send(byte_view data, std::error_code& ec);
    std::size_t send(byte_view data);
    std::size_t send(byte_view data, std::chrono::nanoseconds timeout, std::error_code& ec);
    std::size_t send(byte_view data, std::chrono::nanoseconds timeout);

    /// Returns up to `max` bytes: bytes already buffered by an earlier
    /// recv_frame() first, otherwise whatever arrives next, waiting for at
    /// least one byte. An empty string means the peer closed the connection
    /// (end of stream is not an error here, as in Python). `max` of 0 is
    /// error::invalid_argument.
    std::string recv(std::size_t max, std::error_code& ec);
    std::string recv(std::size_t max);
    std::string recv(std::size_t max, std::chrono::nanoseconds timeout, std::error_code& ec);
    std::string recv(std::size_t max, std::chrono::nanoseconds timeout);

    /// Bytes received but not yet returned by recv() or recv_frame().
    std::size_t buffered_bytes() const noexcept { return buffer_.size(); }

    /// @}
    /// @name Frames
    /// @{

    /// Sends `payload` as one frame: its length as 4 big-endian bytes, then
    /// the bytes, in one gathered system call when the socket has room.
    /// A payload over max_payload() fails with error::frame_too_large
    /// before anything is sent.
    void send_frame(byte_view payload, std::error_code& ec);
    void send_frame(byte_view payload);
    void send_frame(byte_view payload, std::chrono::nanoseconds timeout, std::error_code& ec);
    void send_frame(byte_view payload, std::chrono::nanoseconds timeout);

    /// Receives one frame and returns its payload (which may be empty: an
    /// empty frame is a valid message). Frames already buffered are
    /// returned without a system call.
    ///
    /// Errors: asio::error::eof when the peer closed the connection between
    /// frames (the normal end of a conversation), error::truncated_frame
    /// when it closed in the middle of one, error::frame_too_large when a
    /// frame announces more than max_payload() bytes (the stream cannot be
    /// resynchronised: close the connection; the throwing overloads name
    /// both sizes), error::timed_out.
    std::string recv_frame(std::error_code& ec);
    std::string recv_frame();
    std::string recv_frame(std::chrono::nanoseconds timeout, std::error_code& ec);
    std::string recv_frame(std::chrono::nanoseconds timeout);

    /// The largest frame payload sent or accepted (default 1 MiB). Limits
    /// over 4294967295 (what the length field can hold) are
    /// error::invalid_argument; the throwing form throws
    /// std::invalid_argument.
    std::uint64_t max_payload() const noexcept { return codec_.max_payload(); }
    void set_max_payload(std::uint64_t limit, std::error_code& ec) noexcept;
    void set_max_payload(std::uint64_t limit);

    /// @}
    /// @name Options and state
    /// @{

    /// The timeout for every later blocking call that is not given one
    /// (default no_timeout). Zero means "do not wait": a call succeeds only
    /// with what is already possible.
    void set_timeout(std::chrono::nanoseconds timeout) noexcept { timeout_ = timeout; }
    std::chrono::nanoseconds timeout() const noexcept { return timeout_; }

    /// Turns Nagle's algorithm off (true, the default) or on.
    void set_nodelay(bool on, std::error_code& ec);
    void set_nodelay(bool on);

    /// Sets or reads any Asio socket option (asio::socket_base::linger,
    /// keep_alive, receive_buffer_size...).
    template <class SettableSocketOption>
    void set_option(const SettableSocketOption& option, std::error_code& ec) {
        socket_.set_option(option, ec);
    }
    template <class SettableSocketOption>
    void set_option(const SettableSocketOption& option) {
        socket_.set_option(option);
    }
    template <class GettableSocketOption>
    void get_option(GettableSocketOption& option, std::error_code& ec) const {
        socket_.get_option(option, ec);
    }
    template <class GettableSocketOption>
    void get_option(GettableSocketOption& option) const {
        socket_.get_option(option);
    }

    /// Shuts down sending, receiving, or both. Shutting down sending lets
    /// the peer read end of stream while this side can still receive.
    void shutdown(shutdown_type what, std::error_code& ec);
    void shutdown(shutdown_type what);

    /// Closes the connection and drops buffered bytes. Closing a socket that
    /// is not open does nothing.
    void close(std::error_code& ec);
    void close();

    bool is_open() const noexcept { return socket_.is_open(); }

    endpoint_type local_endpoint(std::error_code& ec) const;
    endpoint_type local_endpoint() const;

    /// The peer's address. Remembered when the connection is made, so it
    /// is still available (for error messages, logs) after the connection
    /// broke.
    endpoint_type remote_endpoint(std::error_code& ec) const;
    endpoint_type remote_endpoint() const;

    /// The operating system's handle, for poll() or options Asio lacks.
    /// Keep it in non-blocking mode.
    native_handle_type native_handle() { return socket_.native_handle(); }

    /// @}

private:
    friend class tcp_listener;

    struct adopt_tag {};
    tcp_socket(adopt_tag, asio::ip::tcp::socket&& socket) noexcept;
    // Configures a connected socket (non-blocking, TCP_NODELAY) and wraps
    // it; `peer` is asked of the socket when not known.
    static tcp_socket adopt(asio::ip::tcp::socket&& socket, std::optional<endpoint_type> peer,
                            std::error_code& ec);
    static tcp_socket connect_one(const endpoint_type& peer, const detail::deadline& limit,
                                  std::error_code& ec);

    // `what` (if given) receives the sentence for an exception: the target
    // and every address tried, with why each failed.
    static tcp_socket connect_impl(std::string_view host, std::uint16_t port,
                                   std::chrono::nanoseconds timeout, std::error_code& ec,
                                   std::string* what);

    // Reads once into the buffer, waiting until `limit` for data.
    // `frame_size` is the size of the frame being assembled (0 if not yet
    // known), so the buffer can grow towards it.
    void fill(std::size_t frame_size, const detail::deadline& limit, std::error_code& ec);
    std::size_t send_buffers(std::span<asio::const_buffer> buffers, const detail::deadline& limit,
                             std::error_code& ec);

    // "to 127.0.0.1:5000" or "" when the peer is unknown.
    std::string peer_text(const char* preposition) const;
    [[noreturn]] void throw_error(std::error_code ec, const std::string& doing,
                                  std::chrono::nanoseconds timeout) const;

    asio::ip::tcp::socket socket_;
    std::optional<endpoint_type> remote_;
    detail::read_buffer buffer_{read_chunk};
    codec_type codec_;
    std::uint64_t announced_ = 0; // length field of the last frame rejected
    std::chrono::nanoseconds timeout_ = no_timeout;
};

/// A listening TCP socket: the server side of tcp_socket.
///
/// SO_REUSEADDR is on, so a server restarted at once can bind its port
/// again while connections of the previous run sit in TIME_WAIT.
///
/// @par Thread safety
/// Distinct objects are safe, a shared one is not.
class tcp_listener {
public:
    using protocol_type = asio::ip::tcp;
    using endpoint_type = asio::ip::tcp::endpoint;
    using native_handle_type = asio::ip::tcp::acceptor::native_handle_type;

    /// The largest backlog the system allows (SOMAXCONN).
    static constexpr int default_backlog = asio::socket_base::max_listen_connections;

    /// A listener that is not listening; call listen() or assign one.
    tcp_listener();

    /// Resolves `host` and listens on `port` (0: a free port the system
    /// picks; ask port() which).
    ///
    /// - "127.0.0.1", "::1", "0.0.0.0", "::": that address.
    /// - "": every interface, IPv6 and IPv4 (a dual-stack "::" socket, or
    ///   "0.0.0.0" where the system has no IPv6).
    /// - a name such as "localhost" usually resolves to both 127.0.0.1 and
    ///   ::1. One listener binds one address, and IPv4 is the one every
    ///   client can reach, so an IPv4 address is preferred; give "::1" for
    ///   IPv6.
    ///
    /// @throws std::system_error naming the address, e.g. "could not listen
    /// on 127.0.0.1:10000: Address already in use".
    tcp_listener(std::string_view host, std::uint16_t port, int backlog = default_backlog);
    explicit tcp_listener(const endpoint_type& endpoint, int backlog = default_backlog);

    tcp_listener(tcp_listener&&) noexcept = default;
    tcp_listener& operator=(tcp_listener&&) noexcept = default;
    tcp_listener(const tcp_listener&) = delete;
    tcp_listener& operator=(const tcp_listener&) = delete;
    ~tcp_listener() = default;

    /// As the constructors, on an existing object (closing what it held).
    void listen(std::string_view host, std::uint16_t port, int backlog, std::error_code& ec);
    void listen(std::string_view host, std::uint16_t port, std::error_code& ec);
    void listen(const endpoint_type& endpoint, int backlog, std::error_code& ec);
    void listen(const endpoint_type& endpoint, std::error_code& ec);

    /// Waits for the next connection, within `timeout` if given
    /// (error::timed_out after it). The new socket has TCP_NODELAY on and
    /// no timeout of its own.
    tcp_socket accept(std::error_code& ec);
    tcp_socket accept();
    tcp_socket accept(std::chrono::nanoseconds timeout, std::error_code& ec);
    tcp_socket accept(std::chrono::nanoseconds timeout);

    /// The address and port actually bound.
    endpoint_type local_endpoint(std::error_code& ec) const;
    endpoint_type local_endpoint() const;

    /// The port actually bound (the one the system chose for port 0), or 0
    /// when not listening.
    std::uint16_t port() const noexcept;

    void close(std::error_code& ec);
    void close();

    bool is_open() const noexcept { return acceptor_.is_open(); }

    native_handle_type native_handle() { return acceptor_.native_handle(); }

private:
    // Makes `endpoint` the listening address; returns whether a failure
    // means only that this address is unavailable here, so the next
    // resolved address may be tried.
    bool listen_one(const endpoint_type& endpoint, int backlog, bool dual_stack,
                    std::error_code& ec);

    asio::ip::tcp::acceptor acceptor_;
    std::optional<endpoint_type> local_;
};

} // namespace parley

#include <parley/net/impl/socket.hpp>

#endif
