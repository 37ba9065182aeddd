// parley: a blocking framed TCP client for scripts and tests: connects with
// the retries of connect.hpp, sends and receives frames with timeouts
// (through tcp_socket), and closes without losing what the peer still sends.
//
// @code
// parley::connect_options retry;
// retry.max_attempts = 10;                       // the server may still be starting
// parley::blocking_client client("127.0.0.1", 9999, retry);
// std::cout << client.receive(5s) << '\n';        // the welcome event
// client.send("alice");
// for (const auto& frame : client.close())       // what arrived until the server closed
//     std::cout << frame << '\n';
// @endcode
#ifndef PARLEY_CLIENT_BLOCKING_CLIENT_HPP
#define PARLEY_CLIENT_BLOCKING_CLIENT_HPP

#include <parley/net/connect.hpp>
#include <parley/error.hpp>
#include <parley/net/socket.hpp>
#include <parley/detail/blocking_io.hpp>

#include <asio/error.hpp>
#include <asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace parley {

/// A connection to a framed server whose calls block, each bounded by a
/// timeout. Frames are parley's: a 4-byte big-endian length, then the
/// payload.
///
/// What it adds to tcp_socket: connecting with retries, backoff and
/// progress events (connect_options), and a close() that lets the peer
/// finish: a blocking send has handed its bytes to the system when it
/// returns, so close() shuts the sending side down (the peer reads end of
/// stream), collects the frames the peer still sends until it closes its
/// side, and only then closes the socket. Closing at once instead could
/// make the system reset the connection, and the peer could lose the last
/// frames it had not read yet.
///
/// @par Thread safety
/// As tcp_socket: distinct objects are safe, a shared one is not.
class blocking_client {
public:
    /// A client that is not connected.
    blocking_client() = default;

    /// Connects to `host`:`port` as parley::connect() does (resolving,
    /// trying each address, retrying with backoff; options.on_state is
    /// called from this thread).
    /// @throws std::system_error whose what() is describe_connect_failure()'s
    /// sentence, e.g. "could not connect to 127.0.0.1:9999 (5 attempts):
    /// Connection refused".
    blocking_client(std::string_view host, std::uint16_t port,
                    const connect_options& options = {}) {
        unsigned attempts = 0;
        std::error_code ec;
        *this = connect(host, port, options, ec, &attempts);
        if (ec)
            throw std::system_error(ec, detail::connect_failure_context(host, port, attempts));
    }

    /// As the constructor, reporting failure through `ec` (the last
    /// attempt's error) and returning a client that is not connected.
    static blocking_client connect(std::string_view host, std::uint16_t port,
                                   const connect_options& options, std::error_code& ec) {
        return connect(host, port, options, ec, nullptr);
    }

    blocking_client(blocking_client&&) noexcept = default;
    blocking_client& operator=(blocking_client&&) noexcept = default;

    /// Closes the connection at once (use close() to let the peer finish).
    ~blocking_client() = default;

    bool is_open() const noexcept { return socket_.is_open(); }

    /// The underlying socket, for timeouts (set_timeout), options, raw
    /// bytes, or the peer's address.
    tcp_socket& socket() noexcept { return socket_; }

    /// Sends `payload` as one frame (see tcp_socket::send_frame: errors,
    /// the payload limit, timeouts).
    void send(byte_view payload) { socket_.send_frame(payload); }
    void send(byte_view payload, std::error_code& ec) { socket_.send_frame(payload, ec); }

    /// Receives one frame within the socket's timeout, or `timeout` (see
    /// tcp_socket::recv_frame). asio::error::eof means the peer closed the
    /// connection between frames.
    std::string receive() { return socket_.recv_frame(); }
    std::string receive(std::error_code& ec) { return socket_.recv_frame(ec); }
    std::string receive(std::chrono::nanoseconds timeout) { return socket_.recv_frame(timeout); }
    std::string receive(std::chrono::nanoseconds timeout, std::error_code& ec) {
        return socket_.recv_frame(timeout, ec);
    }

    /// Closes gracefully within `timeout`: shuts the sending side down,
    /// receives until the peer closes its side, then closes. Returns the
    /// frames received meanwhile. `ec` is clear when the peer closed in
    /// time, error::timed_out when it did not (the connection is closed
    /// anyway), or the error that ended the connection. Closing a client
    /// that is not connected does nothing.
    std::vector<std::string> close(std::chrono::nanoseconds timeout, std::error_code& ec) {
        std::vector<std::string> frames;
        ec.clear();
        if (!socket_.is_open())
            return frames;
        socket_.shutdown(shutdown_type::send, ec);
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        while (!ec) {
            const auto left = deadline - std::chrono::steady_clock::now();
            if (left <= std::chrono::nanoseconds::zero()) {
                ec = error::timed_out;
                break;
            }
            std::string frame = socket_.recv_frame(left, ec);
            if (!ec)
                frames.push_back(std::move(frame));
        }
        if (ec == asio::error::eof)
            ec.clear();
        std::error_code ignored;
        socket_.close(ignored);
        return frames;
    }

    /// As above; @throws std::system_error if the peer did not close in
    /// time or the connection failed.
    std::vector<std::string> close(std::chrono::nanoseconds timeout = std::chrono::seconds(5)) {
        std::error_code ec;
        auto frames = close(timeout, ec);
        if (ec)
            throw std::system_error(ec, "closing the connection");
        return frames;
    }

private:
    explicit blocking_client(tcp_socket&& socket) noexcept : socket_(std::move(socket)) {}

    static blocking_client connect(std::string_view host, std::uint16_t port,
                                   const connect_options& options, std::error_code& ec,
                                   unsigned* attempts) {
        connect_options counting = options;
        if (attempts)
            counting.on_state = [&](const connect_event& event) {
                *attempts = event.attempt;
                if (options.on_state)
                    options.on_state(event);
            };
        // tcp_socket's sockets belong to the context it never runs.
        asio::ip::tcp::socket raw(detail::blocking_context());
        parley::connect(raw, host, port, counting, ec);
        if (ec)
            return {};
        tcp_socket adopted(std::move(raw)); // non-blocking mode and TCP_NODELAY
        return blocking_client(std::move(adopted));
    }

    tcp_socket socket_;
};

} // namespace parley

#endif
