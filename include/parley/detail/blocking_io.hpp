// parley internals: deadlines, readiness waits and connect-with-timeout for
// the blocking sockets in socket.hpp.
#ifndef PARLEY_DETAIL_BLOCKING_IO_HPP
#define PARLEY_DETAIL_BLOCKING_IO_HPP

#include <parley/error.hpp>
#include <parley/detail/socket_io.hpp>

#include <asio/error.hpp>
#include <asio/io_context.hpp>
#include <asio/ip/tcp.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <cstdint>
#include <string>
#include <system_error>

#if defined(_WIN32)
// Asio has already included <winsock2.h>, which declares WSAPoll.
#else
#include <cerrno>
#include <poll.h>
#include <sys/socket.h>
#endif

namespace parley::detail {

// Every blocking socket and listener in the process lives on this one
// io_context, which is never run. Asio needs an execution context to
// construct a socket, but a blocking socket never starts an asynchronous
// operation: each call is a non-blocking system call followed, when it
// would block, by poll() on the native handle. Nothing is ever queued on the
// context, so nothing needs its event loop. A context's reactor (on Linux
// an epoll descriptor, an eventfd and a timerfd) is created with its first
// socket; sharing one context means one such set per process instead of one
// per socket. Asio guards socket registration with the reactor by a mutex,
// so threads may create and close sockets concurrently.
inline asio::io_context& blocking_context() {
    static asio::io_context context;
    return context;
}

// When a blocking call must give up. Computed once per call, so that a call
// made of several system calls (a frame arriving in pieces, a send that
// fills the socket buffer) is bounded as a whole.
class deadline {
public:
    using clock = std::chrono::steady_clock;

    static deadline never() noexcept { return deadline(); }

    // `timeout` from now; a negative timeout counts as zero, and one too
    // large to add to the clock (such as parley::no_timeout) as never.
    static deadline after(std::chrono::nanoseconds timeout) noexcept {
        const auto now = clock::now();
        timeout = std::max(timeout, std::chrono::nanoseconds::zero());
        if (timeout >= std::chrono::duration_cast<std::chrono::nanoseconds>(
                           clock::time_point::max() - now))
            return never();
        deadline d;
        d.never_ = false;
        d.at_ = now + std::chrono::duration_cast<clock::duration>(timeout);
        return d;
    }

    bool is_never() const noexcept { return never_; }

    std::chrono::nanoseconds remaining() const noexcept {
        if (never_)
            return std::chrono::nanoseconds::max();
        return std::max(std::chrono::nanoseconds::zero(),
                        std::chrono::duration_cast<std::chrono::nanoseconds>(at_ - clock::now()));
    }

    // The timeout argument for poll(): -1 for none, otherwise the time left
    // rounded up to a whole millisecond (rounding down would wake just
    // before the deadline and spin on zero-length polls), capped at INT_MAX.
    int poll_milliseconds() const noexcept {
        if (never_)
            return -1;
        const auto left = remaining();
        const auto ms = std::chrono::ceil<std::chrono::milliseconds>(left).count();
        return static_cast<int>(std::min<std::int64_t>(ms, INT_MAX));
    }

private:
    deadline() noexcept = default;

    bool never_ = true;
    clock::time_point at_{};
};

// "200 ms", for error messages.
inline std::string describe_timeout(std::chrono::nanoseconds timeout) {
    const auto ms = std::chrono::ceil<std::chrono::milliseconds>(
        std::max(timeout, std::chrono::nanoseconds::zero()));
    return std::to_string(ms.count()) + " ms";
}

enum class wait_for { read, write };

// Waits until the socket can be read (or accepted from) or written, or the
// deadline passes (error::timed_out). An error or hang-up on the socket
// counts as ready: the next I/O call reports it with its proper error.
inline void wait_ready(asio::ip::tcp::socket::native_handle_type handle, wait_for what,
                       const deadline& limit, std::error_code& ec) noexcept {
#if defined(_WIN32)
    // Untested: parley is developed on POSIX systems. WSAPoll has no EINTR.
    ::WSAPOLLFD fd{};
    fd.fd = handle;
    fd.events = what == wait_for::read ? POLLRDNORM : POLLWRNORM;
    for (;;) {
        const int n = ::WSAPoll(&fd, 1, limit.poll_milliseconds());
        if (n > 0) {
            ec.clear();
            return;
        }
        if (n < 0) {
            ec = last_socket_error();
            return;
        }
        if (limit.remaining() == std::chrono::nanoseconds::zero()) {
            ec = error::timed_out;
            return;
        }
    }
#else
    ::pollfd fd{};
    fd.fd = handle;
    fd.events = what == wait_for::read ? POLLIN : POLLOUT;
    for (;;) {
        const int n = ::poll(&fd, 1, limit.poll_milliseconds());
        if (n > 0) {
            if (fd.revents & POLLNVAL)
                ec = asio::error::bad_descriptor;
            else
                ec.clear();
            return;
        }
        if (n < 0 && errno != EINTR) {
            ec = last_socket_error();
            return;
        }
        // A signal, or a wait capped at INT_MAX ms: go round with the time
        // that is left. Only the clock decides that the deadline has passed.
        if (n == 0 && limit.remaining() == std::chrono::nanoseconds::zero()) {
            ec = error::timed_out;
            return;
        }
    }
#endif
}

// Connects an open, non-blocking socket to `peer`, giving up at `limit`.
// Asio's own synchronous connect waits in poll() with no timeout even on a
// non-blocking socket, so this issues connect() itself, waits for
// writability and reads the outcome from SO_ERROR. On failure the caller
// must close the socket: a timed-out connect may still be in progress.
inline void connect_within(asio::ip::tcp::socket& socket, const asio::ip::tcp::endpoint& peer,
                           const deadline& limit, std::error_code& ec) noexcept {
    const auto handle = socket.native_handle();
#if defined(_WIN32)
    if (::connect(handle, peer.data(), static_cast<int>(peer.size())) == 0) {
        ec.clear();
        return;
    }
    ec = last_socket_error();
    if (ec.value() != WSAEWOULDBLOCK)
        return;
#else
    if (::connect(handle, peer.data(), static_cast<socklen_t>(peer.size())) == 0) {
        ec.clear();
        return;
    }
    // After EINTR the connection attempt carries on in the background,
    // exactly as after EINPROGRESS.
    if (errno != EINPROGRESS && errno != EINTR) {
        ec = last_socket_error();
        return;
    }
#endif
    wait_ready(handle, wait_for::write, limit, ec);
    if (ec)
        return;
    int so_error = 0;
#if defined(_WIN32)
    int length = sizeof(so_error);
    const int r = ::getsockopt(handle, SOL_SOCKET, SO_ERROR, reinterpret_cast<char*>(&so_error),
                               &length);
#else
    socklen_t length = sizeof(so_error);
    const int r = ::getsockopt(handle, SOL_SOCKET, SO_ERROR, &so_error, &length);
#endif
    if (r != 0)
        ec = last_socket_error();
    else if (so_error != 0)
        ec = std::error_code(so_error, asio::error::get_system_category());
    else
        ec.clear();
}

// "127.0.0.1:80", "[::1]:80".
inline std::string endpoint_string(const asio::ip::tcp::endpoint& endpoint) {
    const auto address = endpoint.address();
    std::string text = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
    return text + ":" + std::to_string(endpoint.port());
}

// "localhost:80", "[::1]:80", ":80" for the empty host.
inline std::string host_port_string(std::string_view host, std::uint16_t port) {
    std::string text = host.find(':') != std::string_view::npos
                           ? "[" + std::string(host) + "]"
                           : std::string(host);
    return text + ":" + std::to_string(port);
}

} // namespace parley::detail

#endif
